using CrateIL.Crate.Verification;
using System.Text.Json;
using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;
using CrateIL.Crate.Models;
using CrateIL.Testing;
using Xunit;

namespace CrateIL.Crate.Tests;

/// <summary>A whole-model fixture written by tools/reference/crate_model.py (float64 PyTorch ground truth).</summary>
internal sealed class ModelFixture
{
    public required CrateConfig Config { get; init; }
    public int Batch, ProbeLayer;
    public double Loss;
    public required double[] Images, Logits, DLogits, Probs, Keys;
    public required double[][] Features;
    public required Dictionary<string, double[]> Params, Grads;
    public required Dictionary<string, int[]> Shapes;

    public static ModelFixture Load(string name)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(CheckpointFixtures.PathOf(name + ".json")));
        var r = doc.RootElement;
        static double[] Arr(JsonElement e) => e.EnumerateArray().Select(v => v.GetDouble()).ToArray();
        static Dictionary<string, double[]> Map(JsonElement e) => e.EnumerateObject().ToDictionary(p => p.Name, p => Arr(p.Value));
        return new ModelFixture
        {
            Config = CrateConfig.FromJson(r.GetProperty("config").GetRawText(), name + ".json"),
            Batch = r.GetProperty("batch").GetInt32(),
            ProbeLayer = r.GetProperty("probe_layer").GetInt32(),
            Loss = r.GetProperty("loss").GetDouble(),
            Images = Arr(r.GetProperty("images")), Logits = Arr(r.GetProperty("logits")), DLogits = Arr(r.GetProperty("dlogits")),
            Probs = Arr(r.GetProperty("probs")), Keys = Arr(r.GetProperty("keys")),
            Features = r.GetProperty("features").EnumerateArray().Select(Arr).ToArray(),
            Params = Map(r.GetProperty("params")), Grads = Map(r.GetProperty("grads")),
            Shapes = r.GetProperty("shapes").EnumerateObject().ToDictionary(p => p.Name, p => CheckpointFixtures.Ints(p.Value)),
        };
    }

    public static float[] F32(double[] x) => x.Select(v => (float)v).ToArray();

    /// <summary>A model on <paramref name="device"/> holding the fixture's parameters.</summary>
    public CrateModel Model(Device device)
    {
        var model = new CrateModel(Config, device, seed: 3);
        foreach (var p in model.Parameters.Parameters) p.Value.CopyFrom(F32(Params[p.Name]));
        return model;
    }

    public Tensor ImagesOn(Device device) =>
        device.FromHost(F32(Images), Batch, Config.Channels, Config.ImageHeight, Config.ImageWidth);
}

public class ModelTests
{
    public static TheoryData<string, string> BackendsAndFixtures()
    {
        var data = new TheoryData<string, string>();
        foreach (var backend in new[] { Backends.Cpu, Backends.IlgpuCpu, Backends.OpenCL, Backends.Cuda })
            foreach (var fixture in new[] { "crate_tiny_square_cls", "crate_tiny_rect_mean" })
                data.Add(backend, fixture);
        return data;
    }

    /// <summary>|a − e| ≤ bound·(max|e| + |e|): a relative error of <paramref name="bound"/> measured against the tensor's scale.</summary>
    private static void Near(ReadOnlySpan<float> actual, double[] expected, double bound, string what)
    {
        Check.Close(actual, expected, Tolerance.Normwise(expected, bound), what);
    }

