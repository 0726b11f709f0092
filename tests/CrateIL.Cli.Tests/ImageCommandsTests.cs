using System.Text.Json;
using CrateIL.Cli.Images;
using CrateIL.Compute.Devices;
using CrateIL.Crate.Data;
using CrateIL.Crate.IO;
using CrateIL.Crate.Models;
using CrateIL.Segmentation.Attention;
using CrateIL.Segmentation.Imaging;
using CrateIL.Segmentation.MaskCut;
using CrateIL.Segmentation.Rendering;
using Xunit;
using Xunit.Abstractions;

namespace CrateIL.Cli.Tests;

/// <summary>
/// <c>crate infer --images</c>, <c>eval</c>, <c>attention</c> and <c>pca</c> run in-process on tiny untrained checkpoints
/// and small photos: exit codes, <c>--json</c> documents, the numbers against the library, and what the PNGs hold.
/// </summary>
public sealed class ImageCommandsTests(ITestOutputHelper output) : IDisposable
{
    private readonly ImageFixtures _fx = new();

    public void Dispose() => _fx.Dispose();

    private (int Code, string Stdout, string Stderr) Crate(params string[] args)
    {
        var r = CliRunner.Run(args);
        if (r.Exit != 0) output.WriteLine($"crate {string.Join(' ', args)} → {r.Exit}: {r.Err}");
        return r;
    }

