using CrateIL.Crate.Data;
using CrateIL.Crate.Models;
using CrateIL.Crate.Training;
using Xunit;
using Xunit.Abstractions;

namespace CrateIL.Crate.Tests;

public class EmergeTrainingTests(ITestOutputHelper output)
{
    /// <summary>
    /// A tiny CRATE trained for a few seconds on a streamed, easy two-class setting (disk or cross, large, high contrast,
    /// little clutter) classifies held-out images (another seed, indexed range) clearly above chance (50 %). Every
    /// training image is fresh, so this cannot pass by memorising.
    /// </summary>
    /// <remarks>
    /// CRATE only: the same run of the ViT reaches 81 % too but takes ~7× longer on the CPU path (62 s against 8.7 s,
    /// load ≈ 117, 2026-12-06), too long for the unit suite; the ViT's learning is measured in benchmarks/RESULTS.md.
    /// </remarks>
    [Fact]
    public void A_short_run_on_streamed_data_beats_chance_on_held_out_images()
    {
        const CrateVariant variant = CrateVariant.Crate;
        var settings = new ShapesInClutterSettings
        {
            Classes = [ShapeKind.Disk, ShapeKind.Cross], MinDiameter = 0.7, MaxDiameter = 0.9,
            MinBlobs = 0, MaxBlobs = 0, MinStrokes = 0, MaxStrokes = 1, MinContrast = 0.6, ContrastAttempts = 20,
        };
        var config = new CrateConfig
        {
            ImageHeight = 16, ImageWidth = 16, PatchSize = 4, Channels = 3, Classes = 2, Dim = 32, Depth = 2, Heads = 2, Variant = variant,
        };
        const int Batch = 32, Steps = 150;
        var train = ShapesInClutter.Stream(Batch * Steps, seed: 1, imageSize: 16, patchSize: 4, settings: settings);
        var heldOut = new ShapesInClutter(400, seed: 2, imageSize: 16, patchSize: 4, settings: settings);
        string dir = TrainingTestKit.TempDirectory();
        try
        {
            var options = new TrainerOptions
            {
                Optimizer = OptimizerKind.AdamW, LearningRate = 3e-3, WeightDecay = 0.05, Beta2 = 0.999, WarmupSteps = 10,
                Epochs = 1, BatchSize = Batch, EvalBatchSize = 100, Seed = 3, ProbeImages = 0, Workers = 1, OutputDirectory = dir,
            };
            using var device = TrainingTestKit.Cpu();
            using var trainer = new Trainer(config, train, heldOut, options, device);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var metrics = trainer.Run();
            output.WriteLine($"{variant}: {trainer.Step} steps, held-out top-1 {metrics[^1].Top1:P1}, {clock.Elapsed.TotalSeconds:F1} s");
            Assert.Equal(Steps, trainer.Step);
            Assert.True(metrics[^1].Top1 >= 0.70, $"held-out top-1 {metrics[^1].Top1:P1} is not clearly above chance (50 %)");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
