using CrateIL.Crate.Training;
using ScottPlot;

namespace CrateIL.Cli.Reporting;

/// <summary>
/// <c>curves.png</c> of a <c>crate train</c> run, drawn with ScottPlot against (fractional) epochs in a 3×2 grid:
/// loss (per-step training loss of this process, epoch means, validation), validation top-1/top-5, the learning-rate
/// schedule (taken so far solid, still to come dashed), the coding rate R(Z) and the sparsity of every layer, and the
/// mean gradient norm.
/// </summary>
internal static class TrainCurves
{
    public const string FileName = "curves.png";

    /// <param name="epochs">Every finished epoch (e.g. <see cref="MetricsLog.Read"/>, so a resumed run's earlier epochs count).</param>
    /// <param name="steps">Logging-interval losses recorded by this process (any subset of the reports).</param>
    /// <param name="learningRateAt">The schedule: learning rate at a 0-based optimizer step.</param>
    /// <param name="stepsDone">Optimizer steps taken so far.</param>
    public static void Save(string path, IReadOnlyList<EpochMetrics> epochs, IReadOnlyList<StepProgress> steps,
        Func<long, double> learningRateAt, long stepsDone, long totalSteps, int stepsPerEpoch, int width = 1400, int height = 1200)
    {
        ArgumentNullException.ThrowIfNull(epochs);
        ArgumentNullException.ThrowIfNull(steps);
        ArgumentNullException.ThrowIfNull(learningRateAt);
        ArgumentOutOfRangeException.ThrowIfLessThan(stepsPerEpoch, 1);
        double EpochOf(long step) => step / (double)stepsPerEpoch;
        var blue = CurvePlots.ModelColors[0];
        var orange = CurvePlots.ModelColors[1];

        var loss = CurvePlots.NewPlot("loss", "epoch", "cross-entropy");
        if (steps.Count > 0)
        {
            var perStep = CurvePlots.AddLine(loss, "train (logged)", new Curve([.. steps.Select(s => EpochOf(s.Step))], [.. steps.Select(s => s.Loss)]),
                blue.WithAlpha(0.35), dashed: false);
            if (perStep is not null)
            {
                perStep.LineWidth = 1;
                perStep.MarkerSize = 0;
            }
        }
        CurvePlots.AddLine(loss, "train (epoch mean)", ByEpoch(epochs, m => m.TrainLoss), blue, dashed: false);
        CurvePlots.AddLine(loss, "validation", ByEpoch(epochs, m => m.ValLoss), orange, dashed: true);

        var accuracy = CurvePlots.NewPlot("validation accuracy", "epoch", "accuracy");
        CurvePlots.AddLine(accuracy, "top-1", ByEpoch(epochs, m => m.Top1), blue, dashed: false);
        CurvePlots.AddLine(accuracy, "top-5", ByEpoch(epochs, m => m.Top5), orange, dashed: true);

        var learningRate = CurvePlots.NewPlot("learning rate", "epoch", "learning rate");
        var (doneX, doneY, aheadX, aheadY) = Schedule(learningRateAt, stepsDone, totalSteps, stepsPerEpoch);
        Thin(CurvePlots.AddLine(learningRate, "taken", new Curve(doneX, doneY), blue, dashed: false));
        Thin(CurvePlots.AddLine(learningRate, "to come", new Curve(aheadX, aheadY), blue.WithAlpha(0.5), dashed: true));

        int depth = epochs.Count == 0 ? 0 : epochs.Max(m => m.Probes.Count);
        var codingRate = CurvePlots.NewPlot("coding rate R(Z) per layer", "epoch", "R(Z)");
        var sparsity = CurvePlots.NewPlot("ISTA output sparsity per layer", "epoch", "fraction of zeros");
        var layers = new ScottPlot.Colormaps.Viridis();
        for (int l = 0; l < depth; l++)
        {
            int layer = l;
            // Viridis from dark (first layer) to yellow-green (last), stopping short of its faint yellow end.
            var color = layers.GetColor(depth == 1 ? 0 : 0.85 * layer / (depth - 1));
            CurvePlots.AddLine(codingRate, $"layer {layer}", ByEpoch(epochs, m => layer < m.Probes.Count ? m.Probes[layer].CodingRate : double.NaN), color, dashed: false);
            CurvePlots.AddLine(sparsity, $"layer {layer}", ByEpoch(epochs, m => layer < m.Probes.Count ? m.Probes[layer].Sparsity : double.NaN), color, dashed: false);
        }
        var gradient = CurvePlots.NewPlot("mean gradient norm (before clipping)", "epoch", "‖g‖");
        CurvePlots.AddLine(gradient, "gradient norm", ByEpoch(epochs, m => m.GradNorm), blue, dashed: false);

        var panels = new[] { loss, accuracy, learningRate, gradient, codingRate, sparsity };
        foreach (var panel in panels)
        {
            if (epochs.Count == 0 && panel != learningRate && panel != loss)
                panel.Add.Annotation("no epoch finished yet", Alignment.MiddleCenter).LabelFontName = CurvePlots.FontName.Value;
            CurvePlots.Finish(panel);
        }
        var figure = new Multiplot(panels[0]);
        foreach (var panel in panels.Skip(1)) figure.AddPlot(panel);
        figure.Layout = new ScottPlot.MultiplotLayouts.Grid(3, 2);
        // Write beside the target and rename, so a viewer never sees a half-written PNG.
        string temp = path + ".partial.png";
        figure.SavePng(temp, width, height);
        File.Move(temp, path, overwrite: true);
    }

    private static Curve ByEpoch(IReadOnlyList<EpochMetrics> epochs, Func<EpochMetrics, double> value) =>
        new([.. epochs.Select(m => (double)m.Epoch)], [.. epochs.Select(value)]);

    private static void Thin(ScottPlot.Plottables.Scatter? line)
    {
        if (line is null) return;
        line.MarkerSize = 0;
    }

    /// <summary>The schedule sampled at up to ~400 steps, split at <paramref name="stepsDone"/> (the split point in both halves).</summary>
    private static (double[] DoneX, double[] DoneY, double[] AheadX, double[] AheadY) Schedule(Func<long, double> at, long stepsDone,
        long totalSteps, int stepsPerEpoch)
    {
        long stride = Math.Max(1, totalSteps / 400);
        var samples = new SortedSet<long> { 0, Math.Max(0, totalSteps - 1), Math.Clamp(stepsDone, 0, Math.Max(0, totalSteps - 1)) };
        for (long s = 0; s < totalSteps; s += stride) samples.Add(s);
        // Step s's rate applies from s to s + 1: plot it at the end of the step, in epochs.
        var done = samples.Where(s => s <= stepsDone).ToArray();
        var ahead = samples.Where(s => s >= Math.Min(stepsDone, totalSteps - 1)).ToArray();
        return ([.. done.Select(s => (s + 1) / (double)stepsPerEpoch)], [.. done.Select(s => at(s))],
                [.. ahead.Select(s => (s + 1) / (double)stepsPerEpoch)], [.. ahead.Select(s => at(s))]);
    }
}
