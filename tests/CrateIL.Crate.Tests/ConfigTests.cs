using CrateIL.Crate.Models;
using CrateIL.Nn.Layers;
using Xunit;

namespace CrateIL.Crate.Tests;

public class ConfigTests
{
    [Theory]
    [InlineData("crate-t", 6_090_856L)]
    [InlineData("crate-s", 13_116_328L)]
    [InlineData("crate-b", 22_796_008L)]
    [InlineData("crate-l", 77_641_192L)]
    [InlineData("CRATE_tiny", 6_090_856L)]
    [InlineData("CRATE_large", 77_641_192L)]
    public void PresetParameterCounts_MatchTheReference(string preset, long expected)
    {
        var config = CrateConfig.Preset(preset, classes: 1000, patch: 16, imageSize: 224);
        Assert.Equal(expected, config.ParameterCount());
        // The count from registering the layers (no allocation) agrees with the formula.
        Assert.Equal(expected, CrateModel.KeysFor(config).Sum(k => k.Shape.Aggregate(1L, (a, b) => a * b)));
    }

    [Fact]
    public void DemoPreset_IsBase768WithSixHeadsOf128()
    {
        var demo = CrateConfig.Preset("crate-demo");
        Assert.Equal((768, 12, 6, 128, 8, 21842), (demo.Dim, demo.Depth, demo.Heads, demo.DimHead, demo.PatchSize, demo.Classes));
        // Computed with PyTorch from the module tree (tools/reference/crate_model.py's Crate class).
        Assert.Equal(38_831_570L, demo.ParameterCount());
        Assert.Equal(demo.ParameterCount(), CrateModel.KeysFor(demo).Sum(k => k.Shape.Aggregate(1L, (a, b) => a * b)));
    }

    [Theory]
    [InlineData(CrateVariant.Crate)]
    [InlineData(CrateVariant.Vit)]
    [InlineData(CrateVariant.CrateMlp)]
    [InlineData(CrateVariant.CrateMhsa)]
    [InlineData(CrateVariant.CrateSth)]
    public void EveryVariant_FormulaMatchesRegisteredParameters(CrateVariant variant)
    {
        foreach (var (heads, dimHead) in new[] { (3, 4), (2, 5), (1, 12) })
        {
            var config = Tiny() with { Variant = variant, Heads = heads, DimHead = dimHead };
            Assert.Equal(config.ParameterCount(), CrateModel.KeysFor(config).Sum(k => k.Shape.Aggregate(1L, (a, b) => a * b)));
        }
    }

    [Fact]
    public void Mssa_DropsToOut_OnlyForOneFullWidthHead()
    {
        var single = Tiny() with { Heads = 1, DimHead = 12 };
        var keys = CrateModel.KeysFor(single).Select(k => k.Name).ToList();
        Assert.DoesNotContain(keys, n => n.Contains("to_out", StringComparison.Ordinal));
        Assert.Contains("transformer.layers.0.0.fn.to_out.0.weight", CrateModel.KeysFor(Tiny()).Select(k => k.Name));
    }

