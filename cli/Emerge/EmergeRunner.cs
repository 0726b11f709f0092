using CrateIL.Cli.Commands;
using System.Diagnostics;
using System.Globalization;
using CrateIL.Compute.Devices;

namespace CrateIL.Cli.Emerge;

/// <summary>The command line of <c>crate emerge</c>, validated.</summary>
internal sealed record EmergeSettings(string Budget, bool Ablations, string Dataset, string? Device, int? Threads, int Seed, string? Output, bool Json);

/// <summary>
/// The whole emergence run: train each model with the shared recipe (step-0 evaluation before, full evaluation after),
/// score, and write the run folder. Everything is written to a staging folder first and moved into place at the end,
/// so an interrupted or failed run leaves no half-written report.
/// </summary>
internal static class EmergeRunner
{
    public const int PictureSamples = 6;

    public static int Run(EmergeSettings settings)
    {
        if (settings.Threads is < 1) throw new ArgumentException($"--threads {settings.Threads} must be at least 1");
        string output = settings.Output ?? Path.GetFullPath(Path.Combine("runs", "emerge-" + DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)));
        if (File.Exists(output)) throw new ArgumentException($"--out {output}: a file is in the way");
        if (Directory.Exists(output) && Directory.EnumerateFileSystemEntries(output).Any())
            throw new ArgumentException($"--out {output}: the folder exists and is not empty");
        var recipe = EmergeRecipes.For(settings.Budget, settings.Dataset, settings.Seed);
        using var device = CliErrors.OpenDevice(settings.Device, settings.Threads);
        bool interactive = !settings.Json && !Console.IsOutputRedirected && !Console.IsErrorRedirected;
        Action<string> log = settings.Json ? Console.Error.WriteLine : Console.WriteLine;
        string staging = output.TrimEnd(Path.DirectorySeparatorChar) + ".partial-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
        Directory.CreateDirectory(staging);
        var clock = Stopwatch.StartNew();
        // Ctrl-C ends the run at once; the staging folder goes with it, so nothing half-written is left behind.
        ConsoleCancelEventHandler cancel = (_, _) =>
        {
            try { Directory.Delete(staging, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            Console.Error.WriteLine("crate emerge: interrupted; nothing was written");
        };
        Console.CancelKeyPress += cancel;
        try
        {
            var models = EmergeModel.For(settings.Ablations);
            log(string.Create(CultureInfo.InvariantCulture,
                $"crate emerge: {string.Join(" vs ", models.Select(m => m.Label))} on {recipe.Data.Name} {recipe.Data.ImageSize}², patch {recipe.BaseConfig.PatchSize}, dim {recipe.BaseConfig.Dim}, depth {recipe.BaseConfig.Depth}, heads {recipe.BaseConfig.Heads}; budget {recipe.Budget}: {recipe.Options.Epochs}×{recipe.Data.Train.Count / recipe.Options.BatchSize} steps of {recipe.Options.BatchSize}; device {device.Spec}"));
            var results = new List<ModelResult>();
            foreach (var model in models)
            {
                EvaluatedModel? untrained = null, trained = null;
                var outcome = EmergeTraining.Train(model, recipe, device, staging, interactive, log,
                    m => untrained = EmergeEvaluation.Run(m, recipe.Data, recipe.EvalImages, PictureSamples, EmergeScoring.MaskCutObjects),
                    m => trained = EmergeEvaluation.Run(m, recipe.Data, recipe.EvalImages, PictureSamples, EmergeScoring.MaskCutObjects));
                var scores = EmergeScoring.Score(trained!, untrained!);
                results.Add(new ModelResult(outcome, trained!, scores));
                log(string.Create(CultureInfo.InvariantCulture,
                    $"  {model.Label}: {outcome.Steps} steps in {outcome.Seconds:F0} s, held-out top-1 {trained!.Top1 * 100:F1}% (chance {100.0 / recipe.BaseConfig.Classes:F1}%)"));
            }
            var report = EmergeReport.Build(settings, recipe, device.Spec, results, clock.Elapsed.TotalSeconds);
            EmergeReport.Write(staging, report, results);
            if (Directory.Exists(output)) Directory.Delete(output);
            Directory.CreateDirectory(Path.GetDirectoryName(output)!);
            Directory.Move(staging, output);
            if (settings.Json) Console.WriteLine(EmergeReport.ToJson(report));
            else EmergeReport.PrintSummary(report, output);
            return 0;
        }
        catch
        {
            try { Directory.Delete(staging, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
        finally
        {
            Console.CancelKeyPress -= cancel;
        }
    }
}

/// <summary>One model's training outcome, evaluation and scores.</summary>
internal sealed record ModelResult(TrainingOutcome Training, EvaluatedModel Evaluation, ModelScores Scores);
