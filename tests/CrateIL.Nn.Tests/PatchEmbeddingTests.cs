using CrateIL.Nn.Verification;
using CrateIL.Compute.Devices;
using CrateIL.Nn.Layers;
using CrateIL.Nn.Parameters;
using CrateIL.Testing;
using Xunit;
using static CrateIL.Nn.Tests.LayerTesting;

namespace CrateIL.Nn.Tests;

public class PatchEmbeddingTests
{
    private static readonly Tolerance ForwardTol = LayerTolerances.PatchEmbeddingForward;
    private static readonly Tolerance BackwardTol = LayerTolerances.PatchEmbeddingBackward;

    /// <summary>A unique, exactly representable value for every image element.</summary>
    private static float Code(int b, int ch, int y, int x) => b * 1_000_000 + ch * 10_000 + y * 100 + x;

    private static float[] CodedImage(int batch, int channels, int height, int width)
    {
        var img = new float[batch * channels * height * width];
        for (int b = 0; b < batch; b++)
            for (int ch = 0; ch < channels; ch++)
                for (int y = 0; y < height; y++)
                    for (int x = 0; x < width; x++)
                        img[((b * channels + ch) * height + y) * width + x] = Code(b, ch, y, x);
        return img;
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void PatchifyPutsEachPixelAtItsTokenAndFeatureChannelInnermost(string backend)
    {
        var dev = Backends.Get(backend);
        // Non-square: 8×12 image, patch 4 → 2×3 grid; 3 channels → patch_dim 48.
        const int batch = 2, channels = 3, height = 8, width = 12, patch = 4, pd = patch * patch * channels, tokens = 6;
        using var image = dev.FromHost(CodedImage(batch, channels, height, width), batch, channels, height, width);
        using var patches = Poisoned(dev, batch, tokens, pd);
        Patchify.Forward(image, patch, patches);
        var p = patches.ToArray();
        float At(int b, int t, int f) => p[(b * tokens + t) * pd + f];

        // Hand-picked positions: token t = r·3 + c covers rows r·4.., cols c·4..; feature f = (p1·4 + p2)·3 + ch.
        Assert.Equal(Code(0, 0, 0, 0), At(0, 0, 0));
        Assert.Equal(Code(0, 1, 0, 0), At(0, 0, 1));            // next feature = next channel of the same pixel
        Assert.Equal(Code(0, 2, 0, 0), At(0, 0, 2));
        Assert.Equal(Code(0, 0, 0, 1), At(0, 0, 3));            // then the next pixel along the row (p2)
        Assert.Equal(Code(0, 0, 1, 0), At(0, 0, 12));           // p1 = 1 starts at (1·4 + 0)·3
        Assert.Equal(Code(0, 0, 0, 4), At(0, 1, 0));            // token 1 = grid (0, 1)
        Assert.Equal(Code(0, 0, 4, 0), At(0, 3, 0));            // token 3 = grid (1, 0)
        Assert.Equal(Code(1, 2, 7, 11), At(1, 5, pd - 1));      // last element of the last token
        Assert.Equal(Code(1, 1, 6, 9), At(1, 5, (2 * 4 + 1) * 3 + 1));

        // Every element, against the definition.
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < tokens; t++)
                for (int f = 0; f < pd; f++)
                {
                    int r = t / 3, c = t % 3, ch = f % channels, p1 = f / channels / patch, p2 = f / channels % patch;
                    Assert.Equal(Code(b, ch, r * patch + p1, c * patch + p2), At(b, t, f));
                }

        using var back = Poisoned(dev, batch, channels, height, width);
        Patchify.Backward(patches, patch, back);
        Assert.Equal(CodedImage(batch, channels, height, width), back.ToArray());
    }