    [Fact]
    public void OfficialNamesAndShapes_FollowTheStateDictTable()
    {
        var c = CrateConfig.Tiny();
        var keys = CrateModel.KeysFor(c).ToDictionary(k => k.Name, k => k.Shape);
        int d = 384, pd = 3 * 16 * 16;
        var expected = new Dictionary<string, int[]>
        {
            ["to_patch_embedding.1.weight"] = [pd], ["to_patch_embedding.1.bias"] = [pd],
            ["to_patch_embedding.2.weight"] = [d, pd], ["to_patch_embedding.2.bias"] = [d],
            ["to_patch_embedding.3.weight"] = [d], ["to_patch_embedding.3.bias"] = [d],
            ["pos_embedding"] = [1, 197, d], ["cls_token"] = [1, 1, d],
            ["mlp_head.0.weight"] = [d], ["mlp_head.0.bias"] = [d],
            ["mlp_head.1.weight"] = [1000, d], ["mlp_head.1.bias"] = [1000],
        };
        for (int l = 0; l < 12; l++)
        {
            string a = $"transformer.layers.{l}.0.", b = $"transformer.layers.{l}.1.";
            expected[a + "norm.weight"] = [d];
            expected[a + "norm.bias"] = [d];
            expected[a + "fn.qkv.weight"] = [d, d];
            expected[a + "fn.to_out.0.weight"] = [d, d];
            expected[a + "fn.to_out.0.bias"] = [d];
            expected[b + "norm.weight"] = [d];
            expected[b + "norm.bias"] = [d];
            expected[b + "fn.weight"] = [d, d];
        }
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), keys.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, shape) in expected) Assert.True(shape.SequenceEqual(keys[name]), $"{name}: [{string.Join(", ", keys[name])}] != [{string.Join(", ", shape)}]");
    }

    [Fact]
    public void Json_RoundTrips_SquareAndNonSquare()
    {
        var square = CrateConfig.Demo();
        Assert.Equal(square, CrateConfig.FromJson(square.ToJson()));
        var rect = Tiny() with { ImageHeight = 8, ImageWidth = 12, Pool = Pooling.Mean, Heads = 2, DimHead = 5, Eta = 0.2f, Lambda = 0.5f, EmbDropout = 0.25f, Variant = CrateVariant.CrateSth };
        string json = rect.ToJson();
        Assert.Contains("\"image_size\": [", json, StringComparison.Ordinal);
        Assert.Equal(rect, CrateConfig.FromJson(json));
        Assert.Contains("\"image_size\": 224", square.ToJson(), StringComparison.Ordinal);
    }

    [Fact]
    public void Json_ReferenceArgumentNames_WithDefaults()
    {
        var c = CrateConfig.FromJson("""{"image_size": 32, "patch_size": 8, "num_classes": 10, "dim": 48, "depth": 2, "heads": 4}""");
        Assert.Equal((32, 32, 8, 10, 48, 2, 4, 12, 3), (c.ImageHeight, c.ImageWidth, c.PatchSize, c.Classes, c.Dim, c.Depth, c.Heads, c.DimHead, c.Channels));
        Assert.Equal((Pooling.Cls, 0.1f, 0.1f, CrateVariant.Crate), (c.Pool, c.Eta, c.Lambda, c.Variant));
    }

    [Fact]
    public void Json_FileRoundTrip()
    {
        string path = Path.Combine(Path.GetTempPath(), "crateil-config-" + Guid.NewGuid().ToString("N") + ".json");
        try
        {
            var c = CrateConfig.Small(classes: 100, patch: 8, imageSize: 32);
            c.Save(path);
            Assert.Equal(c, CrateConfig.Load(path));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("{\"image_size\": 32,", "not valid JSON")]
    [InlineData("[1, 2]", "must be a JSON object")]
    [InlineData("""{"patch_size": 8, "num_classes": 10, "dim": 48, "depth": 2, "heads": 4}""", "missing required key 'image_size'")]
    [InlineData("""{"image_size": 32, "num_classes": 10, "dim": 48, "depth": 2, "heads": 4}""", "missing required key 'patch_size'")]
    [InlineData("""{"image_size": "32", "patch_size": 8, "num_classes": 10, "dim": 48, "depth": 2, "heads": 4}""", "image_size must be")]
    [InlineData("""{"image_size": [32], "patch_size": 8, "num_classes": 10, "dim": 48, "depth": 2, "heads": 4}""", "image_size must be")]
    [InlineData("""{"image_size": 32, "patch_size": 8.5, "num_classes": 10, "dim": 48, "depth": 2, "heads": 4}""", "'patch_size' must be an integer")]
    [InlineData("""{"image_size": 30, "patch_size": 8, "num_classes": 10, "dim": 48, "depth": 2, "heads": 4}""", "not a multiple of the patch size")]
    [InlineData("""{"image_size": 32, "patch_size": 8, "num_classes": 10, "dim": 48, "depth": 2, "heads": 4, "pool": "max"}""", "pool must be")]
    [InlineData("""{"image_size": 32, "patch_size": 8, "num_classes": 10, "dim": 48, "depth": 2, "heads": 4, "heds": 4}""", "unknown key 'heds'")]
    [InlineData("""{"image_size": 32, "patch_size": 8, "num_classes": 0, "dim": 48, "depth": 2, "heads": 4}""", "num_classes must be positive")]
    [InlineData("""{"image_size": 32, "patch_size": 8, "num_classes": 10, "dim": 48, "depth": 2, "heads": 4, "variant": "resnet"}""", "unknown variant")]
    public void Json_Malformed_ThrowsTypedErrorNamingTheFile(string json, string problem)
    {
        var e = Assert.Throws<CrateConfigException>(() => CrateConfig.FromJson(json, "model.json"));
        Assert.Equal("model.json", e.File);
        Assert.Contains(problem, e.Message, StringComparison.Ordinal);
        Assert.StartsWith("model.json: ", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_MissingFile_ThrowsTypedError()
    {
        string path = Path.Combine(Path.GetTempPath(), "crateil-no-such-config-" + Guid.NewGuid().ToString("N") + ".json");
        var e = Assert.Throws<CrateConfigException>(() => CrateConfig.Load(path));
        Assert.Equal(path, e.File);
    }

    [Fact]
    public void Presets_UnknownName_Throws()
    {
        var e = Assert.Throws<ArgumentException>(() => CrateConfig.Preset("crate-xl"));
        Assert.Contains("crate-t", e.Message, StringComparison.Ordinal);
        Assert.True(CrateConfig.IsPreset("vit-s"));
        Assert.Equal(CrateVariant.Vit, CrateConfig.Preset("vit-s").Variant);
        Assert.False(CrateConfig.IsPreset("model.json"));
    }

    [Fact]
    public void DimHead_DefaultsToDimOverHeads()
    {
        var c = new CrateConfig { Dim = 576, Heads = 12 };
        Assert.Equal(48, c.DimHead);
        Assert.Equal(c, c with { DimHead = 48 });
        Assert.Equal(64, (c with { DimHead = 64 }).DimHead);
    }

    internal static CrateConfig Tiny() => new()
    {
        ImageHeight = 16, ImageWidth = 16, PatchSize = 4, Classes = 5, Dim = 12, Depth = 2, Heads = 3, DimHead = 4,
    };
}
