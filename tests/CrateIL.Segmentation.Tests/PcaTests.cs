using CrateIL.Segmentation.MaskCut;
using CrateIL.Segmentation.Pca;
using CrateIL.Testing;
using Xunit;

namespace CrateIL.Segmentation.Tests;

public class PcaTests
{
    [Fact]
    public void Pca_recovers_planted_low_rank_directions_and_variances()
    {
        const int rows = 500, dim = 24;
        var rng = new Random(1);
        var u1 = new double[dim]; var u2 = new double[dim];
        u1[3] = 0.6; u1[7] = -0.8;                       // unit, orthogonal
        u2[0] = 1 / Math.Sqrt(2); u2[1] = 1 / Math.Sqrt(2);
        var noise = TestData.Normal(2, rows * dim, 0.01f);
        // Exactly centred, uncorrelated scores (random ones would correlate by ~1/√rows and tilt the components).
        var a = Enumerable.Range(0, rows).Select(r => (float)(3 * Math.Sqrt(2) * Math.Cos(2 * Math.PI * r / rows))).ToArray();
        var b = Enumerable.Range(0, rows).Select(r => (float)(Math.Sqrt(2) * Math.Sin(2 * Math.PI * r / rows))).ToArray();
        var x = new float[rows * dim];
        for (int r = 0; r < rows; r++)
            for (int k = 0; k < dim; k++) x[r * dim + k] = (float)(5 + a[r] * u1[k] + b[r] * u2[k] + noise[r * dim + k]);
        var pca = PrincipalComponents.Fit(x, rows, dim, 3);
        double d1 = 0, d2 = 0;
        for (int k = 0; k < dim; k++) { d1 += pca.Components[k] * u1[k]; d2 += pca.Components[dim + k] * u2[k]; }
        Check.Close(Math.Abs(d1), 1, new Tolerance(1e-5, 0), "|⟨c1, u1⟩|");
        Check.Close(Math.Abs(d2), 1, new Tolerance(1e-5, 0), "|⟨c2, u2⟩|");
        Check.Close(pca.Variances[0], 9.0 * rows / (rows - 1), new Tolerance(0, 1e-3), "variance of the first component");
        Check.Close(pca.Variances[1], 1.0 * rows / (rows - 1), new Tolerance(0, 5e-3), "variance of the second component");
        Assert.True(pca.Variances[2] < 1e-3, $"third variance {pca.Variances[2]} should be noise");
        // Canonical sign: the loading of largest magnitude is positive (−0.8 on axis 7 ⇒ component ≈ −u1).
        Assert.True(pca.Components[7] > 0);
        var s = pca.Transform(x.AsSpan(0, dim), 1);
        Check.Close(Math.Abs(s[0]), Math.Abs(a[0]), new Tolerance(0.05, 0.01), "score of row 0");
    }

    [Fact]
    public void Two_stage_feature_maps_find_the_planted_foreground_and_colour_only_it()
    {
        const int h = 12, w = 12, dim = 20;
        var images = new List<float[]>();
        var objects = new[] { new Box(3, 3, 9, 9), new Box(2, 4, 10, 11) };
        // Background along e0; foreground along e1 plus a weaker part direction (e2 top half, e3 bottom half), so
        // the first component separates fg/bg and stage 2 sees the parts.
        var noise = TestData.Normal(21, 2 * h * w * dim, 0.03f);
        for (int j = 0; j < 2; j++)
        {
            var box = objects[j];
            int mid = (box.Y0 + box.Y1) / 2;
            var f = new float[h * w * dim];
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                {
                    int t = y * w + x;
                    for (int k = 0; k < dim; k++) f[t * dim + k] = noise[(j * h * w + t) * dim + k];
                    bool inside = x >= box.X0 && x < box.X1 && y >= box.Y0 && y < box.Y1;
                    if (!inside) { f[t * dim] += 1; continue; }
                    f[t * dim + 1] += 1;
                    f[t * dim + (y < mid ? 2 : 3)] += 0.4f;
                }
            images.Add(f);
        }
        var r = PcaFeatureMaps.Compute(images, h, w, dim);
        for (int j = 0; j < 2; j++)
        {
            Assert.Equal(SyntheticFeatures.BoxMask(objects[j], h, w), r.Images[j].Foreground);
            var rgb = r.Images[j].Rgb;
            for (int i = 0; i < h * w; i++)
                if (r.Images[j].Foreground.Pixels[i] == 0) Assert.True(rgb[3 * i] == 0 && rgb[3 * i + 1] == 0 && rgb[3 * i + 2] == 0, "background must be black");
            Assert.Contains(rgb, v => v > 200);
        }
        Assert.NotNull(r.Stage2);
        Assert.Equal(3, r.Stage2!.Count);
        // Forcing the other side yields the background instead.
        var inv = PcaFeatureMaps.Compute(images, h, w, dim, new PcaFeatureMapOptions { Sign = r.SignUsed == ForegroundSign.Positive ? ForegroundSign.Negative : ForegroundSign.Positive });
        Assert.True(inv.Images[0].Foreground[0, 0], "the inverted mask covers the border");
    }
}
