using CrateIL.Crate.Data;
using CrateIL.Crate.Training;
using CrateIL.Imaging;

namespace CrateIL.Cli.Emerge;

/// <summary>
/// The command line's names for the measured <see cref="EmergeRecipe"/> budgets and datasets (benchmarks/RESULTS.md,
/// "Emerge recipe"), turned into what the run needs.
/// </summary>
internal static class EmergeRecipes
{
    public static readonly string[] Budgets = ["tiny", "default", "long"];
    public static readonly string[] Datasets = ["shapes", "fashion-clutter"];

    public static EmergeRecipeChoice For(string budget, string dataset, int seed)
    {
        var recipe = EmergeRecipe.For(budget switch
        {
            "tiny" => EmergeBudget.Tiny,
            "default" => EmergeBudget.Default,
            "long" => EmergeBudget.Long,
            _ => throw new ArgumentException($"--budget '{budget}' is not one of {string.Join(", ", Budgets)}"),
        });
        var kind = dataset switch
        {
            "shapes" => EmergeDataset.Shapes,
            "fashion-clutter" => EmergeDataset.FashionClutter,
            _ => throw new ArgumentException($"--dataset '{dataset}' is not one of {string.Join(", ", Datasets)}"),
        };
        var (train, heldOut) = recipe.Data(kind, seed);
        var data = new MaskedData(dataset, train, heldOut);
        var config = recipe.Config(Crate.Models.CrateVariant.Crate, heldOut.ClassCount);
        return new EmergeRecipeChoice(budget, data, config, recipe.Training with { Seed = seed }, heldOut.Count);
    }

    private sealed class MaskedData(string name, IDataset train, IMaskedDataset heldOut) : IEmergeData
    {
        public string Name => name;
        public IDataset Train => train;
        public IDataset HeldOut => heldOut;
        public int ImageSize => heldOut.ImageSize;
        public void RenderHeldOut(int index, Span<byte> rgb, BinaryMask mask) => heldOut.RenderMasked(index, rgb, mask);
    }
}
