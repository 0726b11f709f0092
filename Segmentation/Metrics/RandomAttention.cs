using CrateIL.Segmentation.Attention;

namespace CrateIL.Segmentation.Metrics;

/// <summary>
/// The "attention that knows nothing" baseline: heads of independent uniform values, each normalised to sum 1 like a
/// softmax. With several heads the best-head scores (Eq. 13, best AUC) rise above a single random head's only by the
/// luck of the draw, which is exactly the advantage a real model's best-head score also gets for free.
/// </summary>
public static class RandomAttention
{
    /// <summary><paramref name="heads"/> random maps on the grid, drawn from <paramref name="random"/> (head-major, row-major).</summary>
    public static AttentionMaps Map(int heads, int gridHeight, int gridWidth, Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        if (heads < 1 || gridHeight < 1 || gridWidth < 1)
            throw new ArgumentOutOfRangeException(nameof(heads), $"maps {heads}×{gridHeight}×{gridWidth} must be non-empty");
        int n = gridHeight * gridWidth;
        var values = new float[heads * n];
        var draw = new double[n];
        for (int k = 0; k < heads; k++)
        {
            double total = 0;
            for (int i = 0; i < n; i++) total += draw[i] = random.NextDouble();
            // NextDouble is in [0, 1): an all-zero draw is possible only in principle; it would be the uniform map
            for (int i = 0; i < n; i++) values[k * n + i] = total > 0 ? (float)(draw[i] / total) : 1f / n;
        }
        return new AttentionMaps(values, heads, gridHeight, gridWidth);
    }
}
