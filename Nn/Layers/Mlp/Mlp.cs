using CrateIL.Compute.Ops;
using CrateIL.Compute.Tensors;
using CrateIL.Nn.Parameters;

namespace CrateIL.Nn.Layers;

/// <summary>
/// The ViT feed-forward network: y = Linear₂(GELU(Linear₁(x))), Linear₁: dim → hidden, Linear₂: hidden → dim,
/// GELU in the exact erf form by default (nn.GELU / timm). Saves the pre-activation and the activation in buffers
/// it owns. (Dropout inside the MLP is not part of this layer: CRATE and its ViT baselines train with p = 0.)
/// </summary>
public sealed class Mlp : IDisposable
{
    private const string Layer = "Mlp";
    private Tensor? _hidden, _activated, _dHidden;
    private int _rows = -1;

    /// <param name="fc1Prefix">Name prefix of Linear₁ (e.g. <c>mlp.fc1</c> or <c>fn.net.0</c>).</param>
    /// <param name="fc2Prefix">Name prefix of Linear₂ (e.g. <c>mlp.fc2</c> or <c>fn.net.3</c>).</param>
    public Mlp(ParameterStore store, string fc1Prefix, string fc2Prefix, int dim, int hidden, GeluForm gelu = GeluForm.Erf)
    {
        ArgumentNullException.ThrowIfNull(store);
        if (dim < 1 || hidden < 1) throw new ArgumentOutOfRangeException(nameof(dim), $"{Layer}: dim {dim} and hidden {hidden} must be positive");
        if (gelu is not (GeluForm.Erf or GeluForm.Tanh)) throw new ArgumentOutOfRangeException(nameof(gelu), gelu, $"{Layer}: unknown GELU form");
        Store = store;
        Dim = dim;
        Hidden = hidden;
        Gelu = gelu;
        Fc1 = new Linear(store, fc1Prefix, dim, hidden);
        Fc2 = new Linear(store, fc2Prefix, hidden, dim);
    }

    public ParameterStore Store { get; }
    public int Dim { get; }
    public int Hidden { get; }
    public GeluForm Gelu { get; }
    public Linear Fc1 { get; }
    public Linear Fc2 { get; }

    /// <summary>y = Linear₂(GELU(Linear₁(x))). Keeps a reference to x for Backward (x must stay unchanged).</summary>
    public void Forward(Tensor x, Tensor y)
    {
        LayerBuffer.RequireBuilt(Layer, Store);
        int rows = LayerBuffer.RowsOf(Layer, nameof(x), x, Dim);
        if (LayerBuffer.RowsOf(Layer, nameof(y), y, Dim) != rows)
            throw new ArgumentException($"{Layer}: y{y.Shape} must have {rows} rows like x{x.Shape}", nameof(y));
        _rows = rows;
        if (rows == 0) return;
        var hidden = LayerBuffer.Ensure(ref _hidden, Store.Device, rows, Hidden);
        var activated = LayerBuffer.Ensure(ref _activated, Store.Device, rows, Hidden);
        Fc1.Forward(x, hidden);
        Compute.Ops.Gelu.Forward(hidden, activated, Gelu);
        Fc2.Forward(activated, y);
    }

    /// <summary>Parameter gradients accumulated; dx assigned (dx may be dy: dy is consumed before dx is written).</summary>
    public void Backward(Tensor dy, Tensor dx)
    {
        if (_rows < 0) throw new InvalidOperationException($"{Layer}: Backward called before Forward");
        int rows = LayerBuffer.RowsOf(Layer, nameof(dy), dy, Dim);
        if (rows != _rows) throw new ArgumentException($"{Layer}: dy{dy.Shape} has {rows} rows but Forward saw {_rows}", nameof(dy));
        if (rows == 0) return;
        var dHidden = LayerBuffer.Ensure(ref _dHidden, Store.Device, rows, Hidden);
        Fc2.Backward(dy, dHidden);
        Compute.Ops.Gelu.Backward(dHidden, _hidden!, dHidden, Gelu);
        Fc1.Backward(dHidden, dx);
    }

    public void Dispose()
    {
        LayerBuffer.Release(ref _hidden);
        LayerBuffer.Release(ref _activated);
        LayerBuffer.Release(ref _dHidden);
        Fc1.Dispose();
        Fc2.Dispose();
    }
}
