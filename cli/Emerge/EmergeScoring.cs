using CrateIL.Segmentation.Attention;
using CrateIL.Segmentation.Coco;
using CrateIL.Imaging;
using CrateIL.Segmentation.Metrics;

namespace CrateIL.Cli.Emerge;

/// <summary>
/// One layer's (or one baseline's) attention-segmentation scores, means over the held-out images whose object covers
/// some but not all patches (<see cref="Images"/> averaged, <see cref="Skipped"/> degenerate).
/// </summary>
internal sealed record LayerScores(int Layer, double MiouMass, double MiouTop, double ObjectIouMass, double ObjectIouTop, double Auc,
    double MeanMapAuc, int Images, int Skipped)
{
    public static LayerScores From(int layer, AttentionScoreMean m) =>
        new(layer, m.MiouMass, m.MiouTopFraction, m.ObjectIouMass, m.ObjectIouTopFraction, m.BestHeadAuc, m.MeanMapAuc, m.Images, m.Skipped);
}

/// <summary>MaskCut against the true masks, class-agnostic COCO AP (segm and bbox).</summary>
internal sealed record MaskCutScores(double BoxAp, double BoxAp50, double MaskAp, double MaskAp50, int Predictions)
{
    public static MaskCutScores From(MaskDetectionScores s) => new(s.BoxAP, s.BoxAP50, s.SegmAP, s.SegmAP50, s.Predictions);
}

/// <summary>
/// A model's scores: per layer for the trained and the untrained (step-0) model, the baselines (all-foreground, centre
/// prior, random heads with the model's head count) over the same images, the best layer (highest best-head AUC of
/// the trained model — chosen on the same images for every model alike) and MaskCut AP.
/// </summary>
internal sealed record ModelScores(double Top1, double UntrainedTop1, LayerScores[] Layers, LayerScores[] Untrained, LayerScores AllForeground,
    LayerScores CentrePrior, LayerScores RandomHeads, int BestLayer, MaskCutScores MaskCut, MaskCutScores UntrainedMaskCut)
{
    /// <summary>Per held-out image, the best-head AUC at <see cref="BestLayer"/> (NaN for degenerate images), for paired comparisons.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public double[] ImageAuc { get; init; } = [];
}

internal static class EmergeScoring
{
    /// <summary>Every demo image holds exactly one object, so MaskCut looks for one (CutLER's N = 3 is for natural scenes).</summary>
    public const int MaskCutObjects = 1;

    public static ModelScores Score(EvaluatedModel trained, EvaluatedModel untrained)
    {
        int depth = trained.Maps.Length, count = trained.Images;
        int heads = trained.Maps[0][0].Heads;
        var evaluation = new AttentionSegmentationEvaluation(depth, randomHeads: heads, randomSeed: 1);
        // Per layer and image, the best-head AUC the evaluation measured, kept for the paired comparison of models.
        var auc = new double[depth][];
        for (int l = 0; l < depth; l++) auc[l] = new double[count];
        for (int i = 0; i < count; i++)
        {
            var truth = PatchTruth.FromMask(trained.TrueMasks[i], trained.GridRows, trained.GridCols);
            for (int l = 0; l < depth; l++)
                auc[l][i] = evaluation.Add(l, truth, trained.Maps[l][i], untrained.Maps[l][i]).BestHeadAuc;
        }
        var rows = evaluation.Rows();
        var layers = rows.Select(r => LayerScores.From(r.Layer, r.Model)).ToArray();
        var before = rows.Select(r => LayerScores.From(r.Layer, r.Untrained!)).ToArray();
        int best = 0;
        for (int l = 1; l < depth; l++) if (layers[l].Auc > layers[best].Auc) best = l;
        return new ModelScores(trained.Top1, untrained.Top1, layers, before,
            LayerScores.From(-1, rows[0].AllForeground), LayerScores.From(-1, rows[0].CentrePrior), LayerScores.From(-1, rows[0].RandomHeads!),
            best, MaskCut(trained), MaskCut(untrained)) { ImageAuc = auc[best] };
    }

    /// <summary>
    /// Mean and 95 % half-width (normal approximation, 1.96·SE) of the per-image difference a − b over the images both
    /// score: the two models are compared on the same held-out images, so the paired difference is what is tested.
    /// </summary>
    public static (double Mean, double HalfWidth, int Images) PairedDifference(double[] a, double[] b)
    {
        double sum = 0, sumSq = 0;
        int n = 0;
        for (int i = 0; i < Math.Min(a.Length, b.Length); i++)
        {
            if (double.IsNaN(a[i]) || double.IsNaN(b[i])) continue;
            double d = a[i] - b[i];
            sum += d;
            sumSq += d * d;
            n++;
        }
        if (n < 2) return (double.NaN, double.NaN, n);
        double mean = sum / n, variance = Math.Max(0, (sumSq - n * mean * mean) / (n - 1));
        return (mean, 1.96 * Math.Sqrt(variance / n), n);
    }

    /// <summary>COCO AP of MaskCut's masks; one constant score, so ties keep MaskCut's iteration order (crate-reference §5.7).</summary>
    private static MaskCutScores MaskCut(EvaluatedModel model)
    {
        var images = new MaskDetectionImage[model.Images];
        for (int i = 0; i < model.Images; i++)
        {
            var predictions = model.MaskCutMasks[i].Select(m => new ScoredMask(m, 1.0)).ToArray();
            images[i] = new MaskDetectionImage([model.TrueMasks[i]], predictions);
        }
        return MaskCutScores.From(MaskDetectionEvaluation.Evaluate(images));
    }
}
