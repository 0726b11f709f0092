namespace CrateIL.Crate.Models;

/// <summary>
/// The layer composition of a model. Every variant shares CRATE's patch embedding (LN → Linear → LN), CLS and
/// positional embedding and LN + Linear head; only the two halves of each transformer layer differ.
/// </summary>
public enum CrateVariant
{
    /// <summary>CRATE: PreNorm MSSA + residual, then PreNorm ISTA (one-sided, non-negative soft threshold).</summary>
    Crate,

    /// <summary>
    /// ViT baseline: PreNorm MHSA (separate q, k, v with bias) + residual, then PreNorm GELU MLP (ratio 4) + residual.
    /// </summary>
    Vit,

    /// <summary>Ablation: MSSA + residual, then the ViT MLP + residual in place of ISTA.</summary>
    CrateMlp,

    /// <summary>Ablation: MHSA + residual in place of MSSA, then ISTA.</summary>
    CrateMhsa,

    /// <summary>CRATE with the symmetric soft threshold sign(x)·max(|x| − ηλ, 0) in place of ReLU(x − ηλ).</summary>
    CrateSth,
}
