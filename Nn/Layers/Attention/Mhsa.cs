using CrateIL.Compute.Devices;
using CrateIL.Compute.Ops;
using CrateIL.Compute.Tensors;
using CrateIL.Nn.Parameters;

namespace CrateIL.Nn.Layers;

/// <summary>
/// The ViT baseline's multi-head self-attention (timm <c>Attention</c>): one Linear(dim, 3·inner) with bias whose
/// output axis is laid out (3, heads, dh), so q, k and v are column blocks of one [batch·n, 3·inner] matrix;
/// O_h = softmax(q_h·k_hᵀ·dh^−½)·v_h on the shared <see cref="AttentionCore"/>; out = O·Wprojᵀ + bproj.
/// Parameters: <c>{prefix}qkv.weight</c> [3·inner, dim], <c>{prefix}qkv.bias</c>, <c>{prefix}proj.weight</c> [dim, inner],
/// <c>{prefix}proj.bias</c>.
/// </summary>
public sealed class Mhsa : ITokenMixer, IDisposable
{
    private AttentionCore? _core;
    private Device? _device;
    private Tensor? _qkv, _o, _dO, _dqkv;
    private Tensor? _y;
    private int _batch, _n;
    private readonly ParameterStore _store;
    private readonly FrozenOperand _frozenQkv = new(), _frozenProj = new();

