using System.Globalization;
using CrateIL.Cli.Reporting;
using CrateIL.Imaging;
using CrateIL.Segmentation.Metrics;
using CrateIL.Segmentation.Rendering;

namespace CrateIL.Cli.Emerge;

/// <summary>
/// The report's pictures: for the same held-out images and every model, the image, its true mask, each head's CLS
/// attention at the model's best layer (with the true outline and the head's AUC), the PCA map and MaskCut's mask;
/// and the training curves of all models in one figure.
/// </summary>
internal static class EmergePictures
{
    public static IReadOnlyList<(string Title, string File)> Write(string folder, EmergeReportData report, IReadOnlyList<ModelResult> results)
    {
        var files = new List<(string, string)>();
        int samples = results.Min(r => r.Evaluation.Samples.Length);
        const int PerFigure = 3;
        for (int first = 0, figure = 1; first < samples; first += PerFigure, figure++)
        {
            string file = string.Create(CultureInfo.InvariantCulture, $"attention-{figure}.png");
            AttentionGrid(results, first, Math.Min(PerFigure, samples - first)).SavePng(Path.Combine(folder, file));
            files.Add((string.Create(CultureInfo.InvariantCulture, $"Held-out images {first + 1}–{Math.Min(samples, first + PerFigure)}: attention, PCA and MaskCut"), file));
        }
        CurvePlots.SaveTrainingFigure(Path.Combine(folder, "training.png"), results.Select(Curves).ToArray(), xLabel: "step",
            probeTitle: "coding rate Rᶜ per layer (held-out)", probeXLabel: "layer", probeYLabel: "Rᶜ");
        files.Add(("Training curves", "training.png"));
        return files;
    }

    private static ImageGrid AttentionGrid(IReadOnlyList<ModelResult> results, int first, int count)
    {
        int heads = results[0].Training.Config.Heads;
        var headers = new List<string> { "image", "true mask" };
        for (int h = 0; h < heads; h++) headers.Add($"head {h}");
        headers.Add("PCA");
        headers.Add("MaskCut");
        var grid = new ImageGrid(headers)
        {
            Title = "CLS attention (Eq. 10) at each model's best layer",
            Footnote = "heat maps: each scaled min→max on its own; cyan line = true object; captions: the head's AUC (0.5 = no information)",
            ColorBar = Colormap.Inferno,
        };
        for (int i = first; i < first + count; i++)
            foreach (var r in results)
            {
                var s = r.Evaluation.Samples[i];
                int side = r.Evaluation.ImageSize, layer = r.Scores.BestLayer;
                var image = new RgbImage(side, side, s.Rgb);
                var truth = PatchTruth.FromMask(s.Mask, r.Evaluation.GridRows, r.Evaluation.GridCols);
                var maps = s.LayerMaps[layer];
                var cells = new List<GridCell?>
                {
                    new(Tiles.Image(image), Inv($"{r.Training.Model.Label}: {(s.Predicted == s.Label ? "right" : "wrong")}")),
                    new(Tiles.Mask(image, s.Mask)),
                };
                for (int h = 0; h < maps.Heads; h++)
                {
                    double auc = RocAuc.Compute(maps.Head(h), truth.Foreground);
                    cells.Add(new GridCell(Tiles.Heatmap(image, maps.Head(h), maps.Height, maps.Width, contour: s.Mask), Inv($"AUC {auc:F2}")));
                }
                cells.Add(new GridCell(Tiles.Pca(s.PcaRgb, r.Evaluation.GridRows, r.Evaluation.GridCols)));
                cells.Add(s.MaskCutMasks.Count == 0
                    ? new GridCell(Tiles.Image(image), "no object")
                    : new GridCell(Tiles.Masks(image, s.MaskCutMasks), Inv($"IoU {s.MaskCutMasks[0].Iou(s.Mask):F2}")));
                grid.AddRow(Inv($"{r.Training.Model.Label} #{i + 1}, layer {layer + 1}"), cells);
            }
        return grid;
    }

    private static TrainingCurves Curves(ModelResult r)
    {
        var steps = r.Training.Steps100;
        var epochs = r.Training.Epochs;
        double[] epochSteps = epochs.Select(e => (double)e.Step).ToArray();
        var probes = r.Evaluation.Probes;
        return new TrainingCurves(r.Training.Model.Label,
            new Curve(steps.Select(s => (double)s.Step).ToArray(), steps.Select(s => s.Loss).ToArray()),
            new Curve(epochSteps, epochs.Select(e => e.ValLoss).ToArray()),
            new Curve(epochSteps, epochs.Select(e => e.Top1).ToArray()),
            new Curve(steps.Select(s => (double)s.Step).ToArray(), steps.Select(s => s.LearningRate).ToArray()),
            new Curve(probes.Select(p => (double)(p.Layer + 1)).ToArray(), probes.Select(p => p.CodingRate).ToArray()));
    }

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
