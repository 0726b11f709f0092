using CrateIL.Compute.Devices;
using CrateIL.Compute.Ops;
using CrateIL.Compute.Tensors;
using CrateIL.Nn.Parameters;

namespace CrateIL.Nn.Layers;

/// <summary>
/// The first half of a CRATE layer: PreNorm MSSA with the residual, x½ = x + MSSA(LN(x)) (LayerNorm eps 1e-5, affine).
/// Parameters under <c>{prefix}</c> (e.g. <c>transformer.layers.{l}.0.</c>): <c>norm.weight</c>, <c>norm.bias</c>,
/// <c>fn.qkv.weight</c>, <c>fn.to_out.0.weight</c>, <c>fn.to_out.0.bias</c>.
/// </summary>
public sealed class MssaBlock : IDisposable
{
    private Device? _device;
    private Tensor? _ln, _mean, _rstd, _dLn;
    private Tensor? _x;
    private long _rows = -1;

    public MssaBlock(ParameterStore store, string prefix, int dim, int heads, int dimHead)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(prefix);
        NormWeight = store.Add(prefix + "norm.weight", [dim], ParameterInit.Ones, decay: false);
        NormBias = store.Add(prefix + "norm.bias", [dim], ParameterInit.Zeros, decay: false);
        Attention = new Mssa(store, prefix + "fn.", dim, heads, dimHead);
    }

    public Parameter NormWeight { get; }
    public Parameter NormBias { get; }
    public Mssa Attention { get; }
    public int Dim => Attention.Dim;

    /// <summary>
    /// output = x + MSSA(LN(x)) for x [batch·n, dim] (or [batch, n, dim]). <paramref name="x"/> must stay unchanged
    /// until <see cref="Backward"/> and must not be <paramref name="output"/>.
    /// </summary>
    public void Forward(Tensor x, Tensor output, int batch)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(output);
        if (x.Length % Dim != 0 || x.Length == 0)
            throw new ArgumentException($"MSSA block: x{x.Shape} is not [rows, dim={Dim}]", nameof(x));
        if (output.Length != x.Length || !ReferenceEquals(output.Device, x.Device))
            throw new ArgumentException($"MSSA block: output{output.Shape} must match x{x.Shape} in length and device", nameof(output));
        if (ReferenceEquals(output.Storage, x.Storage) && output.Offset == x.Offset)
            throw new ArgumentException("MSSA block: output must not be x (backward needs x)", nameof(output));
        Ensure(x.Device, x.Length / Dim);
        _x = x;
        var x2 = View(x);
        LayerNorm.Forward(x2, NormWeight.Value, NormBias.Value, _ln!, _mean, _rstd);
        x.CopyTo(output);
        Attention.Forward(_ln!, output, batch, accumulate: true);
    }

    /// <summary>dx = dy + LN backward(MSSA backward(dy)) (assigned; may be dy); parameter gradients accumulate.</summary>
    public void Backward(Tensor dy, Tensor dx)
    {
        if (_x is null) throw new InvalidOperationException("MSSA block backward needs a forward pass first");
        if (dy.Length != _x.Length || dx.Length != _x.Length)
            throw new ArgumentException($"MSSA block backward: dy{dy.Shape} and dx{dx.Shape} must match the forward input {_x.Shape}");
        Attention.Backward(dy, _dLn!);
        LayerNorm.Backward(_dLn!, View(_x), NormWeight.Value, _mean!, _rstd!, _dLn!, NormWeight.Grad, NormBias.Grad);
        Elementwise.Add(dy, _dLn!, dx);
    }

    private Tensor View(Tensor t) => t.Rank == 2 && t.Shape[1] == Dim ? t : t.Reshape(checked((int)(t.Length / Dim)), Dim);

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

    public void Dispose()
    {
        DisposeBuffers();
        Attention.Dispose();
    }
}