    private static void AssertOneLineError((int Code, string Stdout, string Stderr) r, string contains)
    {
        Assert.Equal(2, r.Code);
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0], StringComparison.Ordinal);
        Assert.Contains(contains, lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", r.Stderr, StringComparison.Ordinal);
    }

    // ---------------------------------------------------------------- infer

    [Fact]
    public void Infer_Images_Json_ProbabilitiesOfTheModel()
    {
        var r = Crate("infer", "--checkpoint", _fx.Crate, "--images", _fx.Photos, "--top", "2", "--json", "--device", "cpu", "--threads", "1");
        Assert.Equal(0, r.Code);
        using var json = JsonDocument.Parse(r.Stdout);
        var root = json.RootElement;
        Assert.Equal(3, root.GetProperty("classes").GetInt32());
        Assert.True(root.GetProperty("class_names_known").GetBoolean());
        Assert.Equal(32, root.GetProperty("input").GetProperty("height").GetInt32());
        var images = root.GetProperty("images").EnumerateArray().ToArray();
        Assert.Equal(2, images.Length);

        // The same photos through the library: prepare, predict, softmax.
        using var cpu = DeviceRegistry.Open("cpu", 1);
        using var model = CheckpointModel.Open(_fx.Crate, cpu);
        var batch = ModelImages.Prepare(ImageInputs.Expand(_fx.Photos), model);
        var logits = model.Model.Predict(batch.Pixels, 2, 32, 32);
        for (int i = 0; i < 2; i++)
        {
            Assert.Equal(batch.Images[i].Path, images[i].GetProperty("file").GetString());
            var top = images[i].GetProperty("top").EnumerateArray().ToArray();
            Assert.Equal(2, top.Length);
            var row = logits.AsSpan(i * 3, 3).ToArray().Select(v => (double)v).ToArray();
            double max = row.Max(), sum = row.Sum(v => Math.Exp(v - max));
            int best = Array.IndexOf(row, max);
            Assert.Equal(best, top[0].GetProperty("label").GetInt32());
            Assert.Equal(ImageFixtures.ClassNames[best], top[0].GetProperty("name").GetString());
            Assert.Equal(1 / sum, top[0].GetProperty("probability").GetDouble(), 5);
            Assert.True(top[0].GetProperty("probability").GetDouble() >= top[1].GetProperty("probability").GetDouble());
        }
    }

    [Fact]
    public void Infer_Images_Text_NamesClasses()
    {
        var r = Crate("infer", "--checkpoint", _fx.Vit, "--images", _fx.Combine("photos", "*.png"), "--device", "cpu");
        Assert.Equal(0, r.Code);
        Assert.Contains("wide.png", r.Stdout, StringComparison.Ordinal);
        Assert.Equal(3, ImageFixtures.ClassNames.Count(n => r.Stdout.Contains("%  " + n, StringComparison.Ordinal)));
        Assert.Contains("resize + centre crop 0.875", r.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Infer_Npy_StillWritesLogits()
    {
        string input = _fx.Combine("in.npy"), logits = _fx.Combine("out.npy");
        var data = new float[2 * 3 * 32 * 32];
        for (int i = 0; i < data.Length; i++) data[i] = MathF.Sin(i * 0.01f);
        Npy.Write(input, [2, 3, 32, 32], data);
        var r = Crate("infer", "--checkpoint", _fx.Crate, "--input", input, "--output", logits, "--device", "cpu", "--json");
        Assert.Equal(0, r.Code);
        using var json = JsonDocument.Parse(r.Stdout);
        Assert.Equal([2, 3], json.RootElement.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()));
        using var cpu = DeviceRegistry.Open("cpu", 1);
        using var model = CrateCheckpoint.Load(_fx.Crate, cpu);
        Assert.Equal(model.Predict(data, 2, 32, 32), Npy.Read(logits).Data);
    }

    [Fact]
    public void Infer_BadArguments_OneLineExitTwo()
    {
        AssertOneLineError(Crate("infer", "--checkpoint", _fx.Crate), "give --images");
        AssertOneLineError(Crate("infer", "--checkpoint", _fx.Crate, "--images", _fx.Combine("photos", "*.gif")), "no files match");
        AssertOneLineError(Crate("infer", "--checkpoint", _fx.Crate, "--images", _fx.Photos, "--top", "0"), "--top 0");
        AssertOneLineError(Crate("infer", "--checkpoint", _fx.Crate, "--images", _fx.Combine("photos", "notes.txt")), "notes.txt");
        AssertOneLineError(Crate("infer", "--checkpoint", _fx.Combine("none.safetensors"), "--images", _fx.Photos), "none.safetensors");
        AssertOneLineError(Crate("infer", "--checkpoint", _fx.Crate, "--images", _fx.Photos, "--input", _fx.Crate), "one or the other");
    }

    // ---------------------------------------------------------------- eval

    [Fact]
    public void Eval_ImageFolder_Json_CountsAgreeWithPredictions()
    {
        string root = _fx.Combine("folder");
        var photos = new List<(string File, int Label)>();
        // Folder classes in another order than the checkpoint's names: labels are mapped by name.
        string[] folders = ["triangle", "circle", "square"];
        foreach (var (name, k) in folders.Select((n, k) => (n, k)))
        {
            Directory.CreateDirectory(Path.Combine(root, name));
            for (int j = 0; j < 2; j++)
            {
                string file = Path.Combine(root, name, $"{j}.png");
                ImageFixtures.SavePhoto(file, 40 + 7 * k, 33 + 5 * j, 3 + 4 * k, 2 + 9 * j);
                photos.Add((file, Array.IndexOf(ImageFixtures.ClassNames, name)));
            }
        }
        var r = Crate("eval", "--checkpoint", _fx.Crate, "--data", "imagefolder:" + root, "--json", "--device", "cpu");
        Assert.Equal(0, r.Code);
        using var json = JsonDocument.Parse(r.Stdout);
        var doc = json.RootElement;
        Assert.Equal(6, doc.GetProperty("images").GetInt32());
        Assert.Equal(1.0, doc.GetProperty("top5").GetDouble()); // 3 classes: the truth is always in the top 5

        using var cpu = DeviceRegistry.Open("cpu", 1);
        using var model = CheckpointModel.Open(_fx.Crate, cpu);
        var batch = ModelImages.Prepare([.. photos.Select(p => p.File)], model);
        var logits = model.Model.Predict(batch.Pixels, 6, 32, 32);
        var perClass = doc.GetProperty("per_class").EnumerateArray().ToDictionary(e => e.GetProperty("name").GetString()!);
        int correct = 0;
        for (int i = 0; i < 6; i++)
        {
            var row = logits.AsSpan(i * 3, 3);
            if (row[photos[i].Label] >= Math.Max(row[0], Math.Max(row[1], row[2]))) correct++;
        }
        Assert.Equal(correct / 6.0, doc.GetProperty("top1").GetDouble(), 12);
        Assert.Equal(ImageFixtures.ClassNames.Order(), perClass.Keys.Order());
        Assert.All(perClass.Values, c => Assert.Equal(2, c.GetProperty("images").GetInt32()));
        Assert.Equal(correct, perClass.Values.Sum(c => c.GetProperty("correct").GetInt32()));

        Directory.CreateDirectory(Path.Combine(root, "hexagon"));
        ImageFixtures.SavePhoto(Path.Combine(root, "hexagon", "x.png"), 20, 20, 1, 1);
        AssertOneLineError(Crate("eval", "--checkpoint", _fx.Crate, "--data", "imagefolder:" + root), "class 'hexagon' is not one of the checkpoint's classes");
    }

    [Fact]
    public void Eval_Shapes_TextAndJson()
    {
        // A model with the shapes classes and no recorded input (defaults: ImageNet normalisation).
        string path = _fx.Combine("shapes.safetensors");
        using (var cpu = DeviceRegistry.Open("cpu", 1))
        using (var model = new CrateModel(ImageFixtures.Config(CrateVariant.Crate) with { Classes = ShapesInClutter.ShapeCount }, cpu))
            CrateCheckpoint.Save(model, path);
        var r = Crate("eval", "--checkpoint", path, "--data", "shapes", "--count", "24", "--json", "--seed", "3");
        Assert.Equal(0, r.Code);
        using var json = JsonDocument.Parse(r.Stdout);
        Assert.Equal(24, json.RootElement.GetProperty("images").GetInt32());
        Assert.InRange(json.RootElement.GetProperty("top1").GetDouble(), 0, json.RootElement.GetProperty("top5").GetDouble());
        Assert.Equal(24, json.RootElement.GetProperty("per_class").EnumerateArray().Sum(c => c.GetProperty("images").GetInt32()));
        var text = Crate("eval", "--checkpoint", path, "--data", "shapes", "--count", "24", "--limit", "10");
        Assert.Equal(0, text.Code);
        Assert.Contains("10 images", text.Stdout, StringComparison.Ordinal);
        Assert.Contains("top-1", text.Stdout, StringComparison.Ordinal);
        AssertOneLineError(Crate("eval", "--checkpoint", path, "--data", "cifar"), "--data 'cifar'");
        AssertOneLineError(Crate("eval", "--checkpoint", path, "--data", "imagefolder:" + _fx.Combine("missing")), "does not exist");
        AssertOneLineError(Crate("eval", "--checkpoint", path, "--data", "shapes", "--limit", "0"), "--limit 0");
    }

    // ---------------------------------------------------------------- attention

    [Theory]
    [InlineData("crate")]
    [InlineData("vit")]
    public void Attention_WritesMapsMasksAndNpy(string which)
    {
        string checkpoint = which == "crate" ? _fx.Crate : _fx.Vit, outDir = _fx.Combine("att-" + which);
        var r = Crate("attention", "--checkpoint", checkpoint, "--images", _fx.Photos, "--out", outDir, "--npy", "--json", "--threshold", "dino:0.6", "--device", "cpu");
        Assert.Equal(0, r.Code);
        using var json = JsonDocument.Parse(r.Stdout);
        var doc = json.RootElement;
        Assert.Equal(which, doc.GetProperty("variant").GetString());
        Assert.Equal(1, doc.GetProperty("layer").GetInt32()); // the last of 2
        Assert.Equal([0, 1], doc.GetProperty("heads").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal("dino", doc.GetProperty("threshold").GetProperty("rule").GetString());
        Assert.Equal(0.6, doc.GetProperty("threshold").GetProperty("value").GetDouble());
        Assert.Equal(4, doc.GetProperty("grid").GetProperty("rows").GetInt32());
        var images = doc.GetProperty("images").EnumerateArray().ToArray();
        Assert.Equal(["tall", "wide"], images.Select(i => i.GetProperty("stem").GetString()));
        foreach (var image in images)
        {
            var files = image.GetProperty("files");
            foreach (var name in new[] { "figure", "mean", "mask", "npy" })
                Assert.True(File.Exists(files.GetProperty(name).GetString()), $"{name} missing");
            var maps = Npy.Read(files.GetProperty("npy").GetString()!);
            Assert.Equal([2, 4, 4], maps.Shape);
            for (int h = 0; h < 2; h++) Assert.Equal(1.0, maps.Data.AsSpan(h * 16, 16).ToArray().Sum(v => (double)v), 4); // Eq. 10: a softmax over patches
            var region = image.GetProperty("region");
            var photo = ImageFile.LoadRgb(image.GetProperty("file").GetString()!);
            var visible = Crop(photo, region.GetProperty("x").GetInt32(), region.GetProperty("y").GetInt32(), region.GetProperty("width").GetInt32(), region.GetProperty("height").GetInt32());
            AssertMaskOverlay(files.GetProperty("mask").GetString()!, visible, maps, AttentionThreshold.DinoMass);
            double fraction = image.GetProperty("mask_fraction").GetProperty("mean").GetDouble();
            Assert.InRange(fraction, 1 / 16.0, 1);
            var figure = ImageFile.LoadRgb(files.GetProperty("figure").GetString()!);
            // Four columns (photo, mean, two heads) and two rows of tiles at least as large as the displayed photo.
            var tile = ImageFigures.Display(visible);
            Assert.True(figure.Width > 4 * tile.Width && figure.Height > 2 * tile.Height, $"figure {figure.Width}×{figure.Height} for {tile.Width}×{tile.Height} tiles");
            var mean = ImageFile.LoadRgb(files.GetProperty("mean").GetString()!);
            Assert.True(mean.Width >= AttentionPictures.FullSide && mean.Height > visible.Height, $"mean {mean.Width}×{mean.Height}");
        }
        if (which == "vit") Assert.Equal(33, images[1].GetProperty("region").GetProperty("height").GetInt32()); // centre crop of 61×37
    }

    /// <summary>
    /// The mask PNG is the photo (enlarged to the full picture size) wherever the mean map's mask is off, and differs
    /// from it in every masked patch cell.
    /// </summary>
    private static void AssertMaskOverlay(string maskPng, RgbImage visible, NpyArray maps, double mass)
    {
        int heads = maps.Shape[0], gh = maps.Shape[1], gw = maps.Shape[2], n = gh * gw;
        var mean = new float[n];
        // The same float arithmetic as AttentionMaps.Aggregate(Mean): sum in head order, then divide.
        for (int h = 0; h < heads; h++) for (int p = 0; p < n; p++) mean[p] += maps.Data[h * n + p];
        for (int p = 0; p < n; p++) mean[p] /= heads;
        var mask = AttentionThreshold.CumulativeMass(mean, mass);
        var overlay = ImageFile.LoadRgb(maskPng);
        var photo = AttentionPictures.Full(visible);
        Assert.Equal((photo.Width, photo.Height), (overlay.Width, overlay.Height));
        var changedInCell = new bool[n];
        // Each pixel's patch cell by the overlay's own nearest-neighbour rule (PyTorch's float scale, not exact division).
        var cells = BinaryMasks.ResizeNearest<int>([.. Enumerable.Range(0, n)], gh, gw, photo.Height, photo.Width);
        for (int y = 0; y < photo.Height; y++)
            for (int x = 0; x < photo.Width; x++)
            {
                int cell = cells[y * photo.Width + x], o = (y * photo.Width + x) * 3;
                bool same = overlay.Data[o] == photo.Data[o] && overlay.Data[o + 1] == photo.Data[o + 1] && overlay.Data[o + 2] == photo.Data[o + 2];
                if (!mask[cell]) Assert.True(same, $"pixel ({x}, {y}) outside the mask was changed");
                else if (!same) changedInCell[cell] = true;
            }
        for (int p = 0; p < n; p++) Assert.Equal(mask[p], changedInCell[p]);
    }

    private static RgbImage Crop(RgbImage photo, int x0, int y0, int w, int h)
    {
        var cut = new RgbImage(w, h);
        for (int y = 0; y < h; y++) photo.Data.AsSpan(((y0 + y) * photo.Width + x0) * 3, w * 3).CopyTo(cut.Data.AsSpan(y * w * 3));
        return cut;
    }

    [Fact]
    public void Attention_LargerSizeHeadSubsetAndTopRule()
    {
        string outDir = _fx.Combine("att-size");
        var r = Crate("attention", "--checkpoint", _fx.Crate, "--images", _fx.Combine("photos", "wide.png"), "--out", outDir,
            "--size", "64x48", "--heads", "1", "--layer", "-2", "--threshold", "top:0.25", "--npy");
        Assert.Equal(0, r.Code);
        Assert.Contains("layer 0 of 0..1, heads 1, input 48×64 → 6×8 patches, masks top:0.25", r.Stdout, StringComparison.Ordinal);
        var maps = Npy.Read(Path.Combine(outDir, "wide.npy"));
        Assert.Equal([1, 8, 6], maps.Shape);
        var mask = AttentionThreshold.TopFraction(maps.Data, 0.25);
        Assert.Equal(12, mask.Count(m => m)); // ⌈0.25·48⌉
        AssertOneLineError(Crate("attention", "--checkpoint", _fx.Vit, "--images", _fx.Photos, "--out", outDir, "--size", "64x48"), "centre-crops squares");
    }

    [Theory]
    [InlineData("--layer", "2", "--layer 2 is outside")]
    [InlineData("--layer", "-3", "--layer -3 is outside")]
    [InlineData("--heads", "0,2", "'2' is not a head of 0..1")]
    [InlineData("--threshold", "otsu", "--threshold 'otsu'")]
    [InlineData("--threshold", "dino:1.5", "in (0, 1]")]
    [InlineData("--size", "30", "multiple of the model's patch size 8")]
    [InlineData("--size", "big", "--size 'big'")]
    [InlineData("--threads", "0", "--threads 0")]
    [InlineData("--device", "bogus", "bogus")]
    public void Attention_BadArguments_OneLineExitTwo_NothingWritten(string option, string value, string message)
    {
        string outDir = _fx.Combine("att-bad");
        AssertOneLineError(Crate("attention", "--checkpoint", _fx.Crate, "--images", _fx.Photos, "--out", outDir, option, value), message);
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void Attention_UndecodableImage_NothingWritten()
    {
        string bad = _fx.Combine("bad");
        Directory.CreateDirectory(bad);
        ImageFixtures.SavePhoto(Path.Combine(bad, "a.png"), 20, 20, 2, 2);
        File.WriteAllBytes(Path.Combine(bad, "b.jpg"), [0xFF, 0xD8, 0xFF, 0xE0, 0, 16, 1, 2]);
        string outDir = _fx.Combine("att-undecodable");
        AssertOneLineError(Crate("attention", "--checkpoint", _fx.Crate, "--images", bad, "--out", outDir), "b.jpg");
        Assert.False(Directory.Exists(outDir));
    }

    // ---------------------------------------------------------------- pca

    [Fact]
    public void Pca_WritesFigureRgbAndNpy()
    {
        string outDir = _fx.Combine("pca");
        var r = Crate("pca", "--checkpoint", _fx.Crate, "--images", _fx.Photos, "--out", outDir, "--npy", "--json", "--size", "64", "--threads", "1");
        Assert.Equal(0, r.Code);
        using var json = JsonDocument.Parse(r.Stdout);
        var doc = json.RootElement;
        Assert.Equal(8, doc.GetProperty("grid").GetProperty("cols").GetInt32());
        Assert.Contains(doc.GetProperty("foreground").GetProperty("sign").GetString(), new[] { "positive", "negative" });
        Assert.Equal(3, doc.GetProperty("component_variances").GetArrayLength());
        var variances = doc.GetProperty("component_variances").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.True(variances[0] >= variances[1] && variances[1] >= variances[2] && variances[2] >= 0);
        foreach (var image in doc.GetProperty("images").EnumerateArray())
        {
            var files = image.GetProperty("files");
            var planes = Npy.Read(files.GetProperty("npy").GetString()!);
            Assert.Equal([4, 8, 8], planes.Shape);
            Assert.InRange(planes.Data.AsSpan(0, 64).ToArray().Min(), 0f, 0f);
            Assert.InRange(planes.Data.AsSpan(0, 64).ToArray().Max(), 1f, 1f);
            double fg = image.GetProperty("foreground_fraction").GetDouble();
            Assert.InRange(fg, 0, 1);
            // The RGB picture is black exactly on background patches (the paper removes the background).
            var rgb = ImageFile.LoadRgb(files.GetProperty("rgb").GetString()!);
            var photo = ImageFile.LoadRgb(image.GetProperty("file").GetString()!);
            var full = AttentionPictures.Full(photo);
            Assert.Equal((full.Width, full.Height), (rgb.Width, rgb.Height));
            var components = planes.Data.AsSpan(64).ToArray();
            int blackCells = 0;
            for (int p = 0; p < 64; p++)
            {
                int x = (p % 8 * 2 + 1) * rgb.Width / 16, y = (p / 8 * 2 + 1) * rgb.Height / 16, o = (y * rgb.Width + x) * 3;
                bool background = components[p] == components[64 + p] && components[p] == components.Min();
                if (rgb.Data[o] + rgb.Data[o + 1] + rgb.Data[o + 2] == 0) blackCells++;
                if (background) Assert.Equal(0, rgb.Data[o] + rgb.Data[o + 1] + rgb.Data[o + 2]);
            }
            Assert.True(blackCells >= (int)Math.Round((1 - fg) * 64), $"{blackCells} black cells for foreground {fg}");
            Assert.True(File.Exists(files.GetProperty("figure").GetString()));
        }
        AssertOneLineError(Crate("pca", "--checkpoint", _fx.Crate, "--images", _fx.Photos, "--out", outDir, "--threshold", "1.5"), "--threshold 1.5");
        AssertOneLineError(Crate("pca", "--checkpoint", _fx.Crate, "--images", _fx.Photos, "--out", outDir, "--foreground", "up"), "'up'");
    }

    // ---------------------------------------------------------------- real photos

    [SkippableFact]
    public void LabelmePhotos_EveryCommand()
    {
        string? photos = ImageFixtures.LabelmePhotos();
        Skip.If(photos is null, "labelme-examples not installed (/usr/share/doc/labelme-examples); apt-get install labelme-examples");
        string glob = Path.Combine(photos!, "*.jpg");
        var infer = Crate("infer", "--checkpoint", _fx.Vit, "--images", glob, "--json");
        Assert.Equal(0, infer.Code);
        using (var json = JsonDocument.Parse(infer.Stdout)) Assert.Equal(3, json.RootElement.GetProperty("images").GetArrayLength());

        string att = _fx.Combine("labelme-att");
        var r = Crate("attention", "--checkpoint", _fx.Crate, "--images", glob, "--out", att, "--size", "96", "--npy", "--json");
        Assert.Equal(0, r.Code);
        using (var json = JsonDocument.Parse(r.Stdout))
            foreach (var image in json.RootElement.GetProperty("images").EnumerateArray())
            {
                var photo = ImageFile.LoadRgb(image.GetProperty("file").GetString()!);
                Assert.Equal(photo.Width, image.GetProperty("region").GetProperty("width").GetInt32()); // a plain resize sees the whole photo
                var files = image.GetProperty("files");
                AssertMaskOverlay(files.GetProperty("mask").GetString()!, photo, Npy.Read(files.GetProperty("npy").GetString()!), AttentionThreshold.DinoMass);
            }
        string pca = _fx.Combine("labelme-pca");
        Assert.Equal(0, Crate("pca", "--checkpoint", _fx.Vit, "--images", photos!, "--out", pca, "--size", "96").Code);
        Assert.Equal(6, Directory.GetFiles(pca, "*.png").Length);
    }
}
