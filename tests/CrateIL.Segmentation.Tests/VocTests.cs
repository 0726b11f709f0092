using CrateIL.Imaging;
using CrateIL.Segmentation.Voc;
using Xunit;

namespace CrateIL.Segmentation.Tests;

public sealed class VocTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("crateil-voc-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private static string Png(string name) => CocoFixtures.Path(Path.Combine("png", name));

    private static int Pattern(int x, int y, int n) => (x * 3 + y * 5) % n;

    [Theory]
    [InlineData("palette1.png", 2)]
    [InlineData("palette2.png", 4)]
    [InlineData("palette4.png", 16)]
    [InlineData("palette8.png", 256)]
    public void Reads_palette_indices_at_every_bit_depth(string file, int n)
    {
        // written by Pillow 9.4 with bits = 1, 2, 4, 8
        var img = Imaging.Png.ReadIndexed(Png(file), requirePalette: true);
        Assert.Equal((13, 7), (img.Width, img.Height));
        for (int y = 0; y < 7; y++)
            for (int x = 0; x < 13; x++) Assert.Equal(Pattern(x, y, n), img[y, x]);
        Assert.NotNull(img.Palette);
        Assert.Equal((byte)(7 % 256), img.Palette![3]);
    }

    [Fact]
    public void Reads_greyscale_and_adam7_interlaced_images()
    {
        var g = Imaging.Png.ReadIndexed(Png("grey8.png"));
        Assert.Null(g.Palette);
        for (int y = 0; y < 7; y++) for (int x = 0; x < 13; x++) Assert.Equal(Pattern(x, y, 256) * 17 % 256, g[y, x]);
        var i = Imaging.Png.ReadIndexed(Png("interlaced8.png"), requirePalette: true);
        for (int y = 0; y < 7; y++) for (int x = 0; x < 13; x++) Assert.Equal(Pattern(x, y, 256) % 16, i[y, x]);
    }

    [Fact]
    public void Voc_colormap_has_the_standard_entries()
    {
        Assert.Equal(((byte)0, (byte)0, (byte)0), VocColormap.Color(0));
        Assert.Equal(((byte)128, (byte)0, (byte)0), VocColormap.Color(1));
        Assert.Equal(((byte)0, (byte)128, (byte)0), VocColormap.Color(2));
        Assert.Equal(((byte)192, (byte)128, (byte)128), VocColormap.Color(15)); // person
        Assert.Equal(((byte)0, (byte)64, (byte)128), VocColormap.Color(20));    // tv/monitor
        Assert.Equal(((byte)224, (byte)224, (byte)192), VocColormap.Color(255)); // void
        for (int i = 0; i < 256; i++)
        {
            var (r, g, b) = VocColormap.Color(i);
            Assert.Equal(i, VocColormap.IndexOf(r, g, b));
        }
        Assert.Equal(-1, VocColormap.IndexOf(1, 2, 3));
    }

    [Fact]
    public void Mask_write_read_round_trip_keeps_indices_and_palette()
    {
        var labels = new byte[37 * 23];
        for (int k = 0; k < labels.Length; k++) labels[k] = (byte)(k % 23 == 0 ? 255 : k % 21);
        var m = new VocMask(37, 23, labels);
        string path = Path.Combine(dir, "m.png");
        m.Save(path);
        var back = VocMask.Load(path);
        Assert.Equal(labels, back.Labels);
        Assert.Equal(new byte[] { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 255 }, back.DistinctLabels());
        var raw = Imaging.Png.ReadIndexed(path);
        Assert.Equal(VocColormap.Palette.ToArray(), raw.Palette);
        // a general decoder sees the VOC colours: SkiaSharp expands the palette
        var rgb = ImageFile.LoadRgb(path);
        Assert.Equal(new byte[] { 224, 224, 192 }, rgb.Data[..3]); // pixel 0 holds 255 = void
        Assert.Equal(new byte[] { 128, 0, 0 }, rgb.Data[3..6]);
    }

    [Fact]
    public void Rgb_and_greyscale_pngs_are_refused_where_a_palette_is_required()
    {
        var ex = Assert.Throws<ImageFormatException>(() => VocMask.Load(Png("rgb.png")));
        Assert.Contains("rgb.png", ex.Message);
        Assert.Contains("colour type 2 (RGB) is not a palette image", ex.Message);
        var ex2 = Assert.Throws<ImageFormatException>(() => VocMask.Load(Png("grey8.png")));
        Assert.Contains("greyscale PNG where a palette PNG is required", ex2.Message);
    }

    [Fact]
    public void Truncated_bad_crc_and_non_png_files_are_refused_with_the_file_name()
    {
        byte[] good = File.ReadAllBytes(Png("palette8.png"));
        string truncated = Path.Combine(dir, "truncated.png");
        File.WriteAllBytes(truncated, good[..(good.Length - 30)]);
        var t = Assert.Throws<ImageFormatException>(() => Imaging.Png.ReadIndexed(truncated));
        Assert.StartsWith(truncated + ": truncated", t.Message);

        string crc = Path.Combine(dir, "crc.png");
        var bad = (byte[])good.Clone();
        bad[50] ^= 0x01; // inside the PLTE data
        File.WriteAllBytes(crc, bad);
        var c = Assert.Throws<ImageFormatException>(() => Imaging.Png.ReadIndexed(crc));
        Assert.Contains("crc.png: bad CRC in chunk PLTE", c.Message);

        string text = Path.Combine(dir, "text.png");
        File.WriteAllText(text, "not an image at all");
        Assert.Contains("bad signature", Assert.Throws<ImageFormatException>(() => Imaging.Png.ReadIndexed(text)).Message);

        // a header that claims a huge image is refused before any allocation
        var huge = (byte[])good.Clone();
        huge[16] = 0x7f; // width high byte
        FixCrc(huge, 12, 13);
        string hugePath = Path.Combine(dir, "huge.png");
        File.WriteAllBytes(hugePath, huge);
        Assert.Contains("larger than", Assert.Throws<ImageFormatException>(() => Imaging.Png.ReadIndexed(hugePath)).Message);

        // corrupt compressed data with a valid CRC
        var z = (byte[])good.Clone();
        int idat = IndexOf(z, "IDAT"u8);
        int len = (z[idat - 4] << 24) | (z[idat - 3] << 16) | (z[idat - 2] << 8) | z[idat - 1];
        for (int k = idat + 6; k < idat + 4 + len; k++) z[k] = 0xff;
        FixCrc(z, idat, len);
        string zPath = Path.Combine(dir, "zlib.png");
        File.WriteAllBytes(zPath, z);
        var ze = Assert.Throws<ImageFormatException>(() => Imaging.Png.ReadIndexed(zPath));
        Assert.Contains("zlib.png: ", ze.Message);
    }

    [Fact]
    public void Truncated_jpeg_is_refused_by_the_image_reader()
    {
        var img = new RgbImage(64, 48);
        for (int k = 0; k < img.Data.Length; k++) img.Data[k] = (byte)(k * 7);
        string path = Path.Combine(dir, "a.jpg");
        ImageFile.SaveJpeg(path, img, 90);
        var back = ImageFile.LoadRgb(path);
        Assert.Equal((64, 48), (back.Width, back.Height));
        byte[] bytes = File.ReadAllBytes(path);
        string cut = Path.Combine(dir, "cut.jpg");
        File.WriteAllBytes(cut, bytes[..(bytes.Length / 2)]);
        var ex = Assert.Throws<ImageFormatException>(() => ImageFile.LoadRgb(cut));
        Assert.Contains("cut.jpg", ex.Message);
        string png = Path.Combine(dir, "a.png");
        ImageFile.SavePng(png, img);
        Assert.Equal(img.Data, ImageFile.LoadRgb(png).Data);
    }

    [Fact]
    public void Voc_layout_with_image_sets_is_read_and_checked()
    {
        foreach (string d in new[] { "JPEGImages", "SegmentationClass", "SegmentationObject", "ImageSets/Segmentation" })
            Directory.CreateDirectory(Path.Combine(dir, d));
        var rgb = new RgbImage(5, 4);
        foreach (string id in new[] { "2007_000001", "2007_000002" })
        {
            ImageFile.SaveJpeg(Path.Combine(dir, "JPEGImages", id + ".jpg"), rgb);
            new VocMask(5, 4, Enumerable.Range(0, 20).Select(k => (byte)(k == 3 ? 255 : k % 3)).ToArray())
                .Save(Path.Combine(dir, "SegmentationClass", id + ".png"));
        }
        File.WriteAllLines(Path.Combine(dir, "ImageSets", "Segmentation", "val.txt"), ["2007_000002", "", "2007_000001"]);
        var ds = VocDataset.Open(dir, "val");
        Assert.Equal(["2007_000002", "2007_000001"], ds.Samples.Select(s => s.Id));
        Assert.Null(ds.Samples[0].ObjectMaskPath);
        Assert.Equal(255, ds.Samples[0].LoadClassMask()[0, 3]);
        Assert.Equal((5, 4), (ds.Samples[1].LoadImage().Width, ds.Samples[1].LoadImage().Height));
        Assert.Equal(2, VocDataset.Open(dir).Samples.Count);

        File.WriteAllLines(Path.Combine(dir, "ImageSets", "Segmentation", "train.txt"), ["2007_000009"]);
        var ex = Assert.Throws<VocFormatException>(() => VocDataset.Open(dir, "train"));
        Assert.Contains("train.txt: line 1: image", ex.Message);
        Assert.Contains("does not exist", Assert.Throws<VocFormatException>(() => VocDataset.Open(dir, "test")).Message);
        Assert.Throws<VocFormatException>(() => VocDataset.Open(Path.Combine(dir, "nope")));
    }

    private static int IndexOf(byte[] data, ReadOnlySpan<byte> what) => data.AsSpan().IndexOf(what);

    private static void FixCrc(byte[] png, int typeOffset, int dataLength)
    {
        uint crc = Imaging.Png.Crc32(png.AsSpan(typeOffset, 4 + dataLength));
        int at = typeOffset + 4 + dataLength;
        png[at] = (byte)(crc >> 24); png[at + 1] = (byte)(crc >> 16); png[at + 2] = (byte)(crc >> 8); png[at + 3] = (byte)crc;
    }
}
