using CrateIL.Segmentation.Attention;

namespace CrateIL.Segmentation.Metrics;

/// <summary>
/// The "objects sit in the middle" baseline: an isotropic Gaussian on the patch grid centred on the grid's centre,
/// normalised to sum 1 like one softmax head, so it goes through exactly the thresholds and scores a model's heads do.
/// A model that does not beat it has learnt nothing about where the object is beyond photographers' framing.
/// </summary>
public static class CentrePrior
{
    /// <summary>Default width: σ = a quarter of the shorter grid side, in patches.</summary>
    public static double DefaultSigma(int gridHeight, int gridWidth) => Math.Min(gridHeight, gridWidth) / 4.0;

    /// <summary>
    /// One-head map [1, gridHeight, gridWidth]: exp(−d²/(2σ²)) / Σ, where d is the distance in patches from a patch
    /// centre to the grid centre ((h − 1)/2, (w − 1)/2). Every value is positive, so the mass rule is defined.
    /// </summary>
    public static AttentionMaps Map(int gridHeight, int gridWidth, double? sigma = null)
    {
        if (gridHeight < 1 || gridWidth < 1) throw new ArgumentOutOfRangeException(nameof(gridHeight), $"grid {gridHeight}×{gridWidth} must be non-empty");
        double s = sigma ?? DefaultSigma(gridHeight, gridWidth);
        if (!(s > 0) || double.IsInfinity(s)) throw new ArgumentOutOfRangeException(nameof(sigma), s, "σ must be positive and finite");
        double cy = (gridHeight - 1) / 2.0, cx = (gridWidth - 1) / 2.0;
        var weights = new double[gridHeight * gridWidth];
        double total = 0;
        for (int r = 0; r < gridHeight; r++)
            for (int c = 0; c < gridWidth; c++)
            {
                double d2 = (r - cy) * (r - cy) + (c - cx) * (c - cx);
                double w = Math.Exp(-d2 / (2 * s * s));
                weights[r * gridWidth + c] = w;
                total += w;
            }
        // the centre patch has d² ≤ 0.5, so total ≥ exp(−0.25/σ²) > 0 unless σ is absurdly small; then fall back to
        // the uniform map rather than divide by zero (the baseline degenerates to "no preference", AUC 0.5)
        var values = new float[weights.Length];
        for (int i = 0; i < values.Length; i++)
            values[i] = total > 0 ? (float)(weights[i] / total) : 1f / values.Length;
        return new AttentionMaps(values, 1, gridHeight, gridWidth);
    }
}