    public Mhsa(ParameterStore store, string prefix, int dim, int heads, int dimHead)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(prefix);
        if (dim < 1 || heads < 1 || dimHead < 1)
            throw new ArgumentOutOfRangeException(nameof(dim), $"MHSA needs positive dim, heads and dim_head (got {dim}, {heads}, {dimHead})");
        Dim = dim;
        Heads = heads;
        DimHead = dimHead;
        _store = store;
        QkvWeight = store.Add(prefix + "qkv.weight", [3 * Inner, dim], ParameterInit.UniformFanIn, fanIn: dim);
        QkvBias = store.Add(prefix + "qkv.bias", [3 * Inner], ParameterInit.UniformFanIn, fanIn: dim, decay: false);
        ProjWeight = store.Add(prefix + "proj.weight", [dim, Inner], ParameterInit.UniformFanIn, fanIn: Inner);
        ProjBias = store.Add(prefix + "proj.bias", [dim], ParameterInit.UniformFanIn, fanIn: Inner, decay: false);
    }

    public int Dim { get; }
    public int Heads { get; }
    public int DimHead { get; }
    public int Inner => Heads * DimHead;
    public Parameter QkvWeight { get; }
    public Parameter QkvBias { get; }
    public Parameter ProjWeight { get; }
    public Parameter ProjBias { get; }

    /// <summary>The attention core (available after the first forward pass).</summary>
    public AttentionCore? Core => _core;

    /// <summary>The queries of the last forward pass: columns [0, inner) of the saved qkv rows (stride 3·inner); null before it.</summary>
    public HeadColumns? Queries => _qkv is null ? null : new HeadColumns(_qkv, 0, 3 * Inner);

    /// <summary>The keys of the last forward pass: columns [inner, 2·inner) of the saved qkv rows; null before it.</summary>
    public HeadColumns? Keys => _qkv is null ? null : new HeadColumns(_qkv, Inner, 3 * Inner);

    /// <summary>output = (or +=) MHSA(y) for y [batch·n, dim]; y must stay unchanged until <see cref="Backward"/>.</summary>
    public void Forward(Tensor y, Tensor output, int batch, bool accumulate = false)
    {
        ArgumentNullException.ThrowIfNull(y);
        ArgumentNullException.ThrowIfNull(output);
        if (batch < 1) throw new ArgumentOutOfRangeException(nameof(batch), batch, "MHSA: batch must be positive");
        if (y.Length == 0 || y.Length % Dim != 0 || y.Length / Dim % batch != 0)
            throw new ArgumentException($"MHSA: y{y.Shape} is not [batch={batch}, n, dim={Dim}]", nameof(y));
        if (output.Length != y.Length || !ReferenceEquals(output.Device, y.Device))
            throw new ArgumentException($"MHSA: output{output.Shape} must match y{y.Shape} in length and device", nameof(output));
        if (!ReferenceEquals(QkvWeight.Value.Device, y.Device))
            throw new ArgumentException($"MHSA: input lives on {y.Device.Spec}, parameters on {QkvWeight.Value.Device.Spec}");
        int rows = checked((int)(y.Length / Dim));
        Ensure(y.Device, batch, rows / batch);
        _y = y;
        int inner = Inner, wide = 3 * inner;
        Gemm.Batched(1, rows, wide, Dim, 1f, Mat(y, Dim), false, Mat(QkvWeight.Value, Dim), true, 0f, Mat(_qkv!, wide),
            _frozenQkv.For(_store, Mat(QkvWeight.Value, Dim), true, Dim, wide));
        BiasAdd.Forward(_qkv!, QkvBias.Value, _qkv!);
        _core!.Forward(batch, _n, new HeadColumns(_qkv!, 0, wide), new HeadColumns(_qkv!, inner, wide),
            new HeadColumns(_qkv!, 2 * inner, wide), new HeadColumns(_o!, 0, inner));
        Gemm.Batched(1, rows, Dim, inner, 1f, Mat(_o!, inner), false, Mat(ProjWeight.Value, inner), true, accumulate ? 1f : 0f, Mat(output, Dim),
            _frozenProj.For(_store, Mat(ProjWeight.Value, inner), true, inner, Dim));
        BiasAdd.Forward(output, ProjBias.Value, output);
    }

    /// <summary>dy = (or += when <paramref name="accumulate"/>) ∂L/∂y; parameter gradients accumulate.</summary>
    public void Backward(Tensor dOut, Tensor dy, bool accumulate = false)
    {
        if (_y is null) throw new InvalidOperationException("MHSA backward needs a forward pass first");
        int rows = _batch * _n, inner = Inner, wide = 3 * inner;
        if (dOut.Length != (long)rows * Dim || dy.Length != (long)rows * Dim)
            throw new ArgumentException($"MHSA backward: dOut{dOut.Shape} and dy{dy.Shape} must hold {rows}×{Dim} elements like the forward input");
        BiasAdd.Backward(dOut, ProjBias.Grad);
        Gemm.Batched(1, Dim, inner, rows, 1f, Mat(dOut, Dim), true, Mat(_o!, inner), false, 1f, Mat(ProjWeight.Grad, inner));
        Gemm.Batched(1, rows, inner, Dim, 1f, Mat(dOut, Dim), false, Mat(ProjWeight.Value, inner), false, 0f, Mat(_dO!, inner));
        _core!.Backward(_batch, _n,
            new HeadColumns(_qkv!, 0, wide), new HeadColumns(_qkv!, inner, wide), new HeadColumns(_qkv!, 2 * inner, wide),
            new HeadColumns(_o!, 0, inner), new HeadColumns(_dO!, 0, inner),
            new HeadColumns(_dqkv!, 0, wide), new HeadColumns(_dqkv!, inner, wide), new HeadColumns(_dqkv!, 2 * inner, wide));
        BiasAdd.Backward(_dqkv!, QkvBias.Grad);
        Gemm.Batched(1, wide, Dim, rows, 1f, Mat(_dqkv!, wide), true, Mat(_y, Dim), false, 1f, Mat(QkvWeight.Grad, Dim));
        Gemm.Batched(1, rows, Dim, wide, 1f, Mat(_dqkv!, wide), false, Mat(QkvWeight.Value, Dim), false, accumulate ? 1f : 0f, Mat(dy, Dim));
    }

    private static MatrixOperand Mat(Tensor t, int ld) => new(t, 0, ld, 0);

    private void Ensure(Device device, int batch, int n)
    {
        _core ??= new AttentionCore(device, Heads, DimHead);
        if (_device == device && _batch == batch && _n == n) return;
        DisposeBuffers();
        _device = device;
        _batch = batch;
        _n = n;
        int rows = batch * n;
        _qkv = device.Allocate(rows, 3 * Inner);
        _dqkv = device.Allocate(rows, 3 * Inner);
        _o = device.Allocate(rows, Inner);
        _dO = device.Allocate(rows, Inner);
    }

    private void DisposeBuffers()
    {
        _qkv?.Dispose(); _dqkv?.Dispose(); _o?.Dispose(); _dO?.Dispose();
        _qkv = _dqkv = _o = _dO = null;
    }

    public void Dispose()
    {
        DisposeBuffers();
        _core?.Dispose();
        _frozenQkv.Dispose();
        _frozenProj.Dispose();
    }
}