    [SkippableTheory]
    [MemberData(nameof(BackendsAndFixtures))]
    public void ForwardAndBackward_MatchPyTorch(string backend, string fixture)
    {
        var device = Backends.Get(backend);
        var f = ModelFixture.Load(fixture);
        using var model = f.Model(device);
        using var images = f.ImagesOn(device);

        var logits = model.Forward(images).ToArray();
        Near(logits, f.Logits, ModelTolerances.ActivationBound, $"{fixture} logits on {backend}");
        for (int i = 0; i < f.Features.Length; i++)
            Near(model.Features(i).ToArray(), f.Features[i], ModelTolerances.ActivationBound, $"{fixture} features[{i}] on {backend}");

        int t = model.Tokens, heads = f.Config.Heads;
        using var probs = device.Allocate(f.Batch, t, t);
        var expectedHead = new double[f.Batch * t * t];
        for (int h = 0; h < heads; h++)
        {
            probs.Fill(float.NaN);
            model.AttentionProbabilities(f.ProbeLayer, h, probs);
            for (int b = 0; b < f.Batch; b++)
                Array.Copy(f.Probs, ((long)b * heads + h) * t * t, expectedHead, (long)b * t * t, t * t);
            Check.Close(probs.ToArray(), expectedHead, new Tolerance(1e-6, 1e-5), $"{fixture} attention layer {f.ProbeLayer} head {h} on {backend}");
        }
        using var keys = device.Allocate(f.Batch, t, f.Config.Inner);
        keys.Fill(float.NaN);
        model.Keys(f.ProbeLayer, keys);
        Near(keys.ToArray(), f.Keys, 1e-5, $"{fixture} keys on {backend}");

        model.Parameters.ZeroGrads();
        using var dLogits = device.FromHost(ModelFixture.F32(f.DLogits), f.Batch, f.Config.Classes);
        model.Backward(dLogits);
        foreach (var p in model.Parameters.Parameters)
            Near(p.Grad.ToArray(), f.Grads[p.Name], ModelTolerances.GradientBound, $"{fixture} d{p.Name} on {backend}");
    }

    [Fact]
    public void Parameters_HaveTheFixturesOfficialNamesAndShapes()
    {
        foreach (var fixture in new[] { "crate_tiny_square_cls", "crate_tiny_rect_mean" })
        {
            var f = ModelFixture.Load(fixture);
            var keys = CrateModel.KeysFor(f.Config);
            Assert.Equal(f.Shapes.Keys.Order(StringComparer.Ordinal), keys.Select(k => k.Name).Order(StringComparer.Ordinal));
            foreach (var k in keys) Assert.Equal(f.Shapes[k.Name], k.Shape);
            // Registration follows PyTorch's state_dict order except for the two top-level tensors (PyTorch lists them first).
            Assert.Equal(f.Shapes.Keys.Where(n => n is not ("cls_token" or "pos_embedding")), keys.Select(k => k.Name).Where(n => n is not ("cls_token" or "pos_embedding")));
        }
    }

    [Fact]
    public void Backward_Accumulates()
    {
        var f = ModelFixture.Load("crate_tiny_square_cls");
        var device = Backends.Get(Backends.Cpu);
        using var model = f.Model(device);
        using var images = f.ImagesOn(device);
        using var dLogits = device.FromHost(ModelFixture.F32(f.DLogits), f.Batch, f.Config.Classes);
        model.Forward(images);
        model.Parameters.ZeroGrads();
        model.Backward(dLogits);
        var once = model.Parameters.Grads.ToArray();
        model.Backward(dLogits);
        var twice = model.Parameters.Grads.ToArray();
        Check.Close(twice, once.Select(v => 2.0 * v).ToArray(), new Tolerance(1e-6, 1e-6), "two accumulated backward passes");
    }

    [Fact]
    public void OtherImageSize_UsesResampledPositions_AndIsInferenceOnly()
    {
        var f = ModelFixture.Load("crate_tiny_square_cls");
        var device = Backends.Get(Backends.Cpu);
        using var model = f.Model(device);
        using var images = device.FromHost(TestData.Normal(5, 2 * 3 * 8 * 12), 2, 3, 8, 12);
        var logits = model.Forward(images).ToArray();
        Assert.Equal(2 * f.Config.Classes, logits.Length);
        Assert.All(logits, v => Assert.True(float.IsFinite(v)));
        Assert.Equal(2 * 3 + 1, model.Tokens);
        using var dLogits = device.Zeros(2, f.Config.Classes);
        var e = Assert.Throws<InvalidOperationException>(() => model.Backward(dLogits));
        Assert.Contains("trained 4×4 grid", e.Message, StringComparison.Ordinal);

        // Back on the trained size the reference logits come back exactly as before.
        using var native = f.ImagesOn(device);
        Near(model.Forward(native).ToArray(), f.Logits, 1e-5, "logits after a resampled pass");
    }

