using CrateIL.Compute.Devices;
using CrateIL.Crate.Data;
using CrateIL.Crate.Models;
using CrateIL.Crate.Training;

namespace CrateIL.Crate.Tests;

/// <summary>A tiny CRATE (16×16, patch 4, dim 24, depth 2, heads 2) and small ShapesInClutter sets for trainer tests.</summary>
internal static class TrainingTestKit
{
    public static CrateConfig Config { get; } = new()
    {
        ImageHeight = 16, ImageWidth = 16, PatchSize = 4, Channels = 3, Classes = ShapesInClutter.ShapeCount,
        Dim = 24, Depth = 2, Heads = 2,
    };

    public static IDataset Train(int count = 32) => new ShapesInClutter(count, seed: 11, imageSize: 16, patchSize: 4);

    public static IDataset Validation(int count = 16) => new ShapesInClutter(count, seed: 12, imageSize: 16, patchSize: 4);

    public static Device Cpu() => DeviceRegistry.Open("cpu");

    public static TrainerOptions Options(string output) => new()
    {
        Optimizer = OptimizerKind.AdamW, LearningRate = 2e-3, WeightDecay = 0.01, Beta1 = 0.9, Beta2 = 0.999,
        WarmupSteps = 1, Epochs = 2, BatchSize = 8, EvalBatchSize = 16, Seed = 5, ProbeImages = 4, Workers = 0,
        OutputDirectory = output,
    };

    public static string TempDirectory()
    {
        string path = Path.Combine(Path.GetTempPath(), "crateil-train-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(path);
        return path;
    }
}
