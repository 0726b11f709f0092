using CrateIL.Segmentation.Rendering;
using ScottPlot;

namespace CrateIL.Cli.Reporting;

/// <summary>One line of a plot: y against x, both the same length.</summary>
public sealed record Curve(double[] X, double[] Y)
{
    /// <summary>y against 1, 2, …, n (epochs counted from 1).</summary>
    public static Curve ByEpoch(double[] y) => new([.. Enumerable.Range(1, y.Length).Select(i => (double)i)], y);
}

/// <summary>
/// What one model's training recorded, for <see cref="CurvePlots.SaveTrainingFigure"/>: losses on the training and held-out
/// sets, held-out top-1 accuracy and learning rate (all against the same kind of x, e.g. epoch), and optionally a probe
/// measured per layer at the end (e.g. the coding rate R(Z) of each layer's output).
/// </summary>
public sealed record TrainingCurves(string Model, Curve TrainLoss, Curve HeldOutLoss, Curve HeldOutTop1, Curve LearningRate, Curve? Probe = null);

/// <summary>Line plots of training runs as PNG files, drawn with ScottPlot (text in DejaVu Sans).</summary>
public static class CurvePlots
{
    /// <summary>
    /// Model colours in order: blue, orange, green, purple (Tableau 10, distinguishable for the common colour-vision
    /// deficiencies), so CRATE (first) and ViT (second) keep their colours across every figure of a report.
    /// </summary>
    public static IReadOnlyList<Color> ModelColors { get; } =
        [Color.FromHex("#1F77B4"), Color.FromHex("#FF7F0E"), Color.FromHex("#2CA02C"), Color.FromHex("#9467BD")];

    /// <summary>Series up to this many points get markers, so that a handful of epochs reads as measurements, not a smooth curve.</summary>
    private const int MarkerPointLimit = 40;

    internal static readonly Lazy<string> FontName = new(RegisterFont);

    /// <summary>One panel with a line per series (colours in order of <see cref="ModelColors"/>), a legend, axis labels and title.</summary>
    public static void SaveLines(string path, string title, string xLabel, string yLabel,
        IReadOnlyList<(string Name, double[] X, double[] Y)> series, int width = 900, int height = 500)
    {
        CheckSize(width, height);
        var plot = NewPlot(title, xLabel, yLabel);
        for (int i = 0; i < series.Count; i++)
            AddLine(plot, series[i].Name, new Curve(series[i].X, series[i].Y), ModelColors[i % ModelColors.Count], dashed: false);
        Finish(plot);
        plot.SavePng(path, width, height);
    }

    /// <summary>
    /// A 2×2 figure comparing models (one colour each): loss (train solid, held-out dashed), held-out top-1 accuracy,
    /// learning rate, and the per-layer probe (a note in the panel when no model recorded one).
    /// </summary>
    public static void SaveTrainingFigure(string path, IReadOnlyList<TrainingCurves> models, string xLabel = "epoch",
        string probeTitle = "coding rate per layer", string probeXLabel = "layer", string probeYLabel = "R(Z)",
        int width = 1300, int height = 900)
    {
        CheckSize(width, height);
        if (models.Count == 0) throw new ArgumentException("no models to plot", nameof(models));
        var loss = NewPlot("loss", xLabel, "cross-entropy");
        var accuracy = NewPlot("held-out top-1 accuracy", xLabel, "top-1");
        var learningRate = NewPlot("learning rate", xLabel, "learning rate");
        var probe = NewPlot(probeTitle, probeXLabel, probeYLabel);
        for (int m = 0; m < models.Count; m++)
        {
            var run = models[m];
            var color = ModelColors[m % ModelColors.Count];
            AddLine(loss, $"{run.Model} train", run.TrainLoss, color, dashed: false);
            AddLine(loss, $"{run.Model} held-out", run.HeldOutLoss, color, dashed: true);
            AddLine(accuracy, run.Model, run.HeldOutTop1, color, dashed: false);
            var schedule = AddLine(learningRate, run.Model, run.LearningRate, color, dashed: false);
            // Models usually share one schedule: wider lines for earlier models keep every colour visible where they coincide.
            if (schedule is not null) schedule.LineWidth = 2 + 2.5f * (models.Count - 1 - m);
            if (run.Probe is { } p) AddLine(probe, run.Model, p, color, dashed: false);
        }
        if (models.All(r => r.Probe is null))
        {
            var note = probe.Add.Annotation("no probe recorded", Alignment.MiddleCenter);
            note.LabelFontName = FontName.Value;
        }
        var panels = new[] { loss, accuracy, learningRate, probe };
        foreach (var panel in panels) Finish(panel);
        var figure = new Multiplot(panels[0]); // the parameterless constructor adds a blank plot of its own
        foreach (var panel in panels.Skip(1)) figure.AddPlot(panel);
        figure.Layout = new ScottPlot.MultiplotLayouts.Grid(2, 2);
        figure.SavePng(path, width, height);
    }

