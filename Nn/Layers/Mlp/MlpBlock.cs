using CrateIL.Compute.Ops;
using CrateIL.Compute.Tensors;
using CrateIL.Nn.Parameters;

namespace CrateIL.Nn.Layers;

/// <summary>Parameter names of an <see cref="MlpBlock"/>.</summary>
public enum MlpNaming
{
    /// <summary>
    /// vit-pytorch PreNorm, the layout CRATE's transformer layers come from: <c>{prefix}.norm.*</c>,
    /// <c>{prefix}.fn.net.0.*</c> (Linear₁), <c>{prefix}.fn.net.3.*</c> (Linear₂; net = Linear, GELU, Dropout, Linear, Dropout).
    /// </summary>
    PreNorm,

    /// <summary>timm's ViT Block: <c>{prefix}.norm2.*</c>, <c>{prefix}.mlp.fc1.*</c>, <c>{prefix}.mlp.fc2.*</c>.</summary>
    Timm,
}

/// <summary>
/// The ViT MLP half-block with its residual: y = x + Linear₂(GELU(Linear₁(LN(x)))), hidden = ratio·dim
/// (ratio 4 by default), LayerNorm ε = 1e-5. x and y have the same shape ([B, T, dim] or [rows, dim]).
/// </summary>
public sealed class MlpBlock : IDisposable
{
    private const string Layer = "MlpBlock";
    private Tensor? _normed, _dNormed;
    private bool _forwarded;

    public MlpBlock(ParameterStore store, string prefix, int dim, int ratio = 4, MlpNaming naming = MlpNaming.PreNorm, GeluForm gelu = GeluForm.Erf)
    {
        ArgumentNullException.ThrowIfNull(store);
        if (ratio < 1) throw new ArgumentOutOfRangeException(nameof(ratio), ratio, $"{Layer}: the hidden ratio must be positive");
        Store = store;
        Dim = dim;
        var (norm, fc1, fc2) = naming switch
        {
            MlpNaming.PreNorm => ("norm", "fn.net.0", "fn.net.3"),
            MlpNaming.Timm => ("norm2", "mlp.fc1", "mlp.fc2"),
            _ => throw new ArgumentOutOfRangeException(nameof(naming), naming, $"{Layer}: unknown naming"),
        };
        Norm = new LayerNormLayer(store, LayerBuffer.Join(prefix, norm), dim);
        Mlp = new Mlp(store, LayerBuffer.Join(prefix, fc1), LayerBuffer.Join(prefix, fc2), dim, ratio * dim, gelu);
    }

    public ParameterStore Store { get; }
    public int Dim { get; }
    public LayerNormLayer Norm { get; }
    public Mlp Mlp { get; }

    /// <summary>y = x + MLP(LN(x)). Keeps a reference to x for Backward (x must stay unchanged); y must not be x.</summary>
    public void Forward(Tensor x, Tensor y)
    {
        LayerBuffer.RequireBuilt(Layer, Store);
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(y);
        if (x.Shape != y.Shape) throw new ArgumentException($"{Layer}: y{y.Shape} must have the shape of x{x.Shape}", nameof(y));
        if (ReferenceEquals(x, y)) throw new ArgumentException($"{Layer}: y must not be x (Backward needs the input)", nameof(y));
        LayerBuffer.RowsOf(Layer, nameof(x), x, Dim);
        LayerBuffer.SameDevice(Layer, nameof(y), y, Store.Device);
        var normed = LayerBuffer.EnsureLike(ref _normed, Store.Device, x.Shape);
        Norm.Forward(x, normed);
        Mlp.Forward(normed, y);
        if (x.Length > 0) Elementwise.Add(y, x, y);
        _forwarded = true;
    }

    /// <summary>dx = dy + ∂(MLP∘LN)ᵀ·dy (assigned; dx may be dy); parameter gradients accumulated.</summary>
    public void Backward(Tensor dy, Tensor dx)
    {
        if (!_forwarded) throw new InvalidOperationException($"{Layer}: Backward called before Forward");
        ArgumentNullException.ThrowIfNull(dy);
        ArgumentNullException.ThrowIfNull(dx);
        if (dy.Shape != dx.Shape) throw new ArgumentException($"{Layer}: dx{dx.Shape} must have the shape of dy{dy.Shape}", nameof(dx));
        var dNormed = LayerBuffer.EnsureLike(ref _dNormed, Store.Device, dy.Shape);
        Mlp.Backward(dy, dNormed);
        Norm.Backward(dNormed, dNormed);
        if (dy.Length > 0) Elementwise.Add(dy, dNormed, dx);
    }

    public void Dispose()
    {
        Norm.Dispose();
        Mlp.Dispose();
        LayerBuffer.Release(ref _normed);
        LayerBuffer.Release(ref _dNormed);
    }
}
