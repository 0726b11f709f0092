using System.Globalization;
using System.Text.Json;
using CrateIL.Crate.IO;
using CrateIL.Imaging;
using CrateIL.Segmentation.MaskCut;
using CrateIL.Segmentation.Voc;
using Xunit;
using Xunit.Abstractions;
using static CrateIL.Cli.Tests.SegmentationCliKit;

namespace CrateIL.Cli.Tests;

/// <summary><c>crate crf</c> on a synthetic scene, on a real labelme photo, and its mistakes.</summary>
public class CrfCommandTests(ITestOutputHelper output)
{
    private static (int Exit, string Out, string Err) Crate(params string[] args) => CliRunner.Run(args);

    /// <summary>The truth coarsened to 8×8-pixel blocks (what MaskCut's patch grid gives), at grid size.</summary>
    private static (bool[] Grid, int GridHeight, int GridWidth) Blocky(bool[] truth, int width, int height, int block = 8)
    {
        int gh = height / block, gw = width / block;
        var grid = new bool[gh * gw];
        for (int gy = 0; gy < gh; gy++)
            for (int gx = 0; gx < gw; gx++)
            {
                int cy = gy * block + block / 2, cx = gx * block + block / 2;
                grid[gy * gw + gx] = truth[cy * width + cx];
            }
        return (grid, gh, gw);
    }

