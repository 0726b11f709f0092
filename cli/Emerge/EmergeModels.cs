using CrateIL.Crate.Models;

namespace CrateIL.Cli.Emerge;

/// <summary>One model of the emergence comparison: its label in tables and file names, and its architecture variant.</summary>
internal sealed record EmergeModel(string Label, string FileStem, CrateVariant Variant)
{
    public static EmergeModel Crate { get; } = new("CRATE", "crate", CrateVariant.Crate);
    public static EmergeModel Vit { get; } = new("ViT", "vit", CrateVariant.Vit);
    public static EmergeModel CrateMlp { get; } = new("CRATE-MLP", "crate-mlp", CrateVariant.CrateMlp);
    public static EmergeModel CrateMhsa { get; } = new("CRATE-MHSA", "crate-mhsa", CrateVariant.CrateMhsa);

    /// <summary>CRATE and ViT; with the ablations also the paper's Table 2 variants (MLP instead of ISTA, MHSA instead of MSSA).</summary>
    public static IReadOnlyList<EmergeModel> For(bool ablations) =>
        ablations ? [Crate, Vit, CrateMlp, CrateMhsa] : [Crate, Vit];
}
