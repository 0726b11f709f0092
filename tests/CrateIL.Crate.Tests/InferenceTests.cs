using System.Text.Json;
using CrateIL.Crate.Checkpoints;
using CrateIL.Crate.Models;
using CrateIL.Testing;
using Xunit;

namespace CrateIL.Crate.Tests;

public class InferenceTests
{
    private static (float[] Images, float[] Logits) PthLogits(string fixture)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(CheckpointFixtures.PathOf(fixture + "_pth_logits.json")));
        return (CheckpointFixtures.Floats(doc.RootElement.GetProperty("images")), CheckpointFixtures.Floats(doc.RootElement.GetProperty("logits")));
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void SafetensorsRoundTrip_GivesIdenticalLogits(string backend)
    {
        var device = Backends.Get(backend);
        var config = ConfigTests.Tiny() with { ImageHeight = 8, ImageWidth = 12, Heads = 2, DimHead = 5, Pool = Nn.Layers.Pooling.Mean };
        using var dir = new CheckpointFixtures.TempDir();
        string path = Path.Combine(dir.Path, "model.safetensors");
        using var model = new CrateModel(config, device, seed: 21);
        var images = TestData.Normal(22, 3 * 3 * 8 * 12);
        var before = model.Predict(images, 3, 8, 12);
        CrateCheckpoint.Save(model, path);

        Assert.Equal(config, CrateCheckpoint.ReadConfig(path));
        using var loaded = CrateCheckpoint.Load(path, device);
        Assert.Equal(config, loaded.Config);
        Assert.Equal(model.Parameters.Values.ToArray(), loaded.Parameters.Values.ToArray());
        Assert.Equal(before, loaded.Predict(images, 3, 8, 12));
    }

    /// <summary>
    /// A frozen model (packed GEMM weights, ISTA's folded dictionary kept) gives the per-call path's logits bit for bit,
    /// and loading a checkpoint into it while frozen gives the loaded model's logits, not the old weights'.
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void FrozenModel_GivesThePerCallLogits_AndFollowsALoadedCheckpoint(string backend)
    {
        var device = Backends.Get(backend);
        bool sim = Backends.IsSimulator(backend);
        var config = CrateConfig.Tiny(classes: 10, patch: 4, imageSize: sim ? 8 : 32) with { Dim = 48, Depth = 2, Heads = 3, DimHead = 16 };
        using var model = new CrateModel(config, device, seed: 3);
        using var other = new CrateModel(config, device, seed: 4);
        int batch = 2, side = config.ImageHeight;
        using var images = device.FromHost(TestData.Normal(5, batch * 3 * side * side), batch, 3, side, side);
        float[] Logits(CrateModel m) => m.Forward(images).ToArray();

        var perCall = Logits(model);
        var otherLogits = Logits(other);
        model.Parameters.Freeze();
        Assert.Equal(perCall, Logits(model));
        Assert.Equal(perCall, Logits(model));
        using var dir = new CheckpointFixtures.TempDir();
        string path = Path.Combine(dir.Path, "other.safetensors");
        CrateCheckpoint.Save(other, path);
        CrateCheckpoint.LoadState(model, Safetensors.Read(path), path);
        Assert.True(model.Parameters.IsFrozen);
        Assert.Equal(otherLogits, Logits(model));
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void PthWrittenByPyTorch_GivesPyTorchsLogits(string backend)
    {
        var device = Backends.Get(backend);
        foreach (var fixture in new[] { "crate_tiny_square_cls", "crate_tiny_rect_mean" })
        {
            var f = ModelFixture.Load(fixture);
            var (images, expected) = PthLogits(fixture);
            using var model = new CrateModel(f.Config, device, seed: 1);
            var import = CrateCheckpoint.ImportPth(model, CheckpointFixtures.PathOf(fixture + ".pth"));
            Assert.Equal("state_dict", import.Wrapper);
            Assert.Empty(import.Missing);
            Assert.Empty(import.Unexpected);
            var logits = model.Predict(images, f.Batch, f.Config.ImageHeight, f.Config.ImageWidth);
            double scale = expected.Max(MathF.Abs);
            Check.Close(logits, expected, new Tolerance(1e-5 * scale, 1e-5), $"{fixture} logits from the .pth on {backend}");
        }
    }

    [Fact]
    public void ConvertPth_WritesConfigMetadata_AndLoadsBack()
    {
        var device = Backends.Get(Backends.Cpu);
        const string fixture = "crate_tiny_rect_mean";
        var f = ModelFixture.Load(fixture);
        var (images, expected) = PthLogits(fixture);
        using var dir = new CheckpointFixtures.TempDir();
        string output = Path.Combine(dir.Path, "tiny.safetensors");
        var import = CrateCheckpoint.ConvertPth(CheckpointFixtures.PathOf(fixture + ".pth"), f.Config, output);
        Assert.True(import.TryGetNumber("epoch", out double epoch));
        Assert.Equal(7, epoch);

        var header = Safetensors.ReadHeader(output);
        Assert.Equal(f.Config, CrateConfig.FromJson(header.Metadata[CrateCheckpoint.ConfigKey]));
        using var model = CrateCheckpoint.Load(output, device);
        var logits = model.Predict(images, f.Batch, f.Config.ImageHeight, f.Config.ImageWidth);
        Check.Close(logits, expected, new Tolerance(1e-5 * expected.Max(MathF.Abs), 1e-5), "logits from the converted checkpoint");
    }

    [Fact]
    public void ConvertPth_WrongConfig_ThrowsShapeMismatchNamingTheFile()
    {
        const string fixture = "crate_tiny_square_cls";
        var f = ModelFixture.Load(fixture);
        using var dir = new CheckpointFixtures.TempDir();
        string pth = CheckpointFixtures.PathOf(fixture + ".pth");
        var e = Assert.Throws<CheckpointShapeMismatchException>(() =>
            CrateCheckpoint.ConvertPth(pth, f.Config with { Classes = 7 }, Path.Combine(dir.Path, "x.safetensors")));
        Assert.Contains(pth, e.Message, StringComparison.Ordinal);
        var deeper = Assert.Throws<CheckpointKeyMismatchException>(() =>
            CrateCheckpoint.ConvertPth(pth, f.Config with { Depth = 3 }, Path.Combine(dir.Path, "y.safetensors")));
        Assert.Contains("transformer.layers.2.0.norm.weight", deeper.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(dir.Path, "x.safetensors")));
    }

    [Fact]
    public void Load_CheckpointWithoutConfig_ThrowsTypedError()
    {
        using var dir = new CheckpointFixtures.TempDir();
        string path = Path.Combine(dir.Path, "bare.safetensors");
        var tensors = new NamedTensors();
        tensors.Add("w", [2], [1f, 2f]);
        Safetensors.Write(path, tensors);
        var e = Assert.Throws<CrateConfigException>(() => CrateCheckpoint.Load(path, Backends.Get(Backends.Cpu)));
        Assert.Equal(path, e.File);
        Assert.Contains(CrateCheckpoint.ConfigKey, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Predict_InChunks_EqualsOneBatch()
    {
        var device = Backends.Get(Backends.Cpu);
        using var model = new CrateModel(ConfigTests.Tiny(), device, seed: 4);
        var images = TestData.Normal(5, 7 * 3 * 16 * 16);
        var whole = model.Predict(images, 7, 16, 16, maxBatch: 7);
        var chunked = model.Predict(images, 7, 16, 16, maxBatch: 3);
        Check.Close(chunked, whole, new Tolerance(1e-6, 1e-5), "chunked prediction");
        Assert.Throws<ArgumentException>(() => model.Predict(images, 6, 16, 16));
    }
}
