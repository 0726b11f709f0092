using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using CrateIL.Crate.Training;
using Spectre.Console;

namespace CrateIL.Cli.Emerge;

/// <summary>One model's entry in report.json.</summary>
internal sealed record EmergeModelEntry(string Label, string Variant, long Parameters, long Steps, double TrainSeconds, double ImagesPerSecond,
    double Top1, double UntrainedTop1, ModelScores Scores, IReadOnlyList<LayerProbe> Probes, string Checkpoint,
    IReadOnlyList<EpochMetrics> Epochs);

/// <summary>report.json: everything measured, with the settings that produced it.</summary>
internal sealed record EmergeReportData(string Command, string Date, string Cpu, string Device, int Seed, string Budget, string Dataset,
    int ImageSize, int PatchSize, int Dim, int Depth, int Heads, int DimHead, int Classes, double Chance,
    string Optimizer, double LearningRate, double WeightDecay, int WarmupSteps, int BatchSize, long StepsPerModel, float LabelSmoothing,
    int EvalImages, int MaskCutObjects, double Seconds, IReadOnlyList<EmergeModelEntry> Models, IReadOnlyList<string> Findings);

internal static partial class EmergeReport
{
    private static readonly JsonSerializerOptions s_json = new()
    {
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
    };

    public static string ToJson(EmergeReportData report) => JsonSerializer.Serialize(report, s_json);

