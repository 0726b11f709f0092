using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;
using CrateIL.Nn.Parameters;

namespace CrateIL.Nn.Layers;

/// <summary>Which tokens feed the classifier.</summary>
public enum Pooling
{
    /// <summary>The CLS token (row 0), CRATE's default.</summary>
    Cls,

    /// <summary>The mean over all N + 1 tokens, CLS included (CRATE's <c>pool='mean'</c>).</summary>
    Mean,
}

/// <summary>
/// CRATE's classification head: pool → LayerNorm(dim) (<c>{prefix}.0</c>) → Linear(dim, classes)
/// (<c>{prefix}.1</c>), prefix <c>mlp_head</c>. x [B, T, dim] → logits [B, classes].
/// </summary>
public sealed class ClassificationHead : IDisposable
{
    private const string Layer = "ClassificationHead";
    private Tensor? _pooled, _normed, _dNormed, _dPooled;
    private int _batch = -1, _tokens;

    public ClassificationHead(ParameterStore store, int dim, int classes, Pooling pooling = Pooling.Cls, string prefix = "mlp_head")
    {
        ArgumentNullException.ThrowIfNull(store);
        if (dim < 1 || classes < 1) throw new ArgumentOutOfRangeException(nameof(dim), $"{Layer}: dim {dim} and classes {classes} must be positive");
        if (pooling is not (Pooling.Cls or Pooling.Mean)) throw new ArgumentOutOfRangeException(nameof(pooling), pooling, $"{Layer}: unknown pooling");
        Store = store;
        Dim = dim;
        Classes = classes;
        Pooling = pooling;
        Norm = new LayerNormLayer(store, LayerBuffer.Join(prefix, "0"), dim);
        Classifier = new Linear(store, LayerBuffer.Join(prefix, "1"), dim, classes);
    }

    public ParameterStore Store { get; }
    public int Dim { get; }
    public int Classes { get; }
    public Pooling Pooling { get; }
    public LayerNormLayer Norm { get; }
    public Linear Classifier { get; }

    /// <summary>logits [B, classes] = Linear(LN(pool(x))), x [B, T, dim].</summary>
    public void Forward(Tensor x, Tensor logits)
    {
        LayerBuffer.RequireBuilt(Layer, Store);
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(logits);
        if (x.Rank != 3 || x.Shape[1] < 1 || x.Shape[2] != Dim)
            throw new ArgumentException($"{Layer}: x{x.Shape} must be [B, T ≥ 1, {Dim}]", nameof(x));
        int batch = x.Shape[0];
        if (logits.Rank != 2 || logits.Shape[0] != batch || logits.Shape[1] != Classes)
            throw new ArgumentException($"{Layer}: logits{logits.Shape} must be [{batch}, {Classes}]", nameof(logits));
        LayerBuffer.SameDevice(Layer, nameof(x), x, Store.Device);
        if (x.Length > int.MaxValue) throw new ArgumentException($"{Layer}: x{x.Shape} has more than {int.MaxValue} elements", nameof(x));
        _batch = batch;
        _tokens = x.Shape[1];
        if (batch == 0) return;
        var pooled = LayerBuffer.Ensure(ref _pooled, Store.Device, batch, Dim);
        var normed = LayerBuffer.Ensure(ref _normed, Store.Device, batch, Dim);
        var args = new PoolArgs(batch, _tokens, Dim, Pooling == Pooling.Mean);
        switch (Store.Device)
        {
            case CpuDevice cpu: HeadCpu.Pool(cpu, x, pooled, args); break;
            case IlgpuDevice gpu: HeadIlgpu.Pool(gpu, x, pooled, args); break;
            default: throw new NotSupportedException($"{Layer} has no implementation for device {Store.Device.Spec}");
        }
        Norm.Forward(pooled, normed);
        Classifier.Forward(normed, logits);
    }

    /// <summary>
    /// Parameter gradients accumulated; dx [B, T, dim] assigned (cls: row 0 gets the gradient, other rows 0; mean:
    /// every row gets dpooled/T).
    /// </summary>
    public void Backward(Tensor dLogits, Tensor dx)
    {
        if (_batch < 0) throw new InvalidOperationException($"{Layer}: Backward called before Forward");
        ArgumentNullException.ThrowIfNull(dLogits);
        ArgumentNullException.ThrowIfNull(dx);
        if (dLogits.Rank != 2 || dLogits.Shape[0] != _batch || dLogits.Shape[1] != Classes)
            throw new ArgumentException($"{Layer}: dLogits{dLogits.Shape} must be [{_batch}, {Classes}]", nameof(dLogits));
        if (dx.Rank != 3 || dx.Shape[0] != _batch || dx.Shape[1] != _tokens || dx.Shape[2] != Dim)
            throw new ArgumentException($"{Layer}: dx{dx.Shape} must be [{_batch}, {_tokens}, {Dim}] as in Forward", nameof(dx));
        LayerBuffer.SameDevice(Layer, nameof(dx), dx, Store.Device);
        if (_batch == 0) return;
        var dNormed = LayerBuffer.Ensure(ref _dNormed, Store.Device, _batch, Dim);
        var dPooled = LayerBuffer.Ensure(ref _dPooled, Store.Device, _batch, Dim);
        Classifier.Backward(dLogits, dNormed);
        Norm.Backward(dNormed, dPooled);
        var args = new PoolArgs(_batch, _tokens, Dim, Pooling == Pooling.Mean);
        switch (Store.Device)
        {
            case CpuDevice cpu: HeadCpu.Unpool(cpu, dPooled, dx, args); break;
            case IlgpuDevice gpu: HeadIlgpu.Unpool(gpu, dPooled, dx, args); break;
            default: throw new NotSupportedException($"{Layer} has no implementation for device {Store.Device.Spec}");
        }
    }

    public void Dispose()
    {
        Norm.Dispose();
        Classifier.Dispose();
        LayerBuffer.Release(ref _pooled);
        LayerBuffer.Release(ref _normed);
        LayerBuffer.Release(ref _dNormed);
        LayerBuffer.Release(ref _dPooled);
    }
}

/// <summary>Batch, tokens per image, width and the pooling kind (1 = mean) of one pooling call.</summary>
internal readonly struct PoolArgs(int batch, int tokens, int dim, bool mean)
{
    public readonly int Batch = batch;
    public readonly int Tokens = tokens;
    public readonly int Dim = dim;
    public readonly int Mean = mean ? 1 : 0;
}
