using CrateIL.Crate.Data;
using CrateIL.Imaging;
using Xunit;

namespace CrateIL.Crate.Tests;

public class ImageFolderTests
{
    private static void WritePng(string path, int w, int h, int channels, int seed)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        ImageFile.SavePng(path, DataTestHelpers.Pixels(w, h, channels, seed), w, h, channels);
    }

    [Fact]
    public void Classes_are_sorted_ordinally_and_files_walked_like_torchvision()
    {
        using var tmp = new TempFolder();
        WritePng(tmp.Combine("b_cls", "2.png"), 4, 3, 3, 1);
        WritePng(tmp.Combine("b_cls", "10.png"), 5, 5, 3, 2);
        WritePng(tmp.Combine("b_cls", "nested", "0.png"), 3, 3, 3, 3);
        WritePng(tmp.Combine("A_cls", "x.PNG"), 6, 2, 3, 4);
        WritePng(tmp.Combine("a_cls", "y.png"), 2, 6, 1, 5);
        ImageFile.SaveJpeg(tmp.Combine("a_cls", "z.jpg"), DataTestHelpers.Pixels(8, 8, 3, 6), 8, 8, 3);
        File.WriteAllText(tmp.Combine("a_cls", "notes.txt"), "not an image");

        var ds = new ImageFolderDataset(tmp.Path, new Resize(4, 4));
        // Ordinal order puts upper case first, as Python's sorted().
        Assert.Equal(["A_cls", "a_cls", "b_cls"], ds.ClassNames);
        Assert.Equal(6, ds.Count);
        Assert.Equal(new[] { 0, 1, 1, 2, 2, 2 }, Enumerable.Range(0, ds.Count).Select(ds.GetLabel));
        // os.walk order: the class folder's own files (sorted as strings: "10" before "2"), then the sub-folders.
        Assert.Equal(["x.PNG", "y.png", "z.jpg", "10.png", "2.png", "0.png"], Enumerable.Range(0, ds.Count).Select(i => Path.GetFileName(ds.FilePath(i))));
        Assert.Equal((3, 4, 4), (ds.Channels, ds.Height, ds.Width));

        var dst = new float[((IDataset)ds).SampleLength];
        for (int i = 0; i < ds.Count; i++)
        {
            Array.Fill(dst, float.NaN);
            var rng = SampleRandom.For(0, 0, i);
            Assert.Equal(ds.GetLabel(i), ds.Load(i, dst, ref rng));
            Assert.All(dst, v => Assert.True(float.IsFinite(v)));
        }
    }

    [Fact]
    public void Png_pixels_arrive_exactly_and_grey_becomes_rgb()
    {
        using var tmp = new TempFolder();
        const int W = 7, H = 5;
        var rgb = DataTestHelpers.Pixels(W, H, 3, 10);
        var grey = DataTestHelpers.Pixels(W, H, 1, 11);
        WritePng(tmp.Combine("c0", "rgb.png"), W, H, 3, 10);
        WritePng(tmp.Combine("c1", "grey.png"), W, H, 1, 11);
        // Resize to the source size is the identity: the floats are exactly ToTensor + Normalize of the PNG bytes.
        var ds = new ImageFolderDataset(tmp.Path, new Resize(W, H));
        var dst = new float[3 * W * H];
        var rng = default(SampleRandom);
        ds.Load(0, dst, ref rng);
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < W * H; i++)
                Assert.Equal(DataTestHelpers.Normalised(rgb[i * 3 + c], Normalization.ImageNet, c), dst[c * W * H + i], 5e-6);
        ds.Load(1, dst, ref rng);
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < W * H; i++)
                Assert.Equal(DataTestHelpers.Normalised(grey[i], Normalization.ImageNet, c), dst[c * W * H + i], 5e-6);
    }

    [Fact]
    public void Jpeg_decodes_close_to_what_was_encoded()
    {
        using var tmp = new TempFolder();
        const int W = 32, H = 24;
        var px = new byte[W * H * 3];
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
            {
                px[(y * W + x) * 3] = (byte)(x * 8);
                px[(y * W + x) * 3 + 1] = (byte)(y * 10);
                px[(y * W + x) * 3 + 2] = 128;
            }
        Directory.CreateDirectory(tmp.Combine("only"));
        ImageFile.SaveJpeg(tmp.Combine("only", "smooth.jpeg"), px, W, H, 3, quality: 95);
        var ds = new ImageFolderDataset(tmp.Path, new ImagePipeline(new Resize(W, H), Normalization.UnitRange(3)));
        var dst = new float[3 * W * H];
        var rng = default(SampleRandom);
        ds.Load(0, dst, ref rng);
        double err = 0;
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < W * H; i++) err = Math.Max(err, Math.Abs(dst[c * W * H + i] * 255 - px[i * 3 + c]));
        Assert.InRange(err, 0, 24);
    }

    [Fact]
    public void Empty_class_folder_is_a_typed_error_naming_it()
    {
        using var tmp = new TempFolder();
        WritePng(tmp.Combine("cats", "a.png"), 3, 3, 3, 1);
        Directory.CreateDirectory(tmp.Combine("dogs"));
        File.WriteAllText(tmp.Combine("dogs", "readme.txt"), "no images here");
        var ex = Assert.Throws<DatasetException>(() => new ImageFolderDataset(tmp.Path, new Resize(4, 4)));
        Assert.Equal(tmp.Combine("dogs"), ex.File);
        Assert.Contains("'dogs' holds no image files", ex.Message);
    }

    [Fact]
    public void Missing_root_or_no_class_folders_are_typed_errors()
    {
        using var tmp = new TempFolder();
        var missing = Assert.Throws<DatasetException>(() => new ImageFolderDataset(tmp.Combine("nope"), new Resize(4, 4)));
        Assert.Equal(tmp.Combine("nope"), missing.File);
        File.WriteAllText(tmp.Combine("loose.png"), "");
        var none = Assert.Throws<DatasetException>(() => new ImageFolderDataset(tmp.Path, new Resize(4, 4)));
        Assert.Contains("no class folders", none.Message);
        Assert.Throws<ArgumentException>(() => new ImageFolderDataset(tmp.Path, ImageTransform.None));
    }

    [Fact]
    public void Corrupt_and_truncated_images_fail_on_load_naming_the_file()
    {
        using var tmp = new TempFolder();
        Directory.CreateDirectory(tmp.Combine("k"));
        File.WriteAllBytes(tmp.Combine("k", "a_garbage.png"), DataTestHelpers.Pixels(100, 1, 1, 3));
        ImageFile.SaveJpeg(tmp.Combine("k", "b_whole.jpg"), DataTestHelpers.Pixels(64, 64, 3, 4), 64, 64, 3);
        var whole = File.ReadAllBytes(tmp.Combine("k", "b_whole.jpg"));
        File.WriteAllBytes(tmp.Combine("k", "c_truncated.jpg"), whole[..(whole.Length / 2)]);
        File.WriteAllBytes(tmp.Combine("k", "d_empty.png"), []);
        var ds = new ImageFolderDataset(tmp.Path, new Resize(8, 8));
        var dst = new float[3 * 8 * 8];
        var rng = default(SampleRandom);
        foreach (var (index, name, problem) in new[] { (0, "a_garbage.png", "not a decodable image"), (2, "c_truncated.jpg", "truncated"), (3, "d_empty.png", "empty") })
        {
            var ex = Assert.Throws<DatasetException>(() => { var r = rng; ds.Load(index, dst, ref r); });
            Assert.Equal(tmp.Combine("k", name), ex.File);
            Assert.Contains(problem, ex.Problem);
        }
        ds.Load(1, dst, ref rng);
    }

    private static string LabelmeRoot =>
        Environment.GetEnvironmentVariable("CRATEIL_LABELME_DIR") is { Length: > 0 } d ? d : "/usr/share/doc/labelme-examples/examples";

    [SkippableFact]
    public void Real_photos_decode_and_transform()
    {
        // Two 640×480 JPEG photos from Debian's labelme-examples (test.sh installs it), arranged as a 2-class folder.
        string photos = Path.Combine(LabelmeRoot, "classification", "data_annotated");
        bool present = File.Exists(Path.Combine(photos, "0001.jpg")) && File.Exists(Path.Combine(photos, "0002.jpg"));
        if (!present && Environment.GetEnvironmentVariable("CI") == "true")
            throw new InvalidOperationException($"labelme-examples not found under {LabelmeRoot}; test.sh installs it under CI");
        Skip.IfNot(present, $"labelme-examples not installed ({LabelmeRoot}); run test.sh as root or apt-get install labelme-examples");

        using var tmp = new TempFolder();
        Directory.CreateDirectory(tmp.Combine("first"));
        Directory.CreateDirectory(tmp.Combine("second"));
        File.Copy(Path.Combine(photos, "0001.jpg"), tmp.Combine("first", "0001.jpg"));
        File.Copy(Path.Combine(photos, "0002.jpg"), tmp.Combine("second", "0002.jpg"));
        byte[] rgba = [];
        var decoded = ImageFile.LoadRgb(tmp.Combine("first", "0001.jpg"), ref rgba);
        Assert.Equal((640, 480), (decoded.Width, decoded.Height));

        var n = Normalization.ImageNet;
        foreach (ImageTransform transform in new ImageTransform[] { new RandomResizedCrop(224), new ResizeCenterCrop(224) })
        {
            var ds = new ImageFolderDataset(tmp.Path, transform);
            var dst = new float[3 * 224 * 224];
            for (int i = 0; i < ds.Count; i++)
            {
                Array.Fill(dst, float.NaN);
                var rng = SampleRandom.For(4, 0, i);
                Assert.Equal(i, ds.Load(i, dst, ref rng));
                for (int c = 0; c < 3; c++)
                {
                    var plane = dst.AsSpan(c * 224 * 224, 224 * 224);
                    float lo = (float)((0 - n.Mean[c]) / n.Std[c]) - 1e-4f, hi = (float)((1 - n.Mean[c]) / n.Std[c]) + 1e-4f;
                    foreach (float v in plane) Assert.InRange(v, lo, hi);
                    // A photo, not a flat fill: the plane varies.
                    Assert.True(System.Numerics.Tensors.TensorPrimitives.Max(plane) - System.Numerics.Tensors.TensorPrimitives.Min(plane) > 1f);
                }
            }
        }
    }
}
