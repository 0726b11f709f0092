using CrateIL.Imaging;

namespace CrateIL.Segmentation.Attention;

/// <summary>Binarisation rules for attention maps.</summary>
public static class AttentionThreshold
{
    /// <summary>The CRATE emergence paper's P (Appendix B.3): the top 60 % of entries are foreground.</summary>
    public const double PaperTopFraction = 0.6;

    /// <summary>DINO's mass threshold t (paper and video_generation.py default).</summary>
    public const double DinoMass = 0.6;

    /// <summary>
    /// Top-P rule: the k = ⌈P·N⌉ largest entries are true (k computed as ⌈P·N − 1e−9⌉ so that e.g.
    /// 0.6·3600 = 2160 exactly despite rounding). Ties are broken deterministically: a larger value first, then a
    /// lower index (a stable descending sort).
    /// </summary>
    /// <remarks><paramref name="values"/> are row-major on a <paramref name="height"/> × <paramref name="width"/> grid.</remarks>
    public static BinaryMask TopFraction(ReadOnlySpan<float> values, int height, int width, double fraction = PaperTopFraction)
    {
        if (!(fraction >= 0 && fraction <= 1)) throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "fraction must be in [0, 1]");
        var mask = GridMask(values, height, width);
        int n = values.Length;
        int k = (int)Math.Ceiling(fraction * n - 1e-9);
        k = Math.Clamp(k, 0, n);
        var order = StableOrder(values, descending: true);
        var pixels = mask.Pixels;
        for (int i = 0; i < k; i++) pixels[order[i]] = 1;
        return mask;
    }

    /// <summary>
    /// DINO's rule (visualize_attention.py): sort ascending, divide by the sum, cumulative sum, keep entries with
    /// cumsum &gt; 1 − t (strict). Equivalently an entry is kept iff the normalised mass of the entries after it
    /// in the ascending order is &lt; t: the top entries up to and including the one where the mass reaches t.
    /// Computed in float64; ties in the sort are ordered by index (torch.sort gives no guarantee).
    /// Example: a = [0.5, 0.3, 0.2], t = 0.6 ⇒ sorted [0.2, 0.3, 0.5], cumsum [0.2, 0.5, 1.0] &gt; 0.4 ⇒ keep 0.3, 0.5.
    /// </summary>
    /// <remarks><paramref name="values"/> are row-major on a <paramref name="height"/> × <paramref name="width"/> grid.</remarks>
    public static BinaryMask CumulativeMass(ReadOnlySpan<float> values, int height, int width, double mass = DinoMass)
    {
        if (!(mass >= 0 && mass <= 1)) throw new ArgumentOutOfRangeException(nameof(mass), mass, "mass must be in [0, 1]");
        var mask = GridMask(values, height, width);
        int n = values.Length;
        var order = StableOrder(values, descending: false);
        double total = 0;
        foreach (float v in values)
        {
            if (!float.IsFinite(v) || v < 0) throw new ArgumentException($"attention values must be finite and non-negative, got {v}", nameof(values));
            total += v;
        }
        if (total <= 0) throw new ArgumentException("attention values sum to zero; the mass rule is undefined", nameof(values));
        double cum = 0, limit = 1 - mass;
        for (int i = 0; i < n; i++)
        {
            cum += values[order[i]] / total;
            mask.Pixels[order[i]] = cum > limit ? (byte)1 : (byte)0;
        }
        return mask;
    }

    private static BinaryMask GridMask(ReadOnlySpan<float> values, int height, int width)
    {
        if (height < 1 || width < 1 || values.Length != (long)height * width)
            throw new ArgumentException($"{values.Length} values do not make a {height}×{width} grid", nameof(values));
        return new BinaryMask(height, width);
    }

    private static int[] StableOrder(ReadOnlySpan<float> values, bool descending)
    {
        var keys = values.ToArray();
        var order = new int[keys.Length];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        Array.Sort(order, (a, b) =>
        {
            int c = descending ? keys[b].CompareTo(keys[a]) : keys[a].CompareTo(keys[b]);
            return c != 0 ? c : a.CompareTo(b);
        });
        return order;
    }
}
