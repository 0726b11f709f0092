using CrateIL.Compute.Tensors;
using CrateIL.Nn.Parameters;
using LayerNormOp = CrateIL.Compute.Ops.LayerNorm;

namespace CrateIL.Nn.Layers;

/// <summary>
/// nn.LayerNorm(dim) over the last dimension: y = (x − mean)·rstd·γ + β, rstd = 1/√(var + ε) (biased variance,
/// ε = 1e-5 by default). Parameters <c>{prefix}.weight</c> (γ, ones) and <c>{prefix}.bias</c> (β, zeros) when
/// affine. Forward saves the per-row mean and rstd in buffers this layer owns.
/// </summary>
public sealed class LayerNormLayer : IDisposable
{
    private const string Layer = "LayerNorm";
    private Tensor? _x, _mean, _rstd;
    private int _rows = -1;

    public LayerNormLayer(ParameterStore store, string prefix, int dim, float eps = LayerNormOp.DefaultEpsilon, bool affine = true)
    {
        ArgumentNullException.ThrowIfNull(store);
        if (dim < 1) throw new ArgumentOutOfRangeException(nameof(dim), dim, $"{Layer} {prefix}: dim must be positive");
        if (!(eps > 0f) || !float.IsFinite(eps)) throw new ArgumentOutOfRangeException(nameof(eps), eps, $"{Layer} {prefix}: eps must be positive and finite");
        Store = store;
        Dim = dim;
        Epsilon = eps;
        if (affine)
        {
            Weight = store.Add(LayerBuffer.Join(prefix, "weight"), [dim], ParameterInit.Ones, decay: false);
            Bias = store.Add(LayerBuffer.Join(prefix, "bias"), [dim], ParameterInit.Zeros, decay: false);
        }
    }

    public ParameterStore Store { get; }
    public int Dim { get; }
    public float Epsilon { get; }
    public Parameter? Weight { get; }
    public Parameter? Bias { get; }

    /// <summary>The row means saved by the last Forward (for tests and introspection).</summary>
    internal Tensor? SavedMean => _mean;
    internal Tensor? SavedRstd => _rstd;

    /// <summary>
    /// y = LayerNorm(x). Keeps a reference to <paramref name="x"/> (not a copy) for <see cref="Backward"/>: x must
    /// stay unchanged until then. <paramref name="y"/> may not be x.
    /// </summary>
    public void Forward(Tensor x, Tensor y)
    {
        LayerBuffer.RequireBuilt(Layer, Store);
        int rows = LayerBuffer.RowsOf(Layer, nameof(x), x, Dim);
        LayerBuffer.SameDevice(Layer, nameof(x), x, Store.Device);
        if (ReferenceEquals(x, y)) throw new ArgumentException($"{Layer}: y must not be x (Backward needs the input)", nameof(y));
        _x = x;
        _rows = rows;
        if (rows == 0) return;
        var mean = LayerBuffer.Ensure(ref _mean, Store.Device, rows);
        var rstd = LayerBuffer.Ensure(ref _rstd, Store.Device, rows);
        LayerNormOp.Forward(x, Weight?.Value, Bias?.Value, y, mean, rstd, Epsilon);
    }

    /// <summary>dx = ∂L/∂x (assigned; may be <paramref name="dy"/>); dγ, dβ accumulated (+=).</summary>
    public void Backward(Tensor dy, Tensor dx)
    {
        var x = _x ?? throw new InvalidOperationException($"{Layer}: Backward called before Forward");
        if (x.IsDisposed) throw new InvalidOperationException($"{Layer}: the input saved by Forward was disposed before Backward");
        int rows = LayerBuffer.RowsOf(Layer, nameof(dy), dy, Dim);
        if (rows != _rows) throw new ArgumentException($"{Layer}: dy{dy.Shape} has {rows} rows but Forward saw {_rows}", nameof(dy));
        if (rows == 0) return;
        LayerNormOp.Backward(dy, x, Weight?.Value, _mean!, _rstd!, dx, Weight?.Grad, Bias?.Grad);
    }

    public void Dispose()
    {
        LayerBuffer.Release(ref _mean);
        LayerBuffer.Release(ref _rstd);
        _x = null;
    }
}
