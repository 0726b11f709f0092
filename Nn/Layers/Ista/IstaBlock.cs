using CrateIL.Compute.Devices;
using CrateIL.Compute.Ops;
using CrateIL.Compute.Tensors;
using CrateIL.Nn.Parameters;

namespace CrateIL.Nn.Layers;

/// <summary>
/// CRATE's second half-layer, <c>PreNorm(dim, FeedForward(...))</c>: y = ISTA(LayerNorm(x½)) with no residual
/// (crate-reference §1.2). Parameters, under <c>{prefix}</c> (e.g. <c>transformer.layers.3.1.</c>):
/// <c>norm.weight</c> and <c>norm.bias</c> [dim] (1, 0) and the dictionary <c>fn.weight</c> [dim, dim]
/// (kaiming_uniform defaults: U(±√(6/dim))). η and λ are settings, not parameters (as in the reference code).
/// </summary>
public sealed class IstaBlock : IDisposable
{
    private Device? _device;
    private Tensor? _z, _dz, _mean, _rstd;
    private IstaWorkspace? _workspace;
    private Tensor? _input;
    private TensorShape _shape;
    private readonly ParameterStore _store;

    public IstaBlock(ParameterStore store, string prefix, int dim,
        float eta = Ista.DefaultEta, float lambda = Ista.DefaultLambda, ThresholdKind threshold = ThresholdKind.OneSided)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(prefix);
        if (dim < 1) throw new ArgumentOutOfRangeException(nameof(dim), dim, "IstaBlock: dim must be at least 1");
        if (!float.IsFinite(eta)) throw new ArgumentOutOfRangeException(nameof(eta), eta, "IstaBlock: the step size η must be finite");
        if (!float.IsFinite(lambda)) throw new ArgumentOutOfRangeException(nameof(lambda), lambda, "IstaBlock: λ must be finite");
        if (threshold == ThresholdKind.Symmetric && !(eta * lambda >= 0f))
            throw new ArgumentOutOfRangeException(nameof(lambda), lambda, "IstaBlock: the symmetric soft threshold needs ηλ ≥ 0");
        if (prefix.Length > 0 && !prefix.EndsWith('.')) prefix += ".";
        _store = store;
        Dim = dim;
        Eta = eta;
        Lambda = lambda;
        Threshold = threshold;
        NormWeight = store.Add(prefix + "norm.weight", [dim], ParameterInit.Ones, decay: false);
        NormBias = store.Add(prefix + "norm.bias", [dim], ParameterInit.Zeros, decay: false);
        Dictionary = store.Add(prefix + "fn.weight", [dim, dim], ParameterInit.KaimingUniform, fanIn: dim);
    }

    public int Dim { get; }
    public float Eta { get; }
    public float Lambda { get; }
    public ThresholdKind Threshold { get; }

    /// <summary>The evaluation form of the ISTA step (<see cref="IstaForm.Auto"/> unless forced).</summary>
    public IstaForm Form { get; set; } = IstaForm.Auto;

    /// <summary>No backward pass is expected: see <see cref="IstaWorkspace.ForInference"/>.</summary>
    public bool ForInference { get; set; }

    /// <summary>The form the last forward pass used (<see cref="IstaForm.Auto"/> before the first).</summary>
    public IstaForm LastForm => _workspace?.LastForm ?? IstaForm.Auto;

    public Parameter NormWeight { get; }
    public Parameter NormBias { get; }

    /// <summary>The ISTA dictionary D (<c>fn.weight</c>).</summary>
    public Parameter Dictionary { get; }

    /// <summary>
    /// y = ISTA(LN(x)). <paramref name="x"/> is [rows, dim] or [batch, tokens, dim]; <paramref name="y"/> has its
    /// shape. x is kept (not copied) for the backward pass: leave it unchanged until <see cref="Backward"/>.
    /// </summary>
    public void Forward(Tensor x, Tensor y)
    {
        const string op = "IstaBlock.Forward";
        ArgumentNullException.ThrowIfNull(x);
        if (x.IsDisposed) throw new ObjectDisposedException(nameof(x), $"{op}: x was disposed");
        if (x.Rank < 2 || x.Shape[-1] != Dim)
            throw new ArgumentException($"{op}: x{x.Shape} must be [rows, {Dim}] or [batch, tokens, {Dim}]", nameof(x));
        Ista.Same(op, "y", y, x);
        var w = Dictionary.Value ?? throw new InvalidOperationException($"{op}: build the ParameterStore before running the layer");
        if (!ReferenceEquals(w.Device, x.Device))
            throw new ArgumentException($"{op}: x lives on {x.Device.Spec} but the parameters on {w.Device.Spec}", nameof(x));
        if (Ista.SameStorageStart(x, y))
            throw new ArgumentException($"{op}: y must not be x (x is needed by the backward pass)", nameof(y));
        int rows = checked((int)(x.Length / Dim));
        Prepare(x.Device, x.Shape, rows);
        _workspace!.Form = Form;
        _workspace.ForInference = ForInference;
        _workspace.FrozenGeneration = _store.IsFrozen ? _store.FrozenGeneration : null;
        LayerNorm.Forward(x, NormWeight.Value, NormBias.Value, _z!, _mean, _rstd);
        Ista.Run(_z!, w, y, _workspace, rows, Dim, Eta, Lambda, Threshold);
        _input = x;
    }

    /// <summary>
    /// dx = ∂L/∂x given dy = ∂L/∂y of the last <see cref="Forward"/> (assigned; it may be <paramref name="dy"/>);
    /// the gradients of norm.weight, norm.bias and fn.weight are accumulated (+=).
    /// </summary>
    public void Backward(Tensor dy, Tensor dx)
    {
        const string op = "IstaBlock.Backward";
        var x = _input ?? throw new InvalidOperationException($"{op}: run Forward first");
        if (x.IsDisposed) throw new InvalidOperationException($"{op}: the forward input was disposed before the backward pass");
        Ista.Same(op, "dy", dy, x);
        Ista.Same(op, "dx", dx, x);
        if (Ista.SameStorageStart(dx, x)) throw new ArgumentException($"{op}: dx must not be the forward input x", nameof(dx));
        int rows = (int)(x.Length / Dim);
        Ista.RunBackward(dy, _z!, Dictionary.Value, _dz!, Dictionary.Grad, _workspace!, rows, Dim);
        LayerNorm.Backward(_dz!, x, NormWeight.Value, _mean!, _rstd!, dx, NormWeight.Grad, NormBias.Grad);
    }

    /// <summary>Allocates the saved activations for a shape (first call, or when the shape or device changes).</summary>
    private void Prepare(Device device, TensorShape shape, int rows)
    {
        if (ReferenceEquals(device, _device) && shape == _shape && _z is not null) return;
        ReleaseBuffers();
        _device = device;
        _shape = shape;
        int[] dims = shape.Dims.ToArray();
        _z = device.Allocate(dims);
        _dz = device.Allocate(dims);
        _mean = device.Allocate(rows);
        _rstd = device.Allocate(rows);
        _workspace = new IstaWorkspace(device);
    }

    private void ReleaseBuffers()
    {
        _z?.Dispose(); _dz?.Dispose(); _mean?.Dispose(); _rstd?.Dispose(); _workspace?.Dispose();
        _z = _dz = _mean = _rstd = null;
        _workspace = null;
        _input = null;
    }

    public void Dispose() => ReleaseBuffers();
}
