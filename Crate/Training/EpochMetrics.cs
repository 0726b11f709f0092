using System.Globalization;
using System.Text;
using System.Text.Json;

namespace CrateIL.Crate.Training;

/// <summary>The measurements of one finished epoch.</summary>
/// <param name="Epoch">Epochs completed (1-based).</param>
/// <param name="Step">Optimizer steps completed.</param>
/// <param name="LearningRate">Learning rate of the epoch's last step.</param>
/// <param name="TrainLoss">Mean training loss (with label smoothing) over the epoch's micro-batches.</param>
/// <param name="ValLoss">Validation cross-entropy without smoothing.</param>
/// <param name="Top1">Validation top-1 accuracy in [0, 1].</param>
/// <param name="Top5">Validation top-5 accuracy in [0, 1].</param>
/// <param name="ImagesPerSecond">Training images per second of wall time (forward, backward, step; evaluation excluded).</param>
/// <param name="GradNorm">Mean global gradient L2 norm (before clipping) over the epoch's steps.</param>
/// <param name="Probes">White-box probes per layer on the fixed probe batch (empty when disabled).</param>
public sealed record EpochMetrics(int Epoch, long Step, double LearningRate, double TrainLoss, double ValLoss, double Top1,
    double Top5, double ImagesPerSecond, double GradNorm, IReadOnlyList<LayerProbe> Probes)
{
    /// <summary>The CSV columns for a model of <paramref name="depth"/> layers.</summary>
    public static string CsvHeader(int depth)
    {
        var sb = new StringBuilder("epoch,step,lr,train_loss,val_loss,top1,top5,images_per_s,grad_norm");
        for (int l = 0; l < depth; l++) sb.Append(CultureInfo.InvariantCulture, $",coding_rate_l{l}");
        for (int l = 0; l < depth; l++) sb.Append(CultureInfo.InvariantCulture, $",sparsity_l{l}");
        return sb.ToString();
    }

    public string CsvRow(int depth)
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append(c, $"{Epoch},{Step},{LearningRate:R},{TrainLoss:R},{ValLoss:R},{Top1:R},{Top5:R},{ImagesPerSecond:F2},{GradNorm:R}");
        for (int l = 0; l < depth; l++) sb.Append(',').Append(l < Probes.Count ? Probes[l].CodingRate.ToString("R", c) : "");
        for (int l = 0; l < depth; l++) sb.Append(',').Append(l < Probes.Count ? Probes[l].Sparsity.ToString("R", c) : "");
        return sb.ToString();
    }

    /// <summary>One JSON object (a line of metrics.jsonl), per-head coding rates included.</summary>
    public string Json()
    {
        var o = new Dictionary<string, object>
        {
            ["epoch"] = Epoch, ["step"] = Step, ["lr"] = LearningRate, ["train_loss"] = TrainLoss, ["val_loss"] = ValLoss,
            ["top1"] = Top1, ["top5"] = Top5, ["images_per_s"] = ImagesPerSecond, ["grad_norm"] = GradNorm,
            ["probes"] = Probes.Select(p => new Dictionary<string, object>
            {
                ["layer"] = p.Layer, ["coding_rate"] = p.CodingRate, ["coding_rate_per_head"] = p.CodingRatePerHead,
                ["sparsity"] = p.Sparsity,
            }).ToArray(),
        };
        return JsonSerializer.Serialize(o);
    }

    /// <summary>Reads one object written by <see cref="Json"/> back (a line of metrics.jsonl).</summary>
    public static EpochMetrics FromJson(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        using var doc = JsonDocument.Parse(json);
        var r = doc.RootElement;
        var probes = r.TryGetProperty("probes", out var list)
            ? list.EnumerateArray().Select(p => new LayerProbe(p.GetProperty("layer").GetInt32(),
                p.GetProperty("coding_rate_per_head").EnumerateArray().Select(h => h.GetDouble()).ToArray(),
                p.GetProperty("coding_rate").GetDouble(), p.GetProperty("sparsity").GetDouble())).ToArray()
            : [];
        return new EpochMetrics(r.GetProperty("epoch").GetInt32(), r.GetProperty("step").GetInt64(), r.GetProperty("lr").GetDouble(),
            r.GetProperty("train_loss").GetDouble(), r.GetProperty("val_loss").GetDouble(), r.GetProperty("top1").GetDouble(),
            r.GetProperty("top5").GetDouble(), r.GetProperty("images_per_s").GetDouble(), r.GetProperty("grad_norm").GetDouble(), probes);
    }
}

/// <summary>Appends epoch metrics to <c>metrics.csv</c> (header written once) and <c>metrics.jsonl</c> in a directory.</summary>
public sealed class MetricsLog(string directory, int depth)
{
    public const string CsvName = "metrics.csv";
    public const string JsonName = "metrics.jsonl";

    public string CsvPath { get; } = Path.Combine(directory, CsvName);
    public string JsonPath { get; } = Path.Combine(directory, JsonName);

    public void Append(EpochMetrics metrics)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        Directory.CreateDirectory(directory);
        string header = EpochMetrics.CsvHeader(depth);
        bool fresh = !File.Exists(CsvPath) || new FileInfo(CsvPath).Length == 0;
        File.AppendAllText(CsvPath, (fresh ? header + "\n" : "") + metrics.CsvRow(depth) + "\n");
        File.AppendAllText(JsonPath, metrics.Json() + "\n");
    }

    /// <summary>
    /// The epochs recorded in <c>metrics.jsonl</c> of <paramref name="directory"/>, one per epoch in epoch order: where
    /// a run was resumed from an earlier checkpoint and repeated epochs, the latest record wins. Empty when there is no file.
    /// </summary>
    public static IReadOnlyList<EpochMetrics> Read(string directory)
    {
        string path = Path.Combine(directory, JsonName);
        if (!File.Exists(path)) return [];
        var byEpoch = new SortedDictionary<int, EpochMetrics>();
        foreach (string line in File.ReadLines(path))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            EpochMetrics m;
            try { m = EpochMetrics.FromJson(line); }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
            {
                // A line cut short by a killed process: the epochs around it still count.
                continue;
            }
            byEpoch[m.Epoch] = m;
        }
        return [.. byEpoch.Values];
    }
}

/// <summary>
/// The progress of one logging interval (<see cref="TrainerOptions.LogEvery"/>), reported when it is read from the device:
/// the steps taken so far (<paramref name="Step"/>, the interval's last, included) and the run's total, the interval's
/// mean training loss over its micro-batches, the learning rate of its last step, its mean gradient norm (before
/// clipping) and how many optimizer steps it covers (steps <paramref name="Step"/> − <paramref name="Steps"/> + 1 …
/// <paramref name="Step"/>; fewer than the interval when an interrupt cuts it short).
/// </summary>
public readonly record struct StepProgress(long Step, long TotalSteps, double Loss, double LearningRate, double GradNorm, int Steps);
