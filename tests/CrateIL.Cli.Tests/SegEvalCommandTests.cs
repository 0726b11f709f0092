using System.Text.Json;
using CrateIL.Imaging;
using CrateIL.Segmentation.Voc;
using Xunit;
using Xunit.Abstractions;
using static CrateIL.Cli.Tests.SegmentationCliKit;

namespace CrateIL.Cli.Tests;

/// <summary><c>crate segeval</c> on a tiny VOC folder with a split list, on labelme-examples' VOC export, and mistakes.</summary>
public class SegEvalCommandTests(ITestOutputHelper output)
{
    private static (int Exit, string Out, string Err) Crate(params string[] args) => CliRunner.Run(args);

    /// <summary>
    /// A VOC folder: three photos (a person disc, a disc with a void ring, a bus-labelled square), ImageSets val = the
    /// first two. Returns its root.
    /// </summary>
    private static string TinyVoc(ImageFixtures fx)
    {
        string root = fx.Combine("voc");
        foreach (var d in new[] { "JPEGImages", "SegmentationClass", "ImageSets/Segmentation" }) Directory.CreateDirectory(Path.Combine(root, d));
        void Add(string id, int w, int h, byte label, bool voidRing)
        {
            var (photo, truth) = DiscScene(w, h, seed: id.Length);
            ImageFile.SaveJpeg(Path.Combine(root, "JPEGImages", id + ".jpg"), photo, 95);
            var labels = new byte[w * h];
            for (int p = 0; p < labels.Length; p++) labels[p] = truth[p] ? label : (byte)0;
            if (voidRing)   // VOC's 255 border around the object
                for (int y = 1; y < h - 1; y++)
                    for (int x = 1; x < w - 1; x++)
                        if (truth[y * w + x] && (!truth[y * w + x - 1] || !truth[y * w + x + 1] || !truth[(y - 1) * w + x] || !truth[(y + 1) * w + x]))
                            labels[y * w + x] = VocColormap.Ignore;
            new VocMask(w, h, labels).Save(Path.Combine(root, "SegmentationClass", id + ".png"));
        }
        Add("a", 48, 40, 15, false);
        Add("bb", 37, 53, 15, true);
        Add("ccc", 40, 40, 6, false);
        File.WriteAllLines(Path.Combine(root, "ImageSets", "Segmentation", "val.txt"), ["a", "bb"]);
        return root;
    }

