using CrateIL.Crate.Data;
using CrateIL.Crate.Models;

namespace CrateIL.Crate.Training;

/// <summary>How much training <c>crate emerge</c> spends on each of its two models.</summary>
public enum EmergeBudget
{
    /// <summary>For a test: both models together in about a minute on 2 cores.</summary>
    Tiny,

    /// <summary>The headline run: both models and their evaluation within 10 minutes on 2 cores.</summary>
    Default,

    /// <summary>About 3.5× the default's steps, for a clearer result when there is time.</summary>
    Long,
}

/// <summary>What the emergence demo trains and measures on.</summary>
public enum EmergeDataset
{
    /// <summary><see cref="ShapesInClutter"/> with <see cref="ShapesInClutterSettings.Emerge"/> (no files needed).</summary>
    Shapes,

    /// <summary><see cref="FashionClutter"/> with <see cref="FashionClutterSettings.Emerge"/> (Debian package dataset-fashion-mnist).</summary>
    FashionClutter,
}

/// <summary>
/// The one recipe <c>crate emerge</c> trains both a CRATE and a ViT of the same width, depth, heads and patch with, at a
/// given budget: the model shape, the optimizer and schedule, the step budget (<see cref="TrainerOptions.Epochs"/> are
/// evaluation intervals of <see cref="StepsPerEpoch"/> steps each) and the data (a streamed training set, every image
/// fresh, and an indexed held-out set of another seed whose images and exact masks are addressable by index). The values
/// come from the measurements in benchmarks/RESULTS.md, section "Emerge recipe".
/// </summary>
public sealed record EmergeRecipe
{
    public required EmergeBudget Budget { get; init; }
    public required int ImageSize { get; init; }
    public required int PatchSize { get; init; }
    public required int Dim { get; init; }
    public required int Depth { get; init; }
    public required int Heads { get; init; }

    /// <summary>Optimizer steps between two evaluations; the training set streams StepsPerEpoch·BatchSize fresh images per epoch.</summary>
    public required int StepsPerEpoch { get; init; }

    /// <summary>Held-out images the per-epoch accuracy is measured on (and the emergence evaluation may draw from).</summary>
    public required int HeldOutImages { get; init; }

    /// <summary>Optimizer, learning rate and schedule, batch, epochs; OutputDirectory and Seed are the caller's.</summary>
    public required TrainerOptions Training { get; init; }

    /// <summary>Total optimizer steps per model.</summary>
    public long TotalSteps => (long)Training.Epochs * StepsPerEpoch;

    /// <summary>Training images per model (every one fresh).</summary>
    public long TotalImages => TotalSteps * Training.BatchSize;

    /// <summary>The recipe for a budget.</summary>
    public static EmergeRecipe For(EmergeBudget budget) => budget switch
    {
        EmergeBudget.Tiny => Make(budget, epochs: 1, stepsPerEpoch: 300, heldOut: 200, warmup: 15),
        EmergeBudget.Default => Make(budget, epochs: 4, stepsPerEpoch: 500, heldOut: 1000, warmup: 100),
        EmergeBudget.Long => Make(budget, epochs: 7, stepsPerEpoch: 1000, heldOut: 1000, warmup: 350),
        _ => throw new ArgumentOutOfRangeException(nameof(budget), budget, "unknown emerge budget"),
    };

    private static EmergeRecipe Make(EmergeBudget budget, int epochs, int stepsPerEpoch, int heldOut, int warmup) => new()
    {
        Budget = budget,
        ImageSize = 32,
        PatchSize = 4,
        Dim = 96,
        Depth = 4,
        Heads = 4,
        StepsPerEpoch = stepsPerEpoch,
        HeldOutImages = heldOut,
        Training = new TrainerOptions
        {
            Optimizer = OptimizerKind.AdamW,
            LearningRate = 2e-3,
            WeightDecay = 0.05,
            Beta1 = 0.9,
            Beta2 = 0.999,
            WarmupSteps = warmup,
            LabelSmoothing = 0.1f,
            Epochs = epochs,
            BatchSize = 32,
            EvalBatchSize = 100,
            Workers = 1,
        },
    };

    /// <summary>The model of <paramref name="variant"/> (CRATE or ViT) for a dataset of <paramref name="classes"/> classes.</summary>
    public CrateConfig Config(CrateVariant variant, int classes) => new CrateConfig
    {
        ImageHeight = ImageSize, ImageWidth = ImageSize, PatchSize = PatchSize, Channels = 3, Classes = classes,
        Dim = Dim, Depth = Depth, Heads = Heads, DimHead = Dim / Heads, Variant = variant,
    }.Validate();

    /// <summary>
    /// The training stream (seed·2 + 1) and the held-out set (seed·2 + 2; for Fashion-MNIST also the test split's items).
    /// <paramref name="fashionDirectory"/> defaults to the Debian package's folder; a missing package is a
    /// <see cref="DatasetException"/> whose message names it.
    /// </summary>
    public (IDataset Train, IMaskedDataset HeldOut) Data(EmergeDataset dataset, int seed = 0, string? fashionDirectory = null)
    {
        int imagesPerEpoch = StepsPerEpoch * Training.BatchSize;
        long trainSeed = seed * 2L + 1, heldOutSeed = seed * 2L + 2;
        switch (dataset)
        {
            case EmergeDataset.Shapes:
                return (ShapesInClutter.Stream(imagesPerEpoch, trainSeed, ImageSize, PatchSize, settings: ShapesInClutterSettings.Emerge),
                        new ShapesInClutter(HeldOutImages, heldOutSeed, ImageSize, PatchSize, settings: ShapesInClutterSettings.Emerge));
            case EmergeDataset.FashionClutter:
                var items = FashionItems.Load(fashionDirectory ?? IdxDataset.DebianFashionMnistDirectory);
                return (FashionClutter.Stream(items, imagesPerEpoch, trainSeed, ImageSize, PatchSize, settings: FashionClutterSettings.Emerge),
                        new FashionClutter(items, HeldOutImages, heldOutSeed, ImageSize, PatchSize, heldOut: true, settings: FashionClutterSettings.Emerge));
            default:
                throw new ArgumentOutOfRangeException(nameof(dataset), dataset, "unknown emerge dataset");
        }
    }
}
