using System.Text.Json;
using CrateIL.Compute.Devices;
using CrateIL.Crate.Checkpoints;
using CrateIL.Crate.Models;
using CrateIL.Crate.Training;
using Xunit;
using static CrateIL.Cli.Tests.SegmentationCliKit;

namespace CrateIL.Cli.Tests;

/// <summary>
/// <c>crate export</c>: the written keys and shapes are exactly those of the PyTorch reference (the key tables of
/// tools/reference/crate_model.py's fixtures), optimizer state and training metadata are gone, weights are unchanged.
/// </summary>
public class ExportCommandTests
{
    private static (int Exit, string Out, string Err) Crate(params string[] args) => CliRunner.Run(args);

    /// <summary>The reference's config and its state_dict (name → shape) table.</summary>
    private static (CrateConfig Config, Dictionary<string, int[]> Shapes) Reference(string fixture)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", fixture + ".json")));
        var config = CrateConfig.FromJson(doc.RootElement.GetProperty("config").GetRawText(), fixture);
        var shapes = doc.RootElement.GetProperty("shapes").EnumerateObject()
            .ToDictionary(p => p.Name, p => p.Value.EnumerateArray().Select(v => v.GetInt32()).ToArray(), StringComparer.Ordinal);
        return (config, shapes);
    }

    /// <summary>A training checkpoint as <c>crate train</c> writes one: weights, optimizer buffers, training state, input.</summary>
    private static NamedTensors TrainingFile(CrateModel model, string path)
    {
        var tensors = CrateCheckpoint.StateDict(model);
        long n = tensors.Sum(t => (long)t.Data.Length);
        tensors.Add(TrainingCheckpoint.OptimizerPrefix + "exp_avg", [(int)n], new float[n]);
        tensors.Add(TrainingCheckpoint.OptimizerPrefix + "exp_avg_sq", [(int)n], Enumerable.Repeat(0.5f, (int)n).ToArray());
        tensors.Metadata[TrainingCheckpoint.StateKey] = JsonSerializer.Serialize(new TrainingState { EpochsCompleted = 1, Step = 10 });
        new ModelInput { Resize = InputResize.Resize, Dataset = "test" }.WriteTo(tensors.Metadata);
        Safetensors.Write(path, tensors);
        return tensors;
    }

    [Theory]
    [InlineData("crate_tiny_square_cls")]
    [InlineData("crate_tiny_rect_mean")]
    public void TrainingCheckpoint_ExportsTheReferenceKeySet(string fixture)
    {
        var (config, shapes) = Reference(fixture);
        using var dir = new TempDir();
        using var cpu = DeviceRegistry.Open("cpu");
        using var model = new CrateModel(config, cpu, seed: 5);
        var original = TrainingFile(model, dir.File("epoch-0001.safetensors"));

        var run = Crate("export", "--checkpoint", dir.File("epoch-0001.safetensors"), "-o", dir.File("out/model.safetensors"), "--json");
        Assert.True(run.Exit == 0, run.Err);

        var exported = Safetensors.Read(dir.File("out/model.safetensors"));
        // Exactly the reference's names, each with the reference's shape (load_state_dict(strict=True) needs both).
        Assert.Equal(shapes.Keys.Order(StringComparer.Ordinal), exported.Names.Order(StringComparer.Ordinal));
        foreach (var t in exported)
        {
            Assert.Equal(shapes[t.Name], t.Shape);
            Assert.Equal(original[t.Name].Data, t.Data);
        }
        Assert.Equal(["crate_config", "crate_input", "format", "source"], exported.Metadata.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(config, CrateConfig.FromJson(exported.Metadata["crate_config"]));
        Assert.Equal(InputResize.Resize, ModelInput.From(exported.Metadata, config, "x").Resize);
        using (var loaded = CrateCheckpoint.Load(dir.File("out/model.safetensors"), cpu))   // strict load of our own reader
            Assert.Equal(config, loaded.Config);

        // --json: one document with the written keys and what was dropped.
        using var json = JsonDocument.Parse(run.Out);
        var root = json.RootElement;
        Assert.Equal("export", root.GetProperty("command").GetString());
        Assert.Equal(shapes.Count, root.GetProperty("tensors").GetInt32());
        Assert.Equal(shapes.Values.Sum(s => s.Aggregate(1L, (a, d) => a * d)), root.GetProperty("parameters").GetInt64());
        Assert.Equal(shapes.Count, root.GetProperty("keys").GetArrayLength());
        foreach (var k in root.GetProperty("keys").EnumerateArray())
            Assert.Equal(shapes[k.GetProperty("name").GetString()!], k.GetProperty("shape").EnumerateArray().Select(v => v.GetInt32()).ToArray());
        Assert.Equal(["optimizer.exp_avg", "optimizer.exp_avg_sq", "metadata:training_state"],
            root.GetProperty("dropped").EnumerateArray().Select(v => v.GetString()));
        Assert.Equal(dir.File("out/model.safetensors"), root.GetProperty("output").GetString());
    }

    [Fact]
    public void MissingWeight_SameFile_AbsentFile_AreOneLineErrors_NothingWritten()
    {
        var (config, _) = Reference("crate_tiny_square_cls");
        using var dir = new TempDir();
        using var cpu = DeviceRegistry.Open("cpu");
        using var model = new CrateModel(config, cpu);
        var full = CrateCheckpoint.StateDict(model);
        var partial = new NamedTensors();
        foreach (var (k, v) in full.Metadata) partial.Metadata[k] = v;
        foreach (var t in full.Where(t => t.Name != "mlp_head.1.bias")) partial.Add(t);
        Safetensors.Write(dir.File("partial.safetensors"), partial);
        Safetensors.Write(dir.File("full.safetensors"), full);

        AssertOneLineError(Crate("export", "--checkpoint", dir.File("partial.safetensors"), "-o", dir.File("a.safetensors")), "mlp_head.1.bias");
        AssertOneLineError(Crate("export", "--checkpoint", dir.File("full.safetensors"), "-o", dir.File("full.safetensors")), "--output");
        AssertOneLineError(Crate("export", "--checkpoint", dir.File("none.safetensors"), "-o", dir.File("b.safetensors")), "none.safetensors");
        File.WriteAllText(dir.File("text.safetensors"), "not a safetensors file");
        AssertOneLineError(Crate("export", "--checkpoint", dir.File("text.safetensors"), "-o", dir.File("c.safetensors")), "text.safetensors");
        AssertOneLineError(Crate("export", "--checkpoint", dir.File("full.safetensors")));   // -o missing
        Assert.Equal(["full.safetensors", "partial.safetensors", "text.safetensors"],
            Directory.GetFiles(dir.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }
}
