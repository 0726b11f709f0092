using CrateIL.Compute.Ops;
using CrateIL.Compute.Tensors;
using CrateIL.Nn.Parameters;

namespace CrateIL.Nn.Layers;

/// <summary>
/// Fully connected layer on token rows, PyTorch layout: y = x·Wᵀ + b with W [out, in], b [out] (optional).
/// Parameters <c>{prefix}.weight</c> and <c>{prefix}.bias</c>, both drawn from U(±1/√in) (nn.Linear's default).
/// x is any tensor whose last dimension is <c>in</c> (rows = all leading dimensions).
/// </summary>
public sealed class Linear : IDisposable
{
    private const string Layer = "Linear";
    private Tensor? _x;
    private int _rows = -1;
    private readonly FrozenOperand _frozenWeight = new();

    public Linear(ParameterStore store, string prefix, int inFeatures, int outFeatures, bool bias = true)
    {
        ArgumentNullException.ThrowIfNull(store);
        if (inFeatures < 1 || outFeatures < 1)
            throw new ArgumentOutOfRangeException(nameof(inFeatures), $"{Layer} {prefix}: features must be positive, got in={inFeatures}, out={outFeatures}");
        Store = store;
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        Weight = store.Add(LayerBuffer.Join(prefix, "weight"), [outFeatures, inFeatures], ParameterInit.UniformFanIn, fanIn: inFeatures);
        Bias = bias ? store.Add(LayerBuffer.Join(prefix, "bias"), [outFeatures], ParameterInit.UniformFanIn, fanIn: inFeatures, decay: false) : null;
    }

    public ParameterStore Store { get; }
    public int InFeatures { get; }
    public int OutFeatures { get; }
    public Parameter Weight { get; }
    public Parameter? Bias { get; }

    /// <summary>
    /// y = x·Wᵀ + b. Keeps a reference to <paramref name="x"/> (not a copy) for <see cref="Backward"/>: x must stay
    /// unchanged until then. <paramref name="y"/> must not overlap x.
    /// </summary>
    public void Forward(Tensor x, Tensor y)
    {
        LayerBuffer.RequireBuilt(Layer, Store);
        int rows = LayerBuffer.RowsOf(Layer, nameof(x), x, InFeatures);
        int yRows = LayerBuffer.RowsOf(Layer, nameof(y), y, OutFeatures);
        if (yRows != rows) throw new ArgumentException($"{Layer}: y{y.Shape} must have {rows} rows like x{x.Shape}", nameof(y));
        LayerBuffer.SameDevice(Layer, nameof(x), x, Store.Device);
        LayerBuffer.SameDevice(Layer, nameof(y), y, Store.Device);
        if (ReferenceEquals(x, y)) throw new ArgumentException($"{Layer}: y must not be x", nameof(y));
        _x = x;
        _rows = rows;
        if (rows == 0) return;
        Gemm.Batched(1, rows, OutFeatures, InFeatures, 1f, x, false, Weight.Value, true, 0f, y,
            _frozenWeight.For(Store, Weight.Value, true, InFeatures, OutFeatures));
        if (Bias is not null) BiasAdd.Forward(y, Bias.Value, y);
    }

    /// <summary>
    /// dW += dyᵀ·x and db += Σ_rows dy (accumulated), then dx = dy·W (assigned; skipped when <paramref name="dx"/>
    /// is null). The parameter gradients are formed before dx is written, so dx may be the saved input x.
    /// </summary>
    public void Backward(Tensor dy, Tensor? dx)
    {
        var x = _x ?? throw new InvalidOperationException($"{Layer}: Backward called before Forward");
        if (x.IsDisposed) throw new InvalidOperationException($"{Layer}: the input saved by Forward was disposed before Backward");
        int rows = LayerBuffer.RowsOf(Layer, nameof(dy), dy, OutFeatures);
        if (rows != _rows) throw new ArgumentException($"{Layer}: dy{dy.Shape} has {rows} rows but Forward saw {_rows}", nameof(dy));
        LayerBuffer.SameDevice(Layer, nameof(dy), dy, Store.Device);
        if (dx is not null)
        {
            int dxRows = LayerBuffer.RowsOf(Layer, nameof(dx), dx, InFeatures);
            if (dxRows != rows) throw new ArgumentException($"{Layer}: dx{dx.Shape} must have {rows} rows", nameof(dx));
            LayerBuffer.SameDevice(Layer, nameof(dx), dx, Store.Device);
            if (ReferenceEquals(dx, dy)) throw new ArgumentException($"{Layer}: dx must not be dy", nameof(dx));
        }
        if (rows == 0) return;
        Gemm.Batched(1, OutFeatures, InFeatures, rows, 1f, dy, true, x, false, 1f, Weight.Grad);
        if (Bias is not null) BiasAdd.Backward(dy, Bias.Grad);
        if (dx is not null) Gemm.Batched(1, rows, InFeatures, OutFeatures, 1f, dy, false, Weight.Value, false, 0f, dx);
    }

    /// <summary>Frees the packed copy of the weight kept while the store is frozen (the parameters belong to the store).</summary>
    public void Dispose() => _frozenWeight.Dispose();
}
