using CrateIL.Compute.Tensors;
using CrateIL.Nn.Parameters;

namespace CrateIL.Nn.Layers;

/// <summary>
/// The attention half of a ViT block (timm <c>Block</c> without layer scale or drop path): x + MHSA(LN(x)).
/// Parameters under <c>{prefix}</c> (e.g. <c>blocks.{l}.</c>): <c>norm1.weight</c>, <c>norm1.bias</c>,
/// <c>attn.qkv.weight</c>, <c>attn.qkv.bias</c>, <c>attn.proj.weight</c>, <c>attn.proj.bias</c>.
/// </summary>
public sealed class MhsaBlock : IDisposable
{
    private readonly PreNormResidual _block;

    public MhsaBlock(ParameterStore store, string prefix, int dim, int heads, int dimHead)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(prefix);
        NormWeight = store.Add(prefix + "norm1.weight", [dim], ParameterInit.Ones, decay: false);
        NormBias = store.Add(prefix + "norm1.bias", [dim], ParameterInit.Zeros, decay: false);
        Attention = new Mhsa(store, prefix + "attn.", dim, heads, dimHead);
        _block = new PreNormResidual(NormWeight, NormBias, Attention, "MHSA block");
    }

    public Parameter NormWeight { get; }
    public Parameter NormBias { get; }
    public Mhsa Attention { get; }

    /// <summary>output = x + MHSA(LN(x)); x must stay unchanged until <see cref="Backward"/> and must not be output.</summary>
    public void Forward(Tensor x, Tensor output, int batch) => _block.Forward(x, output, batch);

    /// <summary>dx = dy + LN backward(MHSA backward(dy)) (assigned; may be dy); parameter gradients accumulate.</summary>
    public void Backward(Tensor dy, Tensor dx) => _block.Backward(dy, dx);

    public void Dispose()
    {
        _block.Dispose();
        Attention.Dispose();
    }
}