    [Fact]
    public void BadInputs_ThrowClearErrors()
    {
        var f = ModelFixture.Load("crate_tiny_square_cls");
        var device = Backends.Get(Backends.Cpu);
        using var model = f.Model(device);
        Assert.Throws<InvalidOperationException>(() => model.Features(0));
        using var dLogits = device.Zeros(2, 5);
        Assert.Throws<InvalidOperationException>(() => model.Backward(dLogits));
        using var wrongChannels = device.Zeros(1, 1, 16, 16);
        Assert.Throws<ArgumentException>(() => model.Forward(wrongChannels));
        using var notMultiple = device.Zeros(1, 3, 15, 16);
        Assert.Contains("multiple of the patch size", Assert.Throws<ArgumentException>(() => model.Forward(notMultiple)).Message, StringComparison.Ordinal);
        using var images = f.ImagesOn(device);
        model.Forward(images);
        using var wrongOut = device.Allocate(2, 17, 16);
        Assert.Throws<ArgumentException>(() => model.AttentionProbabilities(0, 0, wrongOut));
        using var probs = device.Allocate(2, 17, 17);
        Assert.Throws<ArgumentOutOfRangeException>(() => model.AttentionProbabilities(2, 0, probs));
        Assert.Throws<ArgumentOutOfRangeException>(() => model.AttentionProbabilities(0, 3, probs));
        Assert.Throws<ArgumentException>(() => new CrateModel(f.Config with { Dropout = 0.1f }, device));
    }

    /// <summary>
    /// Regression for a reported hang: dim 16, 2 heads × 8, patch 8, batch 2 at 96×96 and 104×104 (12×12 and 13×13
    /// grids, 145 and 170 tokens) on 2 threads. The attention of such small heads runs its batch entries on the CPU
    /// thread team and each entry's softmax opened a nested parallel region, which re-entered the busy team from
    /// member 0 and hung (or returned NaN attention). Forward and backward must finish within the time limit and agree
    /// with the same model on one thread.
    /// </summary>
    [Theory]
    [InlineData(96, false)]
    [InlineData(104, false)]
    [InlineData(96, true)]
    [InlineData(104, true)]
    public async Task SmallModelOnTwoThreads_BatchOfTwo_FinishesAndMatchesOneThread(int size, bool fused)
    {
        var config = ConfigTests.Tiny() with { Dim = 16, Heads = 2, DimHead = 8, PatchSize = 8, Depth = 2, ImageHeight = size, ImageWidth = size };
        var imagesHost = TestData.Normal(31, 2 * 3 * size * size);
        var probe = TestData.Normal(32, 2 * config.Classes);
        string path = fused ? "fused" : "materialised";
        (float[] Logits, float[] Grads) Run(int threads)
        {
            var device = CpuDevice.Create(threads);
            using var model = new CrateModel(config, device, seed: 5);
            using var images = device.FromHost(imagesHost, 2, 3, size, size);
            using var dLogits = device.FromHost(probe, 2, config.Classes);
            model.Forward(images);   // creates the attention cores
            model.UseFusedSymmetricAttention(fused);
            float[] logits = [];
            for (int pass = 0; pass < 3; pass++)   // repeated passes reuse every buffer and the warm team
            {
                logits = model.Forward(images).ToArray();
                model.Parameters.ZeroGrads();
                model.Backward(dLogits);
            }
            return (logits, model.Parameters.Grads.ToArray());
        }
        var two = await TimeLimit.Within(() => Run(2), $"{size}×{size} batch 2 forward/backward ({path}) on 2 threads");
        var one = Run(1);
        Assert.All(two.Logits, v => Assert.True(float.IsFinite(v)));
        Assert.All(two.Grads, v => Assert.True(float.IsFinite(v)));
        Near(two.Logits, TestData.ToDouble(one.Logits), 1e-5, $"{size}×{size} logits ({path}), 2 threads vs 1");
        Near(two.Grads, TestData.ToDouble(one.Grads), 1e-5, $"{size}×{size} gradients ({path}), 2 threads vs 1");
    }

