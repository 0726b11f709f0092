using CrateIL.Compute.Devices;
using CrateIL.Compute.Ops;
using CrateIL.Compute.Tensors;
using CrateIL.Nn.Parameters;

namespace CrateIL.Nn.Layers;

/// <summary>A layer mapping normalised tokens [batch·n, dim] to [batch·n, dim] (MSSA, MHSA).</summary>
internal interface ITokenMixer
{
    int Dim { get; }

    /// <summary>output = f(y), or output += f(y) when <paramref name="accumulate"/>.</summary>
    void Forward(Tensor y, Tensor output, int batch, bool accumulate);

    /// <summary>dy = (or +=) ∂L/∂y from dOut; parameter gradients accumulate.</summary>
    void Backward(Tensor dOut, Tensor dy, bool accumulate);
}

/// <summary>
/// x + f(LN(x)) around a token mixer f (PyTorch's PreNorm plus the transformer residual): LayerNorm eps 1e-5 with
/// affine parameters, its statistics saved for backward. Buffers are sized on the first call per row count and reused.
/// </summary>
internal sealed class PreNormResidual : IDisposable
{
    private readonly Parameter _gamma, _beta;
    private readonly ITokenMixer _mixer;
    private readonly string _what;
    private Device? _device;
    private Tensor? _ln, _mean, _rstd, _dLn, _x2;
    private Tensor? _x;
    private long _rows = -1;

    public PreNormResidual(Parameter gamma, Parameter beta, ITokenMixer mixer, string what)
    {
        _gamma = gamma;
        _beta = beta;
        _mixer = mixer;
        _what = what;
    }

    private int Dim => _mixer.Dim;

    public void Forward(Tensor x, Tensor output, int batch)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(output);
        if (x.Length % Dim != 0 || x.Length == 0)
            throw new ArgumentException($"{_what}: x{x.Shape} is not [rows, dim={Dim}]", nameof(x));
        if (output.Length != x.Length || !ReferenceEquals(output.Device, x.Device))
            throw new ArgumentException($"{_what}: output{output.Shape} must match x{x.Shape} in length and device", nameof(output));
        if (ReferenceEquals(output.Storage, x.Storage) && output.Offset == x.Offset)
            throw new ArgumentException($"{_what}: output must not be x (backward needs x)", nameof(output));
        Ensure(x.Device, x.Length / Dim);
        _x = x;
        // The row view of x is cached per input tensor, so steady-state calls allocate nothing.
        if (_x2 is null || !ReferenceEquals(_x2.Storage, x.Storage) || _x2.Offset != x.Offset || _x2.Length != x.Length)
            _x2 = x.Rank == 2 && x.Shape[1] == Dim ? x : x.Reshape(checked((int)(x.Length / Dim)), Dim);
        LayerNorm.Forward(_x2, _gamma.Value, _beta.Value, _ln!, _mean, _rstd);
        x.CopyTo(output);
        _mixer.Forward(_ln!, output, batch, accumulate: true);
    }

    public void Backward(Tensor dy, Tensor dx)
    {
        if (_x is null) throw new InvalidOperationException($"{_what} backward needs a forward pass first");
        if (dy.Length != _x.Length || dx.Length != _x.Length)
            throw new ArgumentException($"{_what} backward: dy{dy.Shape} and dx{dx.Shape} must match the forward input {_x.Shape}");
        _mixer.Backward(dy, _dLn!, accumulate: false);
        LayerNorm.Backward(_dLn!, _x2!, _gamma.Value, _mean!, _rstd!, _dLn!, _gamma.Grad, _beta.Grad);
        Elementwise.Add(dy, _dLn!, dx);
    }

    private void Ensure(Device device, long rows)
    {
        if (_device == device && _rows == rows) return;
        DisposeBuffers();
        _device = device;
        _rows = rows;
        int r = checked((int)rows);
        _ln = device.Allocate(r, Dim);
        _dLn = device.Allocate(r, Dim);
        _mean = device.Allocate(r);
        _rstd = device.Allocate(r);
    }

    private void DisposeBuffers()
    {
        _ln?.Dispose(); _dLn?.Dispose(); _mean?.Dispose(); _rstd?.Dispose();
        _ln = _dLn = _mean = _rstd = null;
    }

    public void Dispose() => DisposeBuffers();
}
