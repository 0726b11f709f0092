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
    private readonly PreNormResidual _block;

    public MssaBlock(ParameterStore store, string prefix, int dim, int heads, int dimHead)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(prefix);
        NormWeight = store.Add(prefix + "norm.weight", [dim], ParameterInit.Ones, decay: false);
        NormBias = store.Add(prefix + "norm.bias", [dim], ParameterInit.Zeros, decay: false);
        Attention = new Mssa(store, prefix + "fn.", dim, heads, dimHead);
        _block = new PreNormResidual(NormWeight, NormBias, Attention, "MSSA block");
    }

    public Parameter NormWeight { get; }
    public Parameter NormBias { get; }
    public Mssa Attention { get; }
    public int Dim => Attention.Dim;

    /// <summary>
    /// output = x + MSSA(LN(x)) for x [batch·n, dim] (or [batch, n, dim]). <paramref name="x"/> must stay unchanged
    /// until <see cref="Backward"/> and must not be <paramref name="output"/>.
    /// </summary>
    public void Forward(Tensor x, Tensor output, int batch) => _block.Forward(x, output, batch);

    /// <summary>dx = dy + LN backward(MSSA backward(dy)) (assigned; may be dy); parameter gradients accumulate.</summary>
    public void Backward(Tensor dy, Tensor dx) => _block.Backward(dy, dx);

    public void Dispose()
    {
        _block.Dispose();
        Attention.Dispose();
    }
}