    /// <summary>
    /// The variants wire other blocks into the same skeleton: their gradients must match central differences of
    /// L = Σ logits·probe (float32 model, so loose tolerances and a few sampled coordinates per parameter tensor).
    /// </summary>
    [Theory]
    [InlineData(CrateVariant.Vit)]
    [InlineData(CrateVariant.CrateMlp)]
    [InlineData(CrateVariant.CrateMhsa)]
    [InlineData(CrateVariant.CrateSth)]
    [InlineData(CrateVariant.Crate)]
    public void Variants_GradientsMatchFiniteDifferences(CrateVariant variant)
    {
        var device = Backends.Get(Backends.Cpu);
        var config = ConfigTests.Tiny() with { Variant = variant, Pool = variant == CrateVariant.Vit ? Nn.Layers.Pooling.Mean : Nn.Layers.Pooling.Cls };
        using var model = new CrateModel(config, device, seed: 7);
        using var images = device.FromHost(TestData.Normal(8, 2 * 3 * 16 * 16), 2, 3, 16, 16);
        var probe = TestData.Normal(9, 2 * config.Classes);
        double Loss()
        {
            var logits = model.Forward(images).ToArray();
            double s = 0;
            for (int i = 0; i < logits.Length; i++) s += (double)logits[i] * probe[i];
            return s;
        }
        Loss();
        model.Parameters.ZeroGrads();
        using var dLogits = device.FromHost(probe, 2, config.Classes);
        model.Backward(dLogits);
        var grads = model.Parameters.Grads.ToArray();
        var values = model.Parameters.Values.ToArray();
        var rng = new Random(11);
        const float h = 1e-2f;
        foreach (var p in model.Parameters.Parameters)
        {
            for (int k = 0; k < 2; k++)
            {
                long i = p.Offset + rng.NextInt64(p.Length);
                float v = values[i];
                values[i] = v + h;
                model.Parameters.Values.CopyFrom(values);
                double up = Loss();
                values[i] = v - h;
                model.Parameters.Values.CopyFrom(values);
                double down = Loss();
                values[i] = v;
                model.Parameters.Values.CopyFrom(values);
                double fd = (up - down) / (2 * h);
                Assert.True(Math.Abs(fd - grads[i]) <= 2e-2 + 5e-2 * Math.Abs(fd),
                    $"{variant} d{p.Name}[{i - p.Offset}]: backward {grads[i]}, central difference {fd}");
            }
        }
    }
}

/// <summary>One AdamW step over the whole model's parameter store equals PyTorch's torch.optim.AdamW step (≤ 1e-6).</summary>
public class ModelAdamWParityTests
{
    [SkippableTheory]
    [MemberData(nameof(ModelTests.BackendsAndFixtures), MemberType = typeof(ModelTests))]
    public void OneAdamWStep_MatchesPyTorch(string backend, string fixture)
    {
        var device = Backends.Get(backend);
        var f = ModelFixture.Load(fixture);
        using var doc = JsonDocument.Parse(File.ReadAllText(CheckpointFixtures.PathOf(fixture + ".json")));
        var a = doc.RootElement.GetProperty("adamw");
        using var model = f.Model(device);
        // The step starts from PyTorch's gradients: the first AdamW update is ≈ lr·g/(|g| + eps), so for the few
        // entries with |g| near eps a float32 gradient error of 1e-4 (tested above) would move it by up to lr·1e-4.
        // Feeding the reference gradients isolates the optimizer and the parameter layout, which is what is compared.
        foreach (var p in model.Parameters.Parameters) p.Grad.CopyFrom(ModelFixture.F32(f.Grads[p.Name]));
        using var adamw = new CrateIL.Nn.Optim.AdamW(model.Parameters, a.GetProperty("lr").GetDouble(), a.GetProperty("weight_decay").GetDouble(),
            a.GetProperty("beta1").GetDouble(), a.GetProperty("beta2").GetDouble(), a.GetProperty("eps").GetDouble());
        adamw.Step();
        var after = a.GetProperty("params_after");
        foreach (var p in model.Parameters.Parameters)
        {
            var expected = after.GetProperty(p.Name).EnumerateArray().Select(v => v.GetDouble()).ToArray();
            Check.Close(p.Value.ToArray(), expected, new Tolerance(1e-6, 1e-6), $"{fixture} {p.Name} after one AdamW step on {backend}");
        }
    }
}
