using System.Diagnostics;
using System.Globalization;
using CrateIL.Compute.Devices;
using CrateIL.Crate.Models;
using CrateIL.Crate.Training;
using CrateIL.Cli.Reporting;

namespace CrateIL.Cli.Emerge;

/// <summary>What training one model of the comparison produced.</summary>
internal sealed record TrainingOutcome(
    EmergeModel Model, CrateConfig Config, long Steps, double Seconds, double ImagesPerSecond,
    IReadOnlyList<EpochMetrics> Epochs, IReadOnlyList<StepProgress> Steps100, string Checkpoint);

/// <summary>
/// Trains the comparison's models one after the other with the same recipe, showing <see cref="TrainProgress"/>'s bar
/// (step, loss, lr, images/s, ETA) and a line per evaluation interval (held-out loss and top-1) on a terminal, and the
/// plain lines otherwise.
/// </summary>
internal static class EmergeTraining
{
    /// <summary>
    /// Trains <paramref name="model"/>; <paramref name="beforeTraining"/> sees the freshly initialised model (the step-0
    /// baseline) and <paramref name="afterTraining"/> the trained one, both while the trainer is alive.
    /// </summary>
    public static TrainingOutcome Train(EmergeModel model, EmergeRecipeChoice recipe, Device device, string outDir,
        bool interactive, Action<string> log, Action<CrateModel> beforeTraining, Action<CrateModel> afterTraining)
    {
        var config = recipe.ConfigFor(model.Variant);
        // The loss is read from the device once per logging interval: about 200 intervals (the points of the curves).
        long totalSteps = (long)recipe.Options.Epochs * (recipe.Data.Train.Count / recipe.Options.BatchSize);
        var options = recipe.Options with
        {
            OutputDirectory = Path.Combine(outDir, "train-" + model.FileStem),
            LogEvery = recipe.Options.LogEvery ?? (int)Math.Clamp(totalSteps / 200, 1, int.MaxValue),
        };
        using var trainer = new Trainer(config, recipe.Data.Train, recipe.Data.HeldOut, options, device);
        beforeTraining(trainer.Model);
        var steps = new List<StepProgress>();
        var clock = Stopwatch.StartNew();
        // Every interval is recorded; the display shows a bar per evaluation interval on a terminal and one plain line
        // per evaluation interval otherwise.
        trainer.StepCompleted = steps.Add;
        var progress = new TrainProgress(trainer, interactive ? ProgressStyle.Bar : ProgressStyle.Lines, log)
        {
            Label = $"{model.Label,-10} ",
            EpochLine = m => string.Create(CultureInfo.InvariantCulture,
                $"  {model.Label,-10} step {m.Step,6}/{trainer.TotalSteps}  loss {m.TrainLoss:F3}  held-out loss {m.ValLoss:F3}  top-1 {m.Top1 * 100:F1}%  {m.ImagesPerSecond:F0} img/s  elapsed {clock.Elapsed.TotalSeconds:F0} s"),
        };
        progress.Run(() => trainer.Run());
        clock.Stop();
        var epochs = trainer.History.ToList();
        afterTraining(trainer.Model);
        string checkpoint = Path.Combine(outDir, model.FileStem + ".safetensors");
        // A plain model file (weights + configuration), not the training checkpoint with optimizer state, so it loads in
        // every command; the resumable checkpoints stay in train-<model>/.
        CrateCheckpoint.Save(trainer.Model, checkpoint);
        long images = trainer.Step * options.BatchSize;
        return new TrainingOutcome(model, config, trainer.Step, clock.Elapsed.TotalSeconds, images / Math.Max(1e-9, clock.Elapsed.TotalSeconds),
            epochs, steps, checkpoint);
    }
}