    public static EmergeReportData Build(EmergeSettings settings, EmergeRecipeChoice recipe, string device, IReadOnlyList<ModelResult> results, double seconds)
    {
        var c = recipe.BaseConfig;
        var o = recipe.Options;
        var models = results.Select(r => new EmergeModelEntry(r.Training.Model.Label, r.Training.Config.Variant.ToString(),
            r.Training.Config.ParameterCount(), r.Training.Steps, r.Training.Seconds, r.Training.ImagesPerSecond, r.Evaluation.Top1,
            r.Scores.UntrainedTop1, r.Scores, r.Evaluation.Probes, Path.GetFileName(r.Training.Checkpoint), r.Training.Epochs)).ToArray();
        string command = "crate emerge --budget " + settings.Budget + " --dataset " + settings.Dataset + " --seed " + settings.Seed.ToString(CultureInfo.InvariantCulture)
            + (settings.Ablations ? " --ablations" : "");
        return new EmergeReportData(command, DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture), CpuModel(), device,
            settings.Seed, settings.Budget, recipe.Data.Name, recipe.Data.ImageSize, c.PatchSize, c.Dim, c.Depth, c.Heads, c.DimHead, c.Classes,
            1.0 / c.Classes, o.Optimizer.ToString(), o.LearningRate, o.WeightDecay, o.WarmupSteps, o.BatchSize, (long)o.Epochs * (recipe.Data.Train.Count / o.BatchSize),
            o.LabelSmoothing, recipe.EvalImages, EmergeScoring.MaskCutObjects, seconds, models, Findings(models, 1.0 / c.Classes));
    }

    /// <summary>
    /// What the numbers say, in sentences, decided only by the measured values: whether each model learned, whether its
    /// attention beats the baselines, and whether CRATE's beats ViT's — including when it does not.
    /// </summary>
    public static List<string> Findings(IReadOnlyList<EmergeModelEntry> models, double chance)
    {
        var f = new List<string>();
        foreach (var m in models)
        {
            var best = m.Scores.Layers[m.Scores.BestLayer];
            bool learned = m.Top1 > chance + 0.15;
            f.Add(Inv($"{m.Label}: held-out top-1 {Pct(m.Top1)} (chance {Pct(chance)}, step 0 {Pct(m.UntrainedTop1)}) — {(learned ? "it learned the task" : "it did NOT clearly learn the task, so its attention says little")}."));
            var untrainedBest = m.Scores.Untrained.MaxBy(s => s.Auc)!;
            f.Add(Inv($"{m.Label}: best layer {best.Layer + 1} — AUC {best.Auc:F3} (untrained best {untrainedBest.Auc:F3}, centre prior {m.Scores.CentrePrior.Auc:F3}, all-foreground 0.5); object IoU top-60% {best.ObjectIouTop:F3} (all-foreground {m.Scores.AllForeground.ObjectIouTop:F3}, centre prior {m.Scores.CentrePrior.ObjectIouTop:F3}); object IoU with DINO's 60 %-mass rule {best.ObjectIouMass:F3} (centre prior {m.Scores.CentrePrior.ObjectIouMass:F3})."));
        }
        var beatsCentre = models.Where(m => m.Scores.Layers[m.Scores.BestLayer].Auc > m.Scores.CentrePrior.Auc).Select(m => m.Label).ToArray();
        double centre = models.Count > 0 ? models[0].Scores.CentrePrior.Auc : double.NaN;
        f.Add(beatsCentre.Length == models.Count
            ? Inv($"Every model's best layer ranks object patches better than the centre prior (AUC {centre:F3}).")
            : Inv($"The centre prior (a Gaussian bump at the image centre, AUC {centre:F3}) is a strong baseline here because the objects are large and kept inside the image; {(beatsCentre.Length == 0 ? "no model's" : "only " + string.Join(" and ", beatsCentre) + "'s")} attention beats it. Attention above the untrained model and random heads shows learning; above the centre prior it would show localisation a fixed prior cannot give."));
        var crate = models.FirstOrDefault(m => m.Label == "CRATE");
        var vit = models.FirstOrDefault(m => m.Label == "ViT");
        if (crate is not null && vit is not null)
        {
            var cb = crate.Scores.Layers[crate.Scores.BestLayer];
            var vb = vit.Scores.Layers[vit.Scores.BestLayer];
            var (diff, half, n) = EmergeScoring.PairedDifference(crate.Scores.ImageAuc, vit.Scores.ImageAuc);
            string numbers = Inv($"best-layer AUC {cb.Auc:F3} vs {vb.Auc:F3} (paired difference {diff:+0.000;-0.000} ± {half:F3} over {n} images, 95 %), object IoU top-60% {cb.ObjectIouTop:F3} vs {vb.ObjectIouTop:F3}, object IoU mass-60% {cb.ObjectIouMass:F3} vs {vb.ObjectIouMass:F3}, MaskCut mask AP50 {crate.Scores.MaskCut.MaskAp50:F3} vs {vit.Scores.MaskCut.MaskAp50:F3}");
            var notLearned = new[] { crate, vit }.Where(m => m.Top1 <= chance + 0.15).Select(m => m.Label).ToArray();
            string verdict = notLearned.Length > 0
                ? $"cannot be judged here: {string.Join(" and ", notLearned)} did not clearly learn the task at this budget"
                : double.IsNaN(diff) ? "cannot be judged here: too few scorable images"
                : diff - half > 0 ? "holds here: CRATE's attention ranks the object's patches above the background better than ViT's"
                : diff + half < 0 ? "does NOT hold here: ViT's attention ranks the object's patches better than CRATE's"
                : "is not decided here: the difference between the two models' attention is within the noise of this many images";
            f.Add($"The paper's direction (CRATE > ViT on attention segmentation) {verdict} — {numbers}.");
        }
        return f;
    }

    /// <summary>
    /// The console summary: one row per model at its best layer, then the baselines (same code, same images), kept
    /// narrow enough for an 80-column terminal; report.md has every layer and metric.
    /// </summary>
    public static void PrintSummary(EmergeReportData report, string output)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumns("", "top-1", "layer", "AUC", "obj IoU", "mIoU", "MaskCut AP50");
        table.Columns[1].RightAligned();
        for (int i = 2; i < 7; i++) table.Columns[i].RightAligned();
        foreach (var m in report.Models)
        {
            var b = m.Scores.Layers[m.Scores.BestLayer];
            table.AddRow(Markup.Escape(m.Label), Pct(m.Top1), (b.Layer + 1).ToString(CultureInfo.InvariantCulture), F(b.Auc), F(b.ObjectIouTop), F(b.MiouTop), F(m.Scores.MaskCut.MaskAp50));
        }
        foreach (var m in report.Models)
        {
            var u = m.Scores.Untrained[m.Scores.BestLayer];
            table.AddRow($"[grey]{Markup.Escape(m.Label)} step 0[/]", Pct(m.UntrainedTop1), (u.Layer + 1).ToString(CultureInfo.InvariantCulture), F(u.Auc), F(u.ObjectIouTop), F(u.MiouTop), F(m.Scores.UntrainedMaskCut.MaskAp50));
        }
        var first = report.Models[0].Scores;
        table.AddRow("[grey]all-foreground[/]", "", "", F(first.AllForeground.Auc), F(first.AllForeground.ObjectIouTop), F(first.AllForeground.MiouTop), "");
        table.AddRow("[grey]centre prior[/]", "", "", F(first.CentrePrior.Auc), F(first.CentrePrior.ObjectIouTop), F(first.CentrePrior.MiouTop), "");
        table.AddRow("[grey]random heads[/]", "", "", F(first.RandomHeads.Auc), F(first.RandomHeads.ObjectIouTop), F(first.RandomHeads.MiouTop), "");
        table.Caption(Inv($"held-out images: {report.EvalImages}; chance {Pct(report.Chance)}; IoU thresholds: top-60% of patches; step-0 rows at the trained model's best layer"));
        AnsiConsole.Write(table);
        foreach (var line in report.Findings) AnsiConsole.WriteLine("• " + line);
        AnsiConsole.WriteLine(Inv($"report: {Path.Combine(output, "report.md")} ({report.Seconds / 60:F1} min)"));
    }

    private static string CpuModel()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
                if (line.StartsWith("model name", StringComparison.Ordinal)) return line[(line.IndexOf(':') + 1)..].Trim() + $" ({Environment.ProcessorCount} logical CPUs)";
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return $"{System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture} ({Environment.ProcessorCount} logical CPUs)";
    }

    internal static string Pct(double x) => double.IsNaN(x) ? "n/a" : (x * 100).ToString("F1", CultureInfo.InvariantCulture) + "%";
    internal static string F(double x) => double.IsNaN(x) ? "n/a" : x.ToString("F3", CultureInfo.InvariantCulture);
    internal static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