    internal static Plot NewPlot(string title, string xLabel, string yLabel)
    {
        var plot = new Plot();
        plot.Font.Set(FontName.Value);
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel(yLabel);
        return plot;
    }

    internal static ScottPlot.Plottables.Scatter? AddLine(Plot plot, string name, Curve curve, Color color, bool dashed)
    {
        if (curve.X.Length != curve.Y.Length)
            throw new ArgumentException($"series '{name}' has {curve.X.Length} x values and {curve.Y.Length} y values");
        // A run records NaN where it measured nothing (e.g. epochs without evaluation); those points are left out.
        var kept = Enumerable.Range(0, curve.X.Length).Where(i => double.IsFinite(curve.X[i]) && double.IsFinite(curve.Y[i])).ToArray();
        if (kept.Length == 0) return null;
        var line = plot.Add.Scatter(kept.Select(i => curve.X[i]).ToArray(), kept.Select(i => curve.Y[i]).ToArray(), color);
        line.LegendText = name;
        line.LineWidth = 2;
        line.MarkerSize = kept.Length <= MarkerPointLimit ? 5 : 0;
        if (dashed) line.LinePattern = LinePattern.Dashed;
        return line;
    }

    internal static void Finish(Plot plot)
    {
        var lines = plot.GetPlottables().OfType<ScottPlot.Plottables.Scatter>().ToList();
        var points = lines.SelectMany(l => l.Data.GetScatterPoints()).ToList();
        // Epochs and layers are whole numbers; ticks at 0.5 would suggest measurements between them.
        if (points.Count > 0 && points.All(p => p.X == Math.Round(p.X)))
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
        if (lines.Any(l => !string.IsNullOrEmpty(l.LegendText)))
        {
            plot.ShowLegend(EmptiestCorner(points));
            plot.Legend.FontName = FontName.Value;
        }
    }

    /// <summary>
    /// The corner of the data area that the fewest points fall near (a box of 40 % × 35 % of the data range), so the
    /// legend sits inside the panel without hiding the curves: upper right for falling losses, lower right for rising accuracy.
    /// </summary>
    private static Alignment EmptiestCorner(IReadOnlyList<Coordinates> points)
    {
        if (points.Count == 0) return Alignment.UpperRight;
        double x0 = points.Min(p => p.X), x1 = points.Max(p => p.X), y0 = points.Min(p => p.Y), y1 = points.Max(p => p.Y);
        double w = Math.Max(x1 - x0, 1e-12), h = Math.Max(y1 - y0, 1e-12);
        int Count(bool right, bool upper) => points.Count(p =>
            (right ? (x1 - p.X) / w : (p.X - x0) / w) < 0.40 && (upper ? (y1 - p.Y) / h : (p.Y - y0) / h) < 0.35);
        (Alignment Corner, int Points)[] corners =
        [
            (Alignment.UpperRight, Count(right: true, upper: true)), (Alignment.LowerRight, Count(right: true, upper: false)),
            (Alignment.UpperLeft, Count(right: false, upper: true)), (Alignment.LowerLeft, Count(right: false, upper: false)),
        ];
        return corners.MinBy(c => c.Points).Corner;
    }

    private static void CheckSize(int width, int height)
    {
        if (width < 100 || height < 100) throw new ArgumentOutOfRangeException(nameof(width), $"figure size {width}×{height} is too small to read (at least 100×100)");
    }

    /// <summary>
    /// ScottPlot picks its default font by probing a list of families and here chose DejaVu Serif; use the sans face the
    /// image grids use, registered from its file when Skia cannot find it by name.
    /// </summary>
    private static string RegisterFont()
    {
        if (Fonts.GetTypeface(FigureFonts.Family, bold: false, italic: false) is { } found && found.FamilyName == FigureFonts.Family) return FigureFonts.Family;
        if (FigureFonts.FontFile(bold: false) is { } regular)
        {
            Fonts.AddFontFile(FigureFonts.Family, regular, bold: false, italic: false);
            if (FigureFonts.FontFile(bold: true) is { } bold) Fonts.AddFontFile(FigureFonts.Family, bold, bold: true, italic: false);
            return FigureFonts.Family;
        }
        return Fonts.Default;
    }
}
