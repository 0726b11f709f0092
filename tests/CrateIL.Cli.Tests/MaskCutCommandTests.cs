using System.Globalization;
using System.Text.Json;
using CrateIL.Cli.Commands;
using CrateIL.Compute.Devices;
using CrateIL.Crate.Models;
using CrateIL.Segmentation.Coco;
using CrateIL.Imaging;
using Xunit;
using Xunit.Abstractions;
using static CrateIL.Cli.Tests.SegmentationCliKit;

namespace CrateIL.Cli.Tests;

/// <summary><c>crate maskcut</c>: COCO results and dataset files, overlays, JSON, on tiny photos and labelme photos.</summary>
public class MaskCutCommandTests(ITestOutputHelper output)
{
    private static (int Exit, string Out, string Err) Crate(params string[] args) => CliRunner.Run(args);

    /// <summary>
    /// Checks results.json and results.dataset.json against the photos: RLE size = photo size, area and box = those of
    /// the decoded RLE, category 1, scores 1/(cut + 1), one dataset annotation per result; returns the masks per image id.
    /// </summary>
    private static Dictionary<long, List<bool[]>> CheckCocoFiles(string resultsPath, IReadOnlyList<string> photos)
    {
        var sizes = photos.Select(p => { var img = ImageFile.LoadRgb(p); return (img.Width, img.Height); }).ToArray();
        using var dataset = JsonDocument.Parse(File.ReadAllText(Path.ChangeExtension(resultsPath, null) + ".dataset.json"));
        var images = dataset.RootElement.GetProperty("images").EnumerateArray().ToArray();
        Assert.Equal(photos.Count, images.Length);
        for (int i = 0; i < images.Length; i++)
        {
            Assert.Equal(i + 1, images[i].GetProperty("id").GetInt64());
            Assert.Equal(Path.GetFileName(photos[i]), images[i].GetProperty("file_name").GetString());
            Assert.Equal(sizes[i], (images[i].GetProperty("width").GetInt32(), images[i].GetProperty("height").GetInt32()));
        }
        var category = Assert.Single(dataset.RootElement.GetProperty("categories").EnumerateArray());
        Assert.Equal((1, "fg"), (category.GetProperty("id").GetInt32(), category.GetProperty("name").GetString()));

        using var results = JsonDocument.Parse(File.ReadAllText(resultsPath));
        var list = results.RootElement.EnumerateArray().ToArray();
        Assert.Equal(list.Length, dataset.RootElement.GetProperty("annotations").GetArrayLength());
        var masks = new Dictionary<long, List<bool[]>>();
        foreach (var r in list)
        {
            long id = r.GetProperty("image_id").GetInt64();
            var (w, h) = sizes[id - 1];
            Assert.Equal(1, r.GetProperty("category_id").GetInt32());
            var seg = r.GetProperty("segmentation");
            Assert.Equal([h, w], seg.GetProperty("size").EnumerateArray().Select(v => v.GetInt32()));
            var rle = Rle.FromCompressedString(seg.GetProperty("counts").GetString()!, h, w);
            Assert.True(rle.Area > 0);
            Assert.Equal(rle.Area, r.GetProperty("area").GetInt64());
            Assert.Equal(rle.ToBox().ToArray(), r.GetProperty("bbox").EnumerateArray().Select(v => v.GetDouble()));
            double score = r.GetProperty("score").GetDouble();
            Assert.Contains(score, new[] { 1.0, 0.5, Math.Round(1.0 / 3, 6), 0.25, 0.2 });
            var mask = rle.Decode();
            var flat = new bool[h * w];
            for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) flat[y * w + x] = mask[y, x];
            (masks.TryGetValue(id, out var l) ? l : masks[id] = []).Add(flat);
        }
        return masks;
    }

    /// <summary>
    /// The overlay has the photo's size, changes the masked pixels (all but those already of the mask's colour, at most
    /// 1 %) and nothing outside the masks.
    /// </summary>
    private static void CheckOverlay(string pngPath, string photoPath, IReadOnlyList<bool[]> masks)
    {
        var photo = ImageFile.LoadRgb(photoPath);
        var overlay = ImageFile.LoadRgb(pngPath);
        var union = new bool[photo.Width * photo.Height];
        foreach (var m in masks) for (int p = 0; p < union.Length; p++) union[p] |= m[p];
        var (inside, outside) = Differences(photo, overlay, union);
        Assert.Equal(0, outside);
        int masked = union.Count(b => b);
        Assert.InRange(inside, masked - masked / 100, masked);
    }

    [Fact]
    public void TinyPhotos_CocoFilesOverlaysAndJson()
    {
        using var fx = new ImageFixtures();
        string outPath = fx.Combine("out", "results.json"), pngDir = fx.Combine("png");
        var run = Crate("maskcut", "--checkpoint", fx.Crate, "--images", fx.Photos, "--out", outPath, "--size", "64", "--n", "3",
            "--png", pngDir, "--device", "cpu", "--threads", "2", "--json");
        Assert.True(run.Exit == 0, run.Err);
        var photos = new[] { fx.Combine("photos", "tall.jpg"), fx.Combine("photos", "wide.png") };   // sorted, notes.txt skipped
        var masks = CheckCocoFiles(outPath, photos);
        Assert.NotEmpty(masks);

        using var json = JsonDocument.Parse(run.Out);
        var r = json.RootElement;
        Assert.Equal("maskcut", r.GetProperty("command").GetString());
        Assert.Equal((2, 64, 8, 3), (r.GetProperty("images").GetInt32(), r.GetProperty("size").GetInt32(), r.GetProperty("grid").GetInt32(), r.GetProperty("n").GetInt32()));
        Assert.False(r.GetProperty("crf").GetBoolean());
        Assert.Equal(masks.Values.Sum(l => l.Count), r.GetProperty("detections").GetInt32());
        Assert.Equal(outPath, r.GetProperty("results").GetString());
        var perImage = r.GetProperty("per_image").EnumerateArray().ToArray();
        Assert.Equal(2, perImage.Length);
        for (int i = 0; i < 2; i++)
        {
            var img = perImage[i];
            Assert.Equal(i + 1, img.GetProperty("image_id").GetInt64());
            string png = img.GetProperty("png").GetString()!;
            Assert.Equal(Path.Combine(pngDir, Path.GetFileNameWithoutExtension(photos[i]) + ".png"), png);
            var found = masks.TryGetValue(i + 1, out var l) ? l : [];
            Assert.Equal(found.Count, img.GetProperty("masks").GetArrayLength());
            Assert.Equal(3, found.Count + img.GetProperty("rejected").GetArrayLength());
            CheckOverlay(png, photos[i], found);
        }
    }

    [Fact]
    public void DefaultSize_IsCutLers480_AtMost60PatchesASide()
    {
        Assert.Equal([240, 480, 480, 480], new[] { 4, 8, 16, 32 }.Select(MaskCutCommand.DefaultSizeFor));
        // Without --size, a patch-16 model sees 480² (30×30 patches), as CutLER's ViT-S/16.
        using var fx = new ImageFixtures();
        string checkpoint = fx.Combine("patch16.safetensors");
        using (var cpu = DeviceRegistry.Open("cpu", 1))
        using (var model = new CrateModel(ImageFixtures.Config(CrateVariant.Crate) with { PatchSize = 16, Depth = 1 }, cpu, seed: 2))
            CrateCheckpoint.Save(model, checkpoint);
        var run = Crate("maskcut", "--checkpoint", checkpoint, "--images", fx.Combine("photos", "wide.png"), "--out", fx.Combine("r.json"),
            "--n", "1", "--device", "cpu", "--threads", "2", "--json");
        Assert.True(run.Exit == 0, run.Err);
        using var json = JsonDocument.Parse(run.Out);
        Assert.Equal((480, 30), (json.RootElement.GetProperty("size").GetInt32(), json.RootElement.GetProperty("grid").GetInt32()));
        output.WriteLine($"one photo at 480² (30×30 patches): {json.RootElement.GetProperty("seconds").GetDouble()} s");
    }

    [SkippableFact]
    public void LabelmePhotos_WithCrf()
    {
        RequireLabelme();
        using var fx = new ImageFixtures();
        string photos = Path.Combine(LabelmeVoc, "JPEGImages");
        string outPath = fx.Combine("results.json"), pngDir = fx.Combine("png");
        var run = Crate("maskcut", "--checkpoint", fx.Crate, "--images", Path.Combine(photos, "*.jpg"), "--out", outPath, "--size", "64",
            "--crf", "--png", pngDir, "--threads", "2", "--device", "cpu");
        Assert.True(run.Exit == 0, run.Err);
        output.WriteLine(run.Out);
        var files = Directory.GetFiles(photos, "*.jpg").Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(3, files.Length);
        var masks = CheckCocoFiles(outPath, files);
        for (int i = 0; i < files.Length; i++)
        {
            string png = Path.Combine(pngDir, Path.GetFileNameWithoutExtension(files[i]) + ".png");
            CheckOverlay(png, files[i], masks.TryGetValue(i + 1, out var l) ? l : []);
            string keep = Environment.GetEnvironmentVariable("CRATEIL_KEEP_PNG") ?? "";
            if (keep.Length > 0) File.Copy(png, Path.Combine(keep, "maskcut-" + Path.GetFileName(png)), overwrite: true);
        }
        Assert.Contains("CRF", run.Out, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--size", "60", "--size")]          // not a multiple of the patch (8)
    [InlineData("--n", "0", "--n")]
    [InlineData("--tau", "1.5", "--tau")]
    [InlineData("--threads", "0", "--threads")]
    [InlineData("--device", "bogus", "bogus")]
    [InlineData("--images", "/nonexistent/dir/*.jpg", "/nonexistent")]
    [InlineData("--checkpoint", "/nonexistent.safetensors", "nonexistent.safetensors")]
    public void BadArguments_OneLineExitTwo_NothingWritten(string option, string value, string mentions)
    {
        using var fx = new ImageFixtures();
        var args = new Dictionary<string, string>
        {
            ["--checkpoint"] = fx.Crate, ["--images"] = fx.Photos, ["--out"] = fx.Combine("out", "r.json"), ["--size"] = "64",
            ["--png"] = fx.Combine("png"),
        };
        args[option] = value;
        AssertOneLineError(Crate(["maskcut", .. args.SelectMany(p => new[] { p.Key, p.Value })]), mentions);
        Assert.False(Directory.Exists(fx.Combine("out")));
        Assert.False(Directory.Exists(fx.Combine("png")));
    }

    [Fact]
    public void UndecodablePhoto_IsOneLineError_NamingIt()
    {
        using var fx = new ImageFixtures();
        File.WriteAllText(fx.Combine("photos", "broken.jpg"), "not a jpeg");
        var run = Crate("maskcut", "--checkpoint", fx.Crate, "--images", fx.Photos, "--out", fx.Combine("out", "r.json"), "--size", "32");
        AssertOneLineError(run, "broken.jpg");
        Assert.False(File.Exists(fx.Combine("out", "r.json")));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{run.Err.Trim()}"));
    }
}
