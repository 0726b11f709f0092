using CrateIL.Compute.Tensors;
using CrateIL.Crate.Models;
using CrateIL.Segmentation.Attention;
using CrateIL.Testing;
using Xunit;

namespace CrateIL.Crate.Tests;

/// <summary>
/// The model → segmentation attention seam: <see cref="CrateModel.ClsAttention(int)"/> is the paper's Eq. 10 — for each
/// head a softmax over the patch tokens of the CLS query against the patch keys — read from the forward pass's saved
/// projections, and <see cref="AttentionMaps.FromBatch"/> consumes it as it is.
/// </summary>
public class ClsAttentionTests
{
    /// <summary>
    /// Against float64 ground truth: PyTorch's full probabilities [B, heads, N+1, N+1] of the fixture's probe layer,
    /// CLS row restricted to the patches and renormalised in float64 (mathematically Eq. 10 with the layer's scale).
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(ModelTests.BackendsAndFixtures), MemberType = typeof(ModelTests))]
    public void MatchesFloat64ReferenceFromFullProbabilities(string backend, string fixture)
    {
        var device = Backends.Get(backend);
        var f = ModelFixture.Load(fixture);
        using var model = f.Model(device);
        using var images = f.ImagesOn(device);
        model.Forward(images);
        int t = model.Tokens, n = t - 1, heads = f.Config.Heads;
        using var maps = model.ClsAttention(f.ProbeLayer);
        Assert.Equal([f.Batch, heads, f.Config.GridRows, f.Config.GridCols], maps.Shape.Dims.ToArray());
        var expected = new double[f.Batch * heads * n];
        for (int b = 0; b < f.Batch; b++)
            for (int h = 0; h < heads; h++)
            {
                long row = ((long)b * heads + h) * t * t;
                double sum = 0;
                for (int j = 1; j < t; j++) sum += f.Probs[row + j];
                for (int j = 1; j < t; j++) expected[((long)b * heads + h) * n + j - 1] = f.Probs[row + j] / sum;
            }
        Check.Close(maps.ToArray(), expected, new Tolerance(1e-6, 1e-5), $"{fixture} CLS attention layer {f.ProbeLayer} on {backend}");

        var perImage = AttentionMaps.FromBatch(maps);
        Assert.Equal(f.Batch, perImage.Length);
        Assert.All(perImage, m => Assert.Equal((heads, f.Config.GridRows, f.Config.GridCols), (m.Heads, m.Height, m.Width)));
        Assert.Equal(expected[n * heads + 1], perImage[1].Head(0)[1], 5);
    }

    /// <summary>MHSA variants use q·k with separate projections: ClsAttention equals the model's own full probabilities, renormalised.</summary>
    [Theory]
    [InlineData(CrateVariant.Vit)]
    [InlineData(CrateVariant.CrateMhsa)]
    [InlineData(CrateVariant.CrateMlp)]
    public void MhsaVariantsAgreeWithFullProbabilities(CrateVariant variant)
    {
        var device = Backends.Get(Backends.Cpu);
        var config = ConfigTests.Tiny() with { Variant = variant };
        using var model = new CrateModel(config, device, seed: 4);
        using var images = device.FromHost(TestData.Normal(5, 3 * 3 * 16 * 16), 3, 3, 16, 16);
        model.Forward(images);
        int t = model.Tokens, n = t - 1, heads = config.Heads;
        for (int layer = 0; layer < config.Depth; layer++)
        {
            using var maps = model.ClsAttention(layer);
            var actual = maps.ToArray();
            using var probs = device.Allocate(3, t, t);
            for (int h = 0; h < heads; h++)
            {
                model.AttentionProbabilities(layer, h, probs);
                var p = probs.ToArray();
                for (int b = 0; b < 3; b++)
                {
                    double sum = 0;
                    for (int j = 1; j < t; j++) sum += p[b * t * t + j];
                    for (int j = 1; j < t; j++)
                        Assert.Equal(p[b * t * t + j] / sum, actual[(b * heads + h) * n + j - 1], 5);
                }
            }
        }
    }

    /// <summary>
    /// A trained CRATE's scores can be so large that q = k puts all of the full softmax's float32 mass on the CLS token
    /// itself (its self-score ‖q‖² beats every q·k_j), so the renormalised patch row of the full probabilities is 0/0.
    /// Scaling U by 1000 reproduces that; Eq. 10 computed from the scores is still well defined (and one-hot).
    /// </summary>
    [Fact]
    public void PeakedCls_StaysFiniteAndNormalised()
    {
        var device = Backends.Get(Backends.Cpu);
        var config = ConfigTests.Tiny();
        using var model = new CrateModel(config, device, seed: 4);
        var u = model.Parameters["transformer.layers.0.0.fn.qkv.weight"];
        var scaled = u.Value.ToArray();
        for (int i = 0; i < scaled.Length; i++) scaled[i] *= 1000f;
        u.Value.CopyFrom(scaled);
        using var images = device.FromHost(TestData.Normal(7, 2 * 3 * 16 * 16), 2, 3, 16, 16);
        model.Forward(images);
        int t = model.Tokens, n = t - 1;
        using var probs = device.Allocate(2, t, t);
        model.AttentionProbabilities(0, 0, probs);
        var p = probs.ToArray();
        double patchMass = 0;
        for (int j = 1; j < t; j++) patchMass += p[j];
        Assert.Equal(0.0, patchMass); // the situation that used to crash AttentionMaps
        using var maps = model.ClsAttention(0);
        var a = maps.ToArray();
        Assert.All(a, v => Assert.True(float.IsFinite(v) && v >= 0));
        for (int row = 0; row < 2 * config.Heads; row++)
            Assert.Equal(1.0, a.AsSpan(row * n, n).ToArray().Sum(v => (double)v), 5);
        var perImage = AttentionMaps.FromBatch(maps);
        Assert.Equal(2, perImage.Length);
        // Peaked: some head puts (almost) all of its patch mass on one patch, and DINO's 60 %-mass rule keeps exactly that patch.
        int peakedHeads = 0;
        for (int h = 0; h < config.Heads; h++)
        {
            var head = perImage[0].Head(h);
            int top = head.IndexOf(MaxOf(head));
            if (head[top] <= 0.99f) continue;
            peakedHeads++;
            var mass = perImage[0].MassMasks()[h];
            Assert.Equal(1, mass.Area);
            Assert.Equal(1, mass.Pixels[top]);
        }
        Assert.True(peakedHeads > 0, "scaling U by 1000 made no head one-hot");
    }

    /// <summary>Zero projections make every score equal: each map is uniform 1/N, and the thresholds still produce masks.</summary>
    [Fact]
    public void AllEqualScores_GiveUniformMaps()
    {
        var device = Backends.Get(Backends.Cpu);
        var config = ConfigTests.Tiny();
        using var model = new CrateModel(config, device, seed: 4);
        for (int l = 0; l < config.Depth; l++) model.Parameters[$"transformer.layers.{l}.0.fn.qkv.weight"].Value.Fill(0f);
        using var images = device.FromHost(TestData.Normal(8, 3 * 16 * 16), 1, 3, 16, 16);
        model.Forward(images);
        int n = model.Tokens - 1;
        using var maps = model.ClsAttention(config.Depth - 1);
        Assert.All(maps.ToArray(), v => Assert.Equal(1f / n, v, 6));
        var m = AttentionMaps.FromBatch(maps)[0];
        // Uniform 1/16 per patch: the ascending cumulative mass exceeds 1 − 0.6 from the 7th patch on, so 10 of 16 stay.
        Assert.Equal(16, n);
        Assert.All(m.MassMasks(), mask => Assert.Equal(10, mask.Area));
    }

    [Fact]
    public void BadArguments_ThrowClearErrors()
    {
        var device = Backends.Get(Backends.Cpu);
        var config = ConfigTests.Tiny();
        using var model = new CrateModel(config, device, seed: 4);
        Assert.Throws<InvalidOperationException>(() => model.ClsAttention(0));
        using var images = device.FromHost(TestData.Normal(8, 3 * 16 * 16), 1, 3, 16, 16);
        model.Forward(images);
        Assert.Throws<ArgumentOutOfRangeException>(() => model.ClsAttention(config.Depth));
        using var wrong = device.Allocate(1, config.Heads, 3, 3);
        Assert.Throws<ArgumentException>(() => model.ClsAttention(0, wrong));
        using var flat = device.Allocate(config.Heads, 16);
        Assert.Throws<ArgumentException>(() => AttentionMaps.FromBatch(flat));
    }

    private static float MaxOf(ReadOnlySpan<float> values)
    {
        float max = float.NegativeInfinity;
        foreach (float v in values) max = Math.Max(max, v);
        return max;
    }
}
