using CrateIL.Imaging;
using CrateIL.Segmentation.Attention;

namespace CrateIL.Segmentation.Metrics;

/// <summary>Thresholds for <see cref="AttentionSegmentationScore"/>: DINO's mass rule and the paper's top-P rule.</summary>
public sealed record AttentionScoreSettings(
    double Mass = AttentionThreshold.DinoMass,
    double TopFraction = AttentionThreshold.PaperTopFraction);

/// <summary>
/// How well one image's CLS→patch attention (one layer, all heads) segments its object, on the patch grid.
/// <list type="bullet">
/// <item><c>Miou*</c>: the paper's Eq. 13–14 with M = 2 classes (background and object), the best head per class,
/// each head's map binarised by DINO's mass rule (<c>Mass</c>) or by the paper's top-P rule (<c>TopFraction</c>).</item>
/// <item><c>ObjectIou*</c>: the object class's Eq. 13 term alone (best head), free of the background class, whose
/// large IoU lets trivial masks look good when objects are small.</item>
/// <item><see cref="BestHeadAuc"/>: the best head's ROC AUC (<see cref="RocAuc"/>) of raw attention vs the object
/// patches — no threshold; <see cref="BestAucHead"/> names it. <see cref="MeanMapAuc"/>: AUC of the mean-over-heads map.</item>
/// </list>
/// Every value is NaN (and <see cref="BestAucHead"/> −1) when the truth is degenerate (<see cref="PatchTruth.IsDegenerate"/>).
/// </summary>
public sealed record AttentionSegmentationScore(
    double MiouMass,
    double MiouTopFraction,
    double ObjectIouMass,
    double ObjectIouTopFraction,
    double BestHeadAuc,
    int BestAucHead,
    double MeanMapAuc)
{
    /// <summary>The score of an image whose object covers no patch or every patch.</summary>
    public static AttentionSegmentationScore Undefined { get; } =
        new(double.NaN, double.NaN, double.NaN, double.NaN, double.NaN, -1, double.NaN);

    public bool IsUndefined => double.IsNaN(MiouMass);

    /// <summary>
    /// Scores every head of <paramref name="maps"/> (a softmax per head, e.g. from <see cref="AttentionMaps.FromBatch"/>)
    /// against <paramref name="truth"/> on the same grid. Any valid softmax map — peaked to one-hot, all equal —
    /// is scored without throwing; thresholds break ties by patch index (<see cref="AttentionThreshold"/>).
    /// </summary>
    public static AttentionSegmentationScore Measure(AttentionMaps maps, PatchTruth truth, AttentionScoreSettings? settings = null)
    {
        ArgumentNullException.ThrowIfNull(maps);
        ArgumentNullException.ThrowIfNull(truth);
        if (maps.Height != truth.GridHeight || maps.Width != truth.GridWidth)
            throw new ArgumentException($"attention grid {maps.Height}×{maps.Width} differs from the truth grid {truth.GridHeight}×{truth.GridWidth}", nameof(maps));
        if (truth.IsDegenerate) return Undefined;
        var s = settings ?? new AttentionScoreSettings();

        var massMasks = maps.MassMasks(s.Mass);
        var topMasks = maps.TopFractionMasks(s.TopFraction);
        var (miouMass, objectMass) = Ious(massMasks, truth);
        var (miouTop, objectTop) = Ious(topMasks, truth);

        double bestAuc = double.NegativeInfinity;
        int bestHead = -1;
        for (int k = 0; k < maps.Heads; k++)
        {
            double auc = RocAuc.Compute(maps.Head(k), truth.Foreground);
            if (auc > bestAuc) { bestAuc = auc; bestHead = k; }
        }
        double meanAuc = RocAuc.Compute(maps.Aggregate(HeadAggregation.Mean).Head(0), truth.Foreground);
        return new AttentionSegmentationScore(miouMass, miouTop, objectMass, objectTop, bestAuc, bestHead, meanAuc);
    }

    /// <summary>
    /// Baseline: every patch predicted object, under both thresholds (a mask, not a map, so no rule applies). Its AUC
    /// is that of a constant map, 0.5, computed by the same <see cref="RocAuc"/>.
    /// </summary>
    public static AttentionSegmentationScore AllForeground(PatchTruth truth)
    {
        ArgumentNullException.ThrowIfNull(truth);
        if (truth.IsDegenerate) return Undefined;
        var all = new BinaryMask(truth.GridHeight, truth.GridWidth);
        all.SetAll();
        var (miou, objectIou) = Ious([all], truth);
        var constant = new float[truth.Patches];
        Array.Fill(constant, 1f / truth.Patches);
        double auc = RocAuc.Compute(constant, truth.Foreground);
        return new AttentionSegmentationScore(miou, miou, objectIou, objectIou, auc, 0, auc);
    }

    /// <summary>Baseline: the <see cref="Metrics.CentrePrior"/> map as a one-head attention map, scored by <see cref="Measure"/>.</summary>
    public static AttentionSegmentationScore CentrePrior(PatchTruth truth, AttentionScoreSettings? settings = null, double? sigma = null)
    {
        ArgumentNullException.ThrowIfNull(truth);
        return Measure(Metrics.CentrePrior.Map(truth.GridHeight, truth.GridWidth, sigma), truth, settings);
    }

    /// <summary>Baseline: <paramref name="heads"/> <see cref="RandomAttention"/> heads drawn from <paramref name="random"/>, scored by <see cref="Measure"/>.</summary>
    public static AttentionSegmentationScore RandomHeads(PatchTruth truth, int heads, Random random, AttentionScoreSettings? settings = null)
    {
        ArgumentNullException.ThrowIfNull(truth);
        return Measure(RandomAttention.Map(heads, truth.GridHeight, truth.GridWidth, random), truth, settings);
    }

    private static (double Miou, double ObjectIou) Ious(IReadOnlyList<BinaryMask> headMasks, PatchTruth truth)
    {
        // Eq. 14 over exactly {background, object}: both present because the truth is not degenerate
        double miou = HeadwiseMiou.Image(headMasks, truth.ToLabels(), includeBackground: true);
        double objectIou = HeadwiseMiou.BestHeadIou(headMasks, truth.Foreground);
        return (miou, objectIou);
    }
}
