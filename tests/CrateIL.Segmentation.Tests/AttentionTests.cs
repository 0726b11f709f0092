using CrateIL.Segmentation.Attention;
using CrateIL.Testing;
using Xunit;

namespace CrateIL.Segmentation.Tests;

public class AttentionTests
{
    private static bool[] Mass(float[] v, double t) => AttentionThreshold.CumulativeMass(v, 1, v.Length, t).Bits();

    private static bool[] Top(float[] v, double fraction) => AttentionThreshold.TopFraction(v, 1, v.Length, fraction).Bits();

    [Fact]
    public void Dino_mass_threshold_on_hand_computed_vector()
    {
        // sorted ascending [0.2, 0.3, 0.5], cumsum [0.2, 0.5, 1.0] > 1 − 0.6 = 0.4 ⇒ keep 0.3 and 0.5.
        Assert.Equal(new[] { true, true, false }, Mass(new[] { 0.5f, 0.3f, 0.2f }, 0.6));
        // Unnormalised input is renormalised: same answer ×10.
        Assert.Equal(new[] { true, true, false }, Mass(new[] { 5f, 3f, 2f }, 0.6));
        // Strict inequality: [0.25, 0.75] with t = 0.75: cumsum [0.25, 1] > 0.25 ⇒ only 0.75 (its mass reaches t exactly).
        Assert.Equal(new[] { false, true }, Mass(new[] { 0.25f, 0.75f }, 0.75));
        // t = 1 keeps everything, t = 0 nothing.
        Assert.All(Mass(new[] { 0.1f, 0.2f, 0.7f }, 1.0), Assert.True);
        Assert.All(Mass(new[] { 0.1f, 0.2f, 0.7f }, 0.0), Assert.False);
    }

    [Fact]
    public void Top_fraction_keeps_the_top_60_percent_with_index_order_on_ties()
    {
        var v = new[] { 0.9f, 0.1f, 0.5f, 0.5f, 0.3f, 0.2f, 0.8f, 0.5f, 0.0f, 0.4f };
        // top 6 of 10: 0.9, 0.8, 0.5(2), 0.5(3), 0.5(7), 0.4(9)
        Assert.Equal(new[] { true, false, true, true, false, false, true, true, false, true }, Top(v, 0.6));
        var w = new[] { 1f, 1f, 1f, 1f, 1f };
        Assert.Equal(new[] { true, true, true, false, false }, Top(w, 0.6));
        var big = TestData.Uniform(3, 3600, 0, 1);
        Assert.Equal(2160, AttentionThreshold.TopFraction(big, 60, 60).Area);
    }

    [Fact]
    public void Cls_rows_are_extracted_renormalised_and_reshaped_row_major()
    {
        const int heads = 2, h = 2, w = 3, n = h * w, t = n + 1;
        var attn = new float[heads * t * t];
        for (int k = 0; k < heads; k++)
            for (int j = 0; j < t; j++)
                attn[k * t * t + j] = j == 0 ? 0.5f : (k + 1) * j / 42f;   // CLS row of head k; CLS column 0.5
        var maps = AttentionMaps.FromAttention(attn, heads, h, w);
        for (int k = 0; k < heads; k++)
        {
            var m = maps.Head(k);
            Check.Close(m.ToArray().Sum(), 1.0, new Tolerance(1e-6, 0), "Eq. 10 sums to one over patches");
            for (int j = 0; j < n; j++) Check.Close(m[j], (j + 1) / 21.0, new Tolerance(1e-7, 1e-6), $"head {k} token {j}");
        }
        var raw = AttentionMaps.FromAttention(attn, heads, h, w, renormalize: false);
        Check.Close(raw.Head(1)[5], 2 * 6 / 42.0, new Tolerance(1e-7, 0), "raw (DINO) value");
        var mean = maps.Aggregate(HeadAggregation.Mean);
        Assert.Equal(1, mean.Heads);
        Check.Close(mean.Head(0)[2], 3 / 21.0, new Tolerance(1e-7, 1e-6), "mean of equal heads");
        var max = raw.Aggregate(HeadAggregation.Max);
        Check.Close(max.Head(0)[4], 2 * 5 / 42.0, new Tolerance(1e-7, 0), "max over heads");
        var rows = AttentionMaps.FromClsRows(raw.Values, heads, h, w, includesClsColumn: false, renormalize: false);
        Assert.Equal(raw.Values.ToArray(), rows.Values.ToArray());
    }

    [Fact]
    public void Upsampling_follows_pytorch_interpolate()
    {
        var src = new[] { 0f, 1f };
        Assert.Equal(new[] { 0f, 0f, 0f, 1f, 1f, 1f }, Resample.Nearest(src, 1, 2, 1, 6));
        // bilinear, align_corners=False: src = (dst + 0.5)/2 − 0.5 clamped at 0 ⇒ [0, 0.25, 0.75, 1]
        Check.Close(Resample.Bilinear(src, 1, 2, 1, 4), new[] { 0.0, 0.25, 0.75, 1.0 }, new Tolerance(1e-7, 0), "bilinear");
        Check.Close(Resample.Bilinear(src, 1, 2, 1, 4, alignCorners: true), new[] { 0.0, 1 / 3.0, 2 / 3.0, 1.0 }, new Tolerance(1e-7, 0), "bilinear align_corners");
        // 2×2 → 3×3 nearest: src = floor(dst·2/3) ⇒ rows/cols [0, 0, 1]
        var g = new[] { 1f, 2f, 3f, 4f };
        Assert.Equal(new[] { 1f, 1f, 2f, 1f, 1f, 2f, 3f, 3f, 4f }, Resample.Nearest(g, 2, 2, 3, 3));
        var maps = new AttentionMaps(g, 1, 2, 2).Upsample(16, 16);
        Assert.Equal(4f, maps.Head(0)[15 * 16 + 15]);
        Assert.Equal(2f, maps.Head(0)[7 * 16 + 8]);
    }

    [Fact]
    public void Bad_shapes_are_rejected_with_the_expected_size()
    {
        var e = Assert.Throws<ArgumentException>(() => AttentionMaps.FromAttention(new float[10], 1, 2, 2));
        Assert.Contains("5×5", e.Message);
        Assert.Throws<ArgumentException>(() => Mass(new[] { 0f, 0f }, 0.6));
    }
}
