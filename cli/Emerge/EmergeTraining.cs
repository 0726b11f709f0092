using System.Diagnostics;
using System.Globalization;
using CrateIL.Compute.Devices;
using CrateIL.Crate.Models;
using CrateIL.Crate.Training;
using Spectre.Console;

namespace CrateIL.Cli.Emerge;

/// <summary>What training one model of the comparison produced.</summary>
internal sealed record TrainingOutcome(
    EmergeModel Model, CrateConfig Config, long Steps, double Seconds, double ImagesPerSecond,
    IReadOnlyList<EpochMetrics> Epochs, IReadOnlyList<StepProgress> Steps100, string Checkpoint);

/// <summary>
/// Trains the comparison's models one after the other with the same recipe, showing a progress bar per model (step,
/// loss, held-out accuracy, images/s, ETA) on a terminal and one plain line per evaluation interval otherwise.
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
        var options = recipe.Options with { OutputDirectory = Path.Combine(outDir, "train-" + model.FileStem) };
        using var trainer = new Trainer(config, recipe.Data.Train, recipe.Data.HeldOut, options, device);
        beforeTraining(trainer.Model);
        var steps = new List<StepProgress>();
        long every = Math.Max(1, trainer.TotalSteps / 200);
        double lastTop1 = double.NaN;
        var clock = Stopwatch.StartNew();
        // Every step is recorded (about 200 points for the curves); a terminal also gets a live bar.
        Action<StepProgress>? show = null;
        trainer.StepCompleted = s =>
        {
            if (s.Step % every == 0 || s.Step == s.TotalSteps) steps.Add(s);
            show?.Invoke(s);
        };
        if (interactive)
        {
            AnsiConsole.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                    new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask(Describe(model, 0, trainer.TotalSteps, double.NaN, double.NaN, 0), maxValue: trainer.TotalSteps);
                    show = s =>
                    {
                        double imagesPerSecond = s.Step * (double)options.BatchSize / Math.Max(1e-9, clock.Elapsed.TotalSeconds);
                        task.Value = s.Step;
                        task.Description = Describe(model, s.Step, s.TotalSteps, s.Loss, lastTop1, imagesPerSecond);
                    };
                    trainer.EpochCompleted = m => lastTop1 = m.Top1;
                    trainer.Run();
                    task.Value = task.MaxValue;
                });
        }
        else
        {
            trainer.EpochCompleted = m => log(string.Create(CultureInfo.InvariantCulture,
                $"  {model.Label,-10} step {m.Step,6}/{trainer.TotalSteps}  loss {m.TrainLoss:F3}  held-out loss {m.ValLoss:F3}  top-1 {m.Top1 * 100:F1}%  {m.ImagesPerSecond:F0} img/s  elapsed {clock.Elapsed.TotalSeconds:F0} s"));
            trainer.Run();
        }
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

    private static string Describe(EmergeModel model, long step, long total, double loss, double top1, double imagesPerSecond) =>
        string.Create(CultureInfo.InvariantCulture,
            $"{model.Label,-10} step {step,6}/{total}  loss {(double.IsNaN(loss) ? "  -  " : loss.ToString("F3", CultureInfo.InvariantCulture))}  held-out top-1 {(double.IsNaN(top1) ? "  -  " : (top1 * 100).ToString("F1", CultureInfo.InvariantCulture) + "%")}  {imagesPerSecond,5:F0} img/s");
}
