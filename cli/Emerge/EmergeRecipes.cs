using CrateIL.Crate.Data;
using CrateIL.Crate.Models;
using CrateIL.Crate.Training;
using CrateIL.Nn.Layers;

namespace CrateIL.Cli.Emerge;

/// <summary>PROVISIONAL recipe until the measured one lands: ShapesInClutter at 32², patch 4.</summary>
internal static class EmergeRecipes
{
    public static readonly string[] Budgets = ["tiny", "default", "long"];
    public static readonly string[] Datasets = ["shapes", "fashion-clutter"];

    public static EmergeRecipeChoice For(string budget, string dataset, int seed)
    {
        int epochs = budget switch { "tiny" => 2, "default" => 8, _ => 24 };
        int stepsPerEpoch = budget switch { "tiny" => 20, "default" => 150, _ => 150 };
        int batch = 64;
        var data = new ShapesData(stepsPerEpoch * batch, seed);
        var config = new CrateConfig
        {
            ImageHeight = 32, ImageWidth = 32, PatchSize = 4, Channels = 3, Classes = ShapesInClutter.ShapeCount,
            Dim = 96, Depth = 4, Heads = 4, Pool = Pooling.Cls,
        };
        var options = new TrainerOptions
        {
            Optimizer = OptimizerKind.AdamW, LearningRate = 1e-3, WeightDecay = 0.05, Beta2 = 0.999, WarmupSteps = Math.Min(100, stepsPerEpoch),
            LabelSmoothing = 0.1f, Epochs = epochs, BatchSize = batch, EvalBatchSize = 128, Seed = seed, ProbeImages = 8, Workers = 1,
        };
        return new EmergeRecipeChoice(budget, data, config, options, budget == "tiny" ? 64 : 256);
    }

    private sealed class ShapesData(int trainCount, int seed) : IEmergeData
    {
        private readonly ShapesInClutter _heldOut = new(512, seed * 2L + 2, 32, 4);

        public string Name => "shapes";
        public IDataset Train { get; } = new ShapesInClutter(trainCount, seed * 2L + 1, 32, 4);
        public IDataset HeldOut => _heldOut;
        public int ImageSize => 32;
        public void RenderHeldOut(int index, Span<byte> rgb, Span<bool> mask) => _heldOut.Render(index, rgb, mask);
    }
}