    [Theory]
    [InlineData(1, 2, 4, 6, 2, 3)]
    [InlineData(2, 1, 3, 3, 3, 5)]
    public void ReferenceBackwardMatchesFiniteDifferences(int batch, int channels, int height, int width, int patch, int dim)
    {
        int pd = patch * patch * channels;
        var image = D(1, batch * channels * height * width);
        var p = new PatchEmbeddingReference.Params(
            LayerTesting.Add(D(2, pd, 0.3), Enumerable.Repeat(1.0, pd).ToArray()), D(3, pd, 0.3), D(4, dim * pd, 0.5), D(5, dim, 0.3),
            LayerTesting.Add(D(6, dim, 0.3), Enumerable.Repeat(1.0, dim).ToArray()), D(7, dim, 0.3));
        int tokens = batch * (height / patch) * (width / patch);
        var probe = D(8, tokens * dim);
        var (_, saved) = PatchEmbeddingReference.Forward(image, p, batch, channels, height, width, patch, dim);
        var g = PatchEmbeddingReference.Backward(probe, p, saved, batch, channels, height, width, patch, dim);
        double L(double[] img, PatchEmbeddingReference.Params pp) =>
            FiniteDifference.Probe(PatchEmbeddingReference.Forward(img, pp, batch, channels, height, width, patch, dim).Tokens, probe);
        Check.Close(g.DImage, FiniteDifference.Gradient(v => L(v, p), image), Fd, "dimage");
        Check.Close(g.DGamma1, FiniteDifference.Gradient(v => L(image, p with { Gamma1 = v }), p.Gamma1), Fd, "dγ1");
        Check.Close(g.DBeta1, FiniteDifference.Gradient(v => L(image, p with { Beta1 = v }), p.Beta1), Fd, "dβ1");
        Check.Close(g.DW, FiniteDifference.Gradient(v => L(image, p with { W = v }), p.W), Fd, "dW");
        Check.Close(g.DB, FiniteDifference.Gradient(v => L(image, p with { B = v }), p.B), Fd, "db");
        Check.Close(g.DGamma3, FiniteDifference.Gradient(v => L(image, p with { Gamma3 = v }), p.Gamma3), Fd, "dγ3");
        Check.Close(g.DBeta3, FiniteDifference.Gradient(v => L(image, p with { Beta3 = v }), p.Beta3), Fd, "dβ3");
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void MatchesPyTorchFixtureOnNonSquareImage(string backend)
    {
        var dev = Backends.Get(backend);
        var f = EmbeddingFixture.Patch;
        Check.Close(PatchEmbeddingReference.Patchify(f.Image, f.Batch, f.Channels, f.Height, f.Width, f.Patch), f.Patches,
            new Tolerance(0, 0), "reference patchify vs einops layout");
        using var store = new ParameterStore();
        using var layer = new PatchEmbedding(store, f.Channels, f.Patch, f.Dim);
        store.Build(dev);
        store.ZeroGrads();
        foreach (var (name, v) in f.Params) store[name].Value.CopyFrom(EmbeddingFixture.F(v));
        int n = layer.TokensFor(f.Height, f.Width);
        using var image = dev.FromHost(EmbeddingFixture.F(f.Image), f.Batch, f.Channels, f.Height, f.Width);
        using var tokens = Poisoned(dev, f.Batch, n, f.Dim);
        using var dTokens = dev.FromHost(EmbeddingFixture.F(f.Probe), f.Batch, n, f.Dim);
        using var dImage = Poisoned(dev, f.Batch, f.Channels, f.Height, f.Width);
        layer.Forward(image, tokens);
        layer.Backward(dTokens, dImage);
        string what = $"patch embedding vs PyTorch on {backend}";
        Check.Close(tokens.ToArray(), f.Tokens, ForwardTol, what + " tokens");
        Check.Close(dImage.ToArray(), f.DImage, BackwardTol, what + " dimage");
        foreach (var (name, g) in f.Grads) Check.Close(store[name].Grad.ToArray(), g, BackwardTol, $"{what} d[{name}]");
    }

    private static IEnumerable<(int B, int C, int H, int W, int P, int Dim)> Shapes(string backend) =>
        Backends.IsSimulator(backend)
            ? [(2, 3, 6, 9, 3, 7), (1, 1, 2, 2, 2, 5)]
            : [(2, 3, 6, 9, 3, 7), (1, 1, 2, 2, 2, 5), (3, 3, 20, 15, 5, 65), (2, 5, 14, 21, 7, 9)];

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void ForwardAndBackwardMatchReferenceWithAccumulatedGrads(string backend)
    {
        var dev = Backends.Get(backend);
        int seed = 30;
        foreach (var (batch, channels, height, width, patch, dim) in Shapes(backend))
        {
            string what = $"patch embedding B{batch} C{channels} {height}x{width} P{patch} dim{dim} on {backend}";
            using var store = new ParameterStore();
            using var layer = new PatchEmbedding(store, channels, patch, dim);
            store.Build(dev, seed++);
            var (values, grads0) = Randomise(store, seed++);
            int n = layer.TokensFor(height, width);
            var imgh = TestData.Normal(seed++, batch * channels * height * width);
            var dth = TestData.Normal(seed++, batch * n * dim);
            using var image = dev.FromHost(imgh, batch, channels, height, width);
            using var tokens = Poisoned(dev, batch, n, dim);
            using var dTokens = dev.FromHost(dth, batch, n, dim);
            using var dImage = Poisoned(dev, batch, channels, height, width);
            layer.Forward(image, tokens);
            layer.Backward(dTokens, dImage);

            const string pre = "to_patch_embedding";
            var p = new PatchEmbeddingReference.Params(D(values[pre + ".1.weight"]), D(values[pre + ".1.bias"]), D(values[pre + ".2.weight"]),
                D(values[pre + ".2.bias"]), D(values[pre + ".3.weight"]), D(values[pre + ".3.bias"]));
            var (rt, saved) = PatchEmbeddingReference.Forward(D(imgh), p, batch, channels, height, width, patch, dim);
            var g = PatchEmbeddingReference.Backward(D(dth), p, saved, batch, channels, height, width, patch, dim);
            Check.Close(tokens.ToArray(), rt, ForwardTol, what + " tokens");
            Check.Close(dImage.ToArray(), g.DImage, BackwardTol, what + " dimage");
            CheckAccumulated(store, pre + ".1.weight", grads0[pre + ".1.weight"], g.DGamma1, BackwardTol, what);
            CheckAccumulated(store, pre + ".1.bias", grads0[pre + ".1.bias"], g.DBeta1, BackwardTol, what);
            CheckAccumulated(store, pre + ".2.weight", grads0[pre + ".2.weight"], g.DW, BackwardTol, what);
            CheckAccumulated(store, pre + ".2.bias", grads0[pre + ".2.bias"], g.DB, BackwardTol, what);
            CheckAccumulated(store, pre + ".3.weight", grads0[pre + ".3.weight"], g.DGamma3, BackwardTol, what);
            CheckAccumulated(store, pre + ".3.bias", grads0[pre + ".3.bias"], g.DBeta3, BackwardTol, what);

            // Without dImage the parameter gradients are the same (they accumulate once more).
            layer.Backward(dTokens, null);
            CheckAccumulated(store, pre + ".2.weight", grads0[pre + ".2.weight"], LayerTesting.Add(g.DW, g.DW), BackwardTol, what + " (second call)");
        }
    }

    [Fact]
    public void NamesShapesAndErrors()
    {
        using var dev = CpuDevice.Create(1);
        using var store = new ParameterStore();
        using var layer = new PatchEmbedding(store, 3, 16, 384);
        store.Build(dev);
        Assert.Equal(
            ["to_patch_embedding.1.weight", "to_patch_embedding.1.bias", "to_patch_embedding.2.weight", "to_patch_embedding.2.bias",
             "to_patch_embedding.3.weight", "to_patch_embedding.3.bias"],
            store.Parameters.Select(p => p.Name));
        Assert.Equal([384, 768], store["to_patch_embedding.2.weight"].Shape.Dims.ToArray());
        Assert.Equal(196, layer.TokensFor(224, 224));
        Assert.Equal(14 * 20, layer.TokensFor(224, 320));
        Assert.Throws<ArgumentException>(() => layer.TokensFor(224, 225));
        using var image = dev.Zeros(1, 3, 32, 40);
        using var wrongTokens = dev.Zeros(1, 4, 384);
        Assert.Throws<ArgumentException>(() => layer.Forward(image, wrongTokens));
        using var gray = dev.Zeros(1, 1, 32, 32);
        using var tokens = dev.Zeros(1, 4, 384);
        Assert.Throws<ArgumentException>(() => layer.Forward(gray, tokens));
        Assert.Throws<InvalidOperationException>(() => layer.Backward(tokens));
    }
}