    private static double[] Numbers(JsonElement array) => array.EnumerateArray().Select(v => v.GetDouble()).ToArray();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]   // the ViT fixture centre-crops: the truth is cut to the region it saw
    public void TinyVoc_ValSplit_AllLayers_JsonIsConsistent(bool vit)
    {
        using var fx = new ImageFixtures();
        string root = TinyVoc(fx);
        var run = Crate("segeval", "--checkpoint", vit ? fx.Vit : fx.Crate, "--voc", root, "--layer", "all", "--size", "48",
            "--png", fx.Combine("fig.png"), "--device", "cpu", "--threads", "2", "--json");
        Assert.True(run.Exit == 0, run.Err);
        using var json = JsonDocument.Parse(run.Out);
        var r = json.RootElement;
        Assert.Equal("segeval", r.GetProperty("command").GetString());
        Assert.Equal("val", r.GetProperty("split").GetString());
        Assert.Equal((2, 48, 48, 6, 6), (r.GetProperty("images").GetInt32(), r.GetProperty("height").GetInt32(), r.GetProperty("width").GetInt32(),
            r.GetProperty("grid_rows").GetInt32(), r.GetProperty("grid_cols").GetInt32()));
        var perImage = r.GetProperty("per_image").EnumerateArray().ToArray();
        Assert.Equal(["a", "bb"], perImage.Select(i => i.GetProperty("id").GetString()));
        Assert.Equal([0, 15], perImage[0].GetProperty("classes").EnumerateArray().Select(v => v.GetInt32()));
        var layers = r.GetProperty("layers").EnumerateArray().ToArray();
        Assert.Equal([0, 1], layers.Select(l => l.GetProperty("layer").GetInt32()));
        for (int li = 0; li < layers.Length; li++)
        {
            var l = layers[li];
            // Eq. 14 over the dataset = the mean of the per-image scores.
            double eq14 = l.GetProperty("headwise_miou").GetDouble();
            Assert.InRange(eq14, 0, 1);
            Assert.Equal(perImage.Average(i => Numbers(i.GetProperty("headwise_miou"))[li]), eq14, 5);
            var perClass = l.GetProperty("headwise_per_class").EnumerateArray().ToArray();
            Assert.Equal([(0, "background", 2), (15, "person", 2)],
                perClass.Select(c => (c.GetProperty("class").GetInt32(), c.GetProperty("name").GetString(), c.GetProperty("images").GetInt32())));
            // Per image, Eq. 14 is the mean over its classes, so the dataset mean equals the mean of the per-class means here.
            Assert.Equal(perClass.Average(c => c.GetProperty("iou").GetDouble()), eq14, 5);
            var confusion = l.GetProperty("confusion_per_class").EnumerateArray().ToArray();
            Assert.Equal(["background", "foreground"], confusion.Select(c => c.GetProperty("name").GetString()));
            Assert.Equal(confusion.Average(c => c.GetProperty("iou").GetDouble()), l.GetProperty("confusion_miou").GetDouble(), 5);
            Assert.InRange(l.GetProperty("pixel_accuracy").GetDouble(), 0, 1);
            Assert.Equal(perImage.Average(i => Numbers(i.GetProperty("jaccard"))[li]), l.GetProperty("jaccard").GetDouble(), 5);
        }
        var figure = ImageFile.LoadRgb(fx.Combine("fig.png"));
        Assert.True(figure.Width > 3 * 256 && figure.Height > 2 * 200, $"figure {figure.Width}×{figure.Height}");
    }

    [SkippableFact]
    public void LabelmeVocExport_EveryAnnotatedImage_ClassesFromTheMasks()
    {
        RequireLabelme();
        using var fx = new ImageFixtures();
        var run = Crate("segeval", "--checkpoint", fx.Crate, "--voc", LabelmeVoc, "--size", "64", "--png", fx.Combine("labelme.png"), "--json", "--device", "cpu");
        Assert.True(run.Exit == 0, run.Err);
        using var json = JsonDocument.Parse(run.Out);
        var r = json.RootElement;
        Assert.StartsWith("all", r.GetProperty("split").GetString(), StringComparison.Ordinal);   // no ImageSets in the export
        Assert.Equal(3, r.GetProperty("images").GetInt32());
        var layer = Assert.Single(r.GetProperty("layers").EnumerateArray());
        Assert.Equal(1, layer.GetProperty("layer").GetInt32());   // the last layer by default
        // The classes annotated in labelme-examples' three photos, and in how many photos each appears.
        Assert.Equal([(0, 3), (5, 1), (6, 1), (7, 1), (9, 1), (15, 2), (18, 1)],
            layer.GetProperty("headwise_per_class").EnumerateArray().Select(c => (c.GetProperty("class").GetInt32(), c.GetProperty("images").GetInt32())));
        output.WriteLine($"Eq. 14 mIoU {layer.GetProperty("headwise_miou").GetDouble():F4}, confusion mIoU {layer.GetProperty("confusion_miou").GetDouble():F4} (untrained tiny model)");
        string keep = Environment.GetEnvironmentVariable("CRATEIL_KEEP_PNG") ?? "";
        if (keep.Length > 0) File.Copy(fx.Combine("labelme.png"), Path.Combine(keep, "segeval-labelme.png"), overwrite: true);
    }

    [Fact]
    public void TextOutput_NamesTheSplitAndTheScores()
    {
        using var fx = new ImageFixtures();
        var run = Crate("segeval", "--checkpoint", fx.Crate, "--voc", TinyVoc(fx), "--split", "val", "--device", "cpu");
        Assert.True(run.Exit == 0, run.Err);
        Assert.Contains("split val: 2 images at 32×32 (4×4 patches)", run.Out, StringComparison.Ordinal);
        Assert.Contains("Eq. 14 mIoU", run.Out, StringComparison.Ordinal);
        Assert.Contains("confusion mIoU", run.Out, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--voc", "/nonexistent/voc", "/nonexistent/voc")]
    [InlineData("--split", "test", "test.txt")]
    [InlineData("--layer", "2", "--layer")]
    [InlineData("--layer", "last", "--layer")]
    [InlineData("--top", "0", "--top")]
    [InlineData("--mass", "1.5", "--mass")]
    [InlineData("--size", "30", "--size")]
    [InlineData("--size", "4x", "--size")]
    [InlineData("--threads", "0", "--threads")]
    public void BadArguments_OneLineExitTwo(string option, string value, string mentions)
    {
        using var fx = new ImageFixtures();
        var args = new Dictionary<string, string> { ["--checkpoint"] = fx.Crate, ["--voc"] = TinyVoc(fx), ["--png"] = fx.Combine("fig.png") };
        args[option] = value;
        AssertOneLineError(Crate(["segeval", .. args.SelectMany(p => new[] { p.Key, p.Value })]), mentions);
        Assert.False(File.Exists(fx.Combine("fig.png")));
    }

    [Fact]
    public void MaskOfAnotherSize_IsOneLineError_NamingIt()
    {
        using var fx = new ImageFixtures();
        string root = TinyVoc(fx);
        new VocMask(10, 10, new byte[100]).Save(Path.Combine(root, "SegmentationClass", "bb.png"));
        AssertOneLineError(Crate("segeval", "--checkpoint", fx.Crate, "--voc", root), "bb.png");
    }
}
