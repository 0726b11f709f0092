using System.Globalization;
using CrateIL.Cli.Reporting;
using CrateIL.Crate.Models;
using CrateIL.Crate.Training;

namespace CrateIL.Cli.Commands;

/// <summary>
/// The training loop of <c>crate train</c> as a user sees it: a header, the progress display (<see cref="TrainProgress"/>),
/// <c>curves.png</c> after every checkpoint, Ctrl-C handling (finish the step, write a resumable checkpoint, exit 130 with
/// the command that resumes; a second Ctrl-C aborts at once) and the closing summary.
/// </summary>
internal static class TrainRun
{
    /// <summary>Exit code of a run stopped by Ctrl-C (128 + SIGINT, what shells report for it).</summary>
    public const int InterruptedExitCode = 130;

    /// <summary>
    /// Tests: called after every logging interval (every step with <c>--log-every 1</c>); returning true acts like Ctrl-C
    /// after that step (the trainer runs in-process, so a real SIGINT would stop the test host).
    /// </summary>
    internal static Func<StepProgress, bool>? InterruptWhen { get; set; }

    private static readonly TimeSpan DuplicateSignalWindow = TimeSpan.FromMilliseconds(500);

    public static int Execute(Trainer trainer, CrateConfig config, string deviceSpec, int trainCount, int validationCount,
        bool json, Func<string> resumeCommand)
    {
        var options = trainer.Options;
        Action<string> info = json ? Console.Error.WriteLine : Console.WriteLine;
        var removed = trainer.RemoveStaleTemporaryFiles();
        int startStepInEpoch = trainer.StepInEpoch;
        if (json)
        {
            Console.WriteLine(TrainProgress.Json("start", ("model", config.ToString()), ("device", deviceSpec), ("train_images", trainCount),
                ("validation_images", validationCount), ("epochs", options.Epochs), ("steps_per_epoch", trainer.StepsPerEpoch),
                ("total_steps", trainer.TotalSteps), ("step", trainer.Step), ("output", options.OutputDirectory),
                ("removed_temporary_files", removed)));
        }
        else
        {
            Console.WriteLine($"model: {config}");
            Console.WriteLine($"device: {deviceSpec}; {trainCount} training / {validationCount} validation images; {trainer.StepsPerEpoch} steps per epoch; output {options.OutputDirectory}");
            if (trainer.Step > 0)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"resuming at epoch {trainer.EpochsCompleted + 1} step {trainer.StepInEpoch} of {trainer.StepsPerEpoch} ({trainer.Step} of {trainer.TotalSteps} steps done)"));
        }
        if (removed.Count > 0)
            info($"removed {removed.Count} stale temporary file(s) of interrupted checkpoint writes: {string.Join(", ", removed)}");

        // Interval losses of this process for the curves: about a thousand points over the run at most (one per
        // logging interval when --log-every makes fewer).
        var steps = new List<StepProgress>();
        long every = Math.Max(1, trainer.TotalSteps / 1000);
        using var interrupt = new CancellationTokenSource();
        var hook = InterruptWhen;
        trainer.StepCompleted = s =>
        {
            if (steps.Count == 0 || s.Step / every > steps[^1].Step / every || s.Step == s.TotalSteps) steps.Add(s);
            if (hook is not null && hook(s)) RequestStop(interrupt, info);
        };
        // In a data-parallel job only the writer (rank 0) touches the output folder: two ranks writing the same
        // curves.png.partial.png raced (one rank's rename removed the other's file).
        void SaveCurves()
        {
            if (trainer.IsWriter) TrainCurves.Save(Path.Combine(options.OutputDirectory, TrainCurves.FileName), MetricsLog.Read(options.OutputDirectory),
            steps, trainer.LearningRateAt, trainer.Step, trainer.TotalSteps, trainer.StepsPerEpoch);
        }
        trainer.EpochCompleted = _ => SaveCurves();

        var style = TrainProgress.StyleFor(json);
        var progress = new TrainProgress(trainer, style, Console.WriteLine)
        {
            LogEvery = trainer.LogEvery,
            EpochLine = m => EpochLine(m, trainer),
        };
        var firstSignal = System.Diagnostics.Stopwatch.StartNew();
        ConsoleCancelEventHandler onCtrlC = (_, e) =>
        {
            // The first Ctrl-C stops after the current step; a second one is left to terminate the process. A second
            // SIGINT within half a second is the same request delivered twice (`timeout -s INT` signals both the process
            // and its process group), not a user pressing again.
            if (interrupt.IsCancellationRequested && firstSignal.Elapsed > DuplicateSignalWindow) return;
            e.Cancel = true;
            if (!interrupt.IsCancellationRequested) firstSignal.Restart();
            RequestStop(interrupt, info);
        };
        Console.CancelKeyPress += onCtrlC;
        var wall = System.Diagnostics.Stopwatch.StartNew();
        IReadOnlyList<EpochMetrics> results;
        try
        {
            results = progress.Run(() => trainer.Run(interrupt.Token));
        }
        catch (TrainingInterruptedException stopped)
        {
            SaveCurves();
            string resume = resumeCommand();
            if (json)
                Console.WriteLine(TrainProgress.Json("interrupted", ("epoch", stopped.Epoch + 1), ("step_in_epoch", stopped.StepInEpoch),
                    ("steps_per_epoch", stopped.StepsPerEpoch), ("step", stopped.Step), ("checkpoint", stopped.Checkpoint), ("resume", resume)));
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"interrupted at epoch {stopped.Epoch + 1} step {stopped.StepInEpoch} of {stopped.StepsPerEpoch}; checkpoint {stopped.Checkpoint}; resume with: {resume}"));
            return InterruptedExitCode;
        }
        finally
        {
            Console.CancelKeyPress -= onCtrlC;
        }
        SaveCurves();
        var all = MetricsLog.Read(options.OutputDirectory);
        // Each epoch's images/s covers the steps this process took (a resumed epoch's first steps ran in another).
        double trainSeconds = results.Select((m, i) => (i == 0 ? trainer.StepsPerEpoch - startStepInEpoch : trainer.StepsPerEpoch)
            * (double)options.BatchSize / Math.Max(1e-9, m.ImagesPerSecond)).Sum();
        string curves = Path.Combine(options.OutputDirectory, TrainCurves.FileName);
        if (json)
        {
            Console.WriteLine(TrainProgress.Json("done", ("steps", trainer.Step), ("final_top1", all.Count > 0 ? all[^1].Top1 : double.NaN),
                ("best_top1", trainer.BestTop1), ("best_epoch", trainer.BestEpoch), ("train_seconds", Math.Round(trainSeconds, 1)),
                ("wall_seconds", Math.Round(wall.Elapsed.TotalSeconds, 1)), ("last", trainer.Checkpoints.LastPath),
                ("best", trainer.Checkpoints.BestPath), ("curves", curves)));
            return 0;
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"done: {trainer.Step} steps, final top1 {(all.Count > 0 ? all[^1].Top1 : double.NaN) * 100:F1}% (best {trainer.BestTop1 * 100:F1}% at epoch {trainer.BestEpoch}), {trainSeconds:F0} s training, {wall.Elapsed.TotalSeconds:F0} s wall"));
        Console.WriteLine($"checkpoints: {trainer.Checkpoints.LastPath}, {trainer.Checkpoints.BestPath}; curves: {curves}");
        return 0;
    }

    private static void RequestStop(CancellationTokenSource interrupt, Action<string> info)
    {
        if (interrupt.IsCancellationRequested) return;
        interrupt.Cancel();
        info("interrupt: finishing the current step and writing a checkpoint (Ctrl-C again aborts without one)");
    }

    private static string EpochLine(EpochMetrics m, Trainer trainer) => string.Create(CultureInfo.InvariantCulture,
        $"epoch {m.Epoch,3}  step {m.Step,6}  lr {m.LearningRate:E2}  train {m.TrainLoss:F4}  val {m.ValLoss:F4}  top1 {m.Top1 * 100:F1}%  top5 {m.Top5 * 100:F1}%  {m.ImagesPerSecond:F1} img/s  |g| {m.GradNorm:F3}  Rc {string.Join("/", m.Probes.Select(p => p.CodingRate.ToString("F1", CultureInfo.InvariantCulture)))}  sparsity {string.Join("/", m.Probes.Select(p => p.Sparsity.ToString("F2", CultureInfo.InvariantCulture)))}{(m.Epoch == trainer.BestEpoch ? "  best" : "")}");
}