    [Fact]
    public void BlockyMask_IsPulledToTheObjectEdges_PngsAndJson()
    {
        const int W = 64, H = 48;
        var (photo, truth) = DiscScene(W, H);
        var (grid, gh, gw) = Blocky(truth, W, H);
        using var dir = new TempDir();
        ImageFile.SavePng(dir.File("photo.png"), photo);
        Png.WriteIndexed(dir.File("mask.png"), new IndexedImage(gw, gh, grid.Select(b => b ? (byte)255 : (byte)0).ToArray(), null));

        var run = Crate("crf", "--image", dir.File("photo.png"), "--mask", dir.File("mask.png"), "-o", dir.File("out/refined.png"),
            "--overlay", dir.File("out/overlay.png"), "--threads", "2", "--json");
        Assert.True(run.Exit == 0, run.Err);

        var refined = ReadBinaryPng(dir.File("out/refined.png"), W, H);
        var coarse = Nearest(grid, gh, gw, H, W);
        double before = Iou(coarse, truth), after = Iou(refined, truth);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"IoU with the disc: blocky {before:F4} → CRF {after:F4}"));
        Assert.True(after > 0.97, $"CRF IoU {after}");
        Assert.True(after > before + 0.02, $"the CRF did not improve the blocky mask ({before} → {after})");

        // The overlay: photo size, changed inside the refined mask (fill), untouched far from both masks.
        var overlay = ImageFile.LoadRgb(dir.File("out/overlay.png"));
        var (inside, outside) = Differences(photo, overlay, refined);
        Assert.Equal(Count(refined), inside);
        var near = Nearest(grid, gh, gw, H, W).Select((c, p) => c || refined[p]).ToArray();
        Assert.Equal(0, Differences(photo, overlay, near).Outside);
        Assert.True(outside <= Count(coarse));

        using var json = JsonDocument.Parse(run.Out);
        var r = json.RootElement;
        Assert.Equal("crf", r.GetProperty("command").GetString());
        Assert.Equal((W, H), (r.GetProperty("width").GetInt32(), r.GetProperty("height").GetInt32()));
        Assert.Equal((gw, gh), (r.GetProperty("mask_width").GetInt32(), r.GetProperty("mask_height").GetInt32()));
        Assert.Equal(10, r.GetProperty("iterations").GetInt32());
        Assert.Equal(Count(refined), r.GetProperty("output_area").GetInt32());
        Assert.InRange(r.GetProperty("iou").GetDouble(), 0.5, 1);
        Assert.Equal(dir.File("out/overlay.png"), r.GetProperty("overlay").GetString());
    }

    [Fact]
    public void BinaryMaskAtImageSize_WithFillHoles_EqualsMaskCutRefiner()
    {
        // The command's unary for a 0/1 mask is CutLER's (softmax([0, 1]) = 0.7311 on the mask's label); with
        // --fill-holes it is exactly what maskcut --crf does to an accepted bipartition.
        const int W = 40, H = 32;
        var (photo, truth) = DiscScene(W, H, seed: 9);
        var (grid, gh, gw) = Blocky(truth, W, H);
        var mask = Nearest(grid, gh, gw, H, W);
        using var dir = new TempDir();
        ImageFile.SavePng(dir.File("photo.png"), photo);
        Npy.Write(dir.File("mask.npy"), [H, W], mask.Select(b => b ? 1f : 0f).ToArray());
        var run = Crate("crf", "--image", dir.File("photo.png"), "--mask", dir.File("mask.npy"), "-o", dir.File("refined.png"), "--fill-holes", "--threads", "1");
        Assert.True(run.Exit == 0, run.Err);
        var expected = MaskCutRefiner.Refine(new BinaryMask(H, W, mask.Select(b => b ? (byte)1 : (byte)0).ToArray()), photo.Data,
            CrfSettings.CutLer);
        Assert.NotNull(expected.Mask);
        Assert.Equal(expected.Mask.Pixels.ToArray().Select(b => b != 0), ReadBinaryPng(dir.File("refined.png"), W, H));
    }

    [SkippableFact]
    public void RealLabelmePhoto_CoarseClassMask_StaysOnTheObjects()
    {
        RequireLabelme();
        string id = "2011_000003";
        var sample = VocDataset.Open(LabelmeVoc).Samples.Single(s => s.Id == id);
        var photo = sample.LoadImage();
        var labels = sample.LoadClassMask();
        var truth = labels.Labels.Select(l => l is not 0 and not 255).ToArray();
        // A 16-pixel-block version of the annotation, stored as a palette PNG the way VOC stores labels.
        int gh = photo.Height / 16, gw = photo.Width / 16;
        var blocks = new byte[gh * gw];
        for (int gy = 0; gy < gh; gy++)
            for (int gx = 0; gx < gw; gx++)
                blocks[gy * gw + gx] = labels[gy * 16 + 8, gx * 16 + 8];
        using var dir = new TempDir();
        new VocMask(gw, gh, blocks).Save(dir.File("coarse.png"));

        var run = Crate("crf", "--image", sample.ImagePath, "--mask", dir.File("coarse.png"), "-o", dir.File("refined.png"),
            "--overlay", dir.File("overlay.png"), "--json");
        Assert.True(run.Exit == 0, run.Err);
        var refined = ReadBinaryPng(dir.File("refined.png"), photo.Width, photo.Height);
        var coarse = Nearest(blocks.Select(l => l is not 0 and not 255).ToArray(), gh, gw, photo.Height, photo.Width);
        double before = Iou(coarse, truth), after = Iou(refined, truth);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{id} {photo.Width}×{photo.Height}: IoU with the annotation: 16-px blocks {before:F4} → CRF {after:F4}; {run.Out.Length} bytes of JSON"));
        Assert.True(after > 0.7, $"CRF IoU {after}");
        var overlay = ImageFile.LoadRgb(dir.File("overlay.png"));
        Assert.Equal(Count(refined), Differences(photo, overlay, refined).Inside);
        string keep = Environment.GetEnvironmentVariable("CRATEIL_KEEP_PNG") ?? "";
        if (keep.Length > 0) File.Copy(dir.File("overlay.png"), Path.Combine(keep, "crf-overlay-" + id + ".png"), overwrite: true);
    }

    [Fact]
    public void BadInputs_OneLineExitTwo_NothingWritten()
    {
        var (photo, truth) = DiscScene(24, 16);
        using var dir = new TempDir();
        ImageFile.SavePng(dir.File("photo.png"), photo);
        Npy.Write(dir.File("mask.npy"), [16, 24], truth.Select(b => b ? 1f : 0f).ToArray());
        Npy.Write(dir.File("bad.npy"), [16, 24], truth.Select(b => b ? 1.5f : 0f).ToArray());
        Npy.Write(dir.File("cube.npy"), [2, 16, 24], new float[2 * 16 * 24]);
        File.WriteAllText(dir.File("text.jpg"), "not an image");
        string o = dir.File("out.png");
        AssertOneLineError(Crate("crf", "--image", dir.File("none.png"), "--mask", dir.File("mask.npy"), "-o", o), "none.png");
        AssertOneLineError(Crate("crf", "--image", dir.File("text.jpg"), "--mask", dir.File("mask.npy"), "-o", o), "text.jpg");
        AssertOneLineError(Crate("crf", "--image", dir.File("photo.png"), "--mask", dir.File("bad.npy"), "-o", o), "bad.npy");
        AssertOneLineError(Crate("crf", "--image", dir.File("photo.png"), "--mask", dir.File("cube.npy"), "-o", o), "cube.npy");
        AssertOneLineError(Crate("crf", "--image", dir.File("photo.png"), "--mask", dir.File("text.jpg"), "-o", o), "text.jpg");
        AssertOneLineError(Crate("crf", "--image", dir.File("photo.png"), "--mask", dir.File("mask.npy"), "-o", o, "--iterations", "-1"), "--iterations");
        AssertOneLineError(Crate("crf", "--image", dir.File("photo.png"), "--mask", dir.File("mask.npy"), "-o", o, "--threads", "0"), "--threads");
        AssertOneLineError(Crate("crf", "--image", dir.File("photo.png"), "--mask", dir.File("mask.npy")));
        Assert.False(File.Exists(o));
    }

    /// <summary>A patch-grid mask at image size by PyTorch's legacy nearest rule (what <see cref="BinaryMask.ResizeNearest"/> does).</summary>
    private static bool[] Nearest(bool[] grid, int gh, int gw, int height, int width)
    {
        var small = new BinaryMask(gh, gw, grid.Select(b => b ? (byte)1 : (byte)0).ToArray());
        return small.ResizeNearest(height, width).Pixels.ToArray().Select(b => b != 0).ToArray();
    }

    private static int Count(bool[] mask) => mask.Count(b => b);
}
