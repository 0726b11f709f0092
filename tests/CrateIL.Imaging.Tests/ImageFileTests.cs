using System.Buffers.Binary;
using System.IO.Compression;
using Xunit;
using Xunit.Abstractions;

namespace CrateIL.Imaging.Tests;

public sealed class ImageFileTests(ITestOutputHelper output) : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("crateil-imaging-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private const long AllocationLimit = 16L << 20;

    /// <summary>A PNG whose IHDR is valid and claims <paramref name="side"/>², followed by a tiny valid IDAT and IEND.</summary>
    private static byte[] ForgedPng(int side, byte colorType, byte bitDepth = 8, byte[]? palette = null)
    {
        using var ms = new MemoryStream();
        ms.Write([137, 80, 78, 71, 13, 10, 26, 10]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(ihdr, (uint)side);
        BinaryPrimitives.WriteUInt32BigEndian(ihdr.AsSpan(4), (uint)side);
        ihdr[8] = bitDepth;
        ihdr[9] = colorType;
        Chunk(ms, "IHDR", ihdr);
        if (palette is not null) Chunk(ms, "PLTE", palette);
        using (var body = new MemoryStream())
        {
            using (var z = new ZLibStream(body, CompressionLevel.Optimal, leaveOpen: true)) z.Write(new byte[200]);
            Chunk(ms, "IDAT", body.ToArray());
        }
        Chunk(ms, "IEND", []);
        return ms.ToArray();
    }

    private static void Chunk(Stream s, string type, byte[] data)
    {
        var head = new byte[8];
        BinaryPrimitives.WriteUInt32BigEndian(head, (uint)data.Length);
        System.Text.Encoding.ASCII.GetBytes(type, head.AsSpan(4));
        s.Write(head);
        s.Write(data);
        var crc = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(crc, Png.Crc32([.. head.AsSpan(4), .. data]));
        s.Write(crc);
    }

    private static (T Error, long Allocated) ThrowsAndAllocated<T>(Action action) where T : Exception
    {
        long before = GC.GetTotalAllocatedBytes(precise: true);
        var error = Assert.Throws<T>(action);
        return (error, GC.GetTotalAllocatedBytes(precise: true) - before);
    }

    [Fact]
    public void Png_header_claiming_16384_squared_in_a_few_bytes_is_refused_before_allocating()
    {
        string path = Path.Combine(dir, "forged.png");
        File.WriteAllBytes(path, ForgedPng(16384, colorType: 2));
        Assert.True(new FileInfo(path).Length < 200);

        var (error, allocated) = ThrowsAndAllocated<ImageFormatException>(() => ImageFile.LoadRgb(path));
        Assert.Equal(path, error.File);
        Assert.StartsWith(path + ": image size 16384×16384", error.Message);
        Assert.Contains("cannot hold", error.Problem);
        Assert.True(allocated < AllocationLimit, $"{allocated} bytes allocated");

        byte[] buffer = [];
        (error, allocated) = ThrowsAndAllocated<ImageFormatException>(() => ImageFile.LoadRgb(path, ref buffer));
        Assert.Contains("cannot hold", error.Problem);
        Assert.Empty(buffer);
        Assert.True(allocated < AllocationLimit, $"{allocated} bytes allocated");
    }

    [Fact]
    public void Forged_label_map_pngs_are_refused_by_the_indexed_reader_before_allocating()
    {
        // greyscale 8-bit: 268 MB of scanlines claimed by a few hundred bytes
        string grey = Path.Combine(dir, "grey.png");
        File.WriteAllBytes(grey, ForgedPng(16384, colorType: 0));
        var (error, allocated) = ThrowsAndAllocated<ImageFormatException>(() => Png.ReadIndexed(grey));
        Assert.Equal(grey, error.File);
        Assert.Contains("cannot hold", error.Problem);
        Assert.True(allocated < AllocationLimit, $"{allocated} bytes allocated");

        string palette = Path.Combine(dir, "palette.png");
        File.WriteAllBytes(palette, ForgedPng(16384, colorType: 3, palette: [0, 0, 0, 255, 255, 255]));
        (error, allocated) = ThrowsAndAllocated<ImageFormatException>(() => Png.ReadIndexed(palette, requirePalette: true));
        Assert.Contains("cannot hold", error.Problem);
        Assert.True(allocated < AllocationLimit, $"{allocated} bytes allocated");
    }

    [Fact]
    public void Jpeg_header_claiming_16384_squared_is_refused_before_allocating()
    {
        string small = Path.Combine(dir, "small.jpg");
        ImageFile.SaveJpeg(small, Gradient(64, 48));
        byte[] jpeg = File.ReadAllBytes(small);
        int sof = jpeg.AsSpan().IndexOf([(byte)0xFF, (byte)0xC0]);
        Assert.True(sof > 0, "baseline frame header");
        BinaryPrimitives.WriteUInt16BigEndian(jpeg.AsSpan(sof + 5), 16384); // height
        BinaryPrimitives.WriteUInt16BigEndian(jpeg.AsSpan(sof + 7), 16384); // width
        string path = Path.Combine(dir, "forged.jpg");
        File.WriteAllBytes(path, jpeg);

        var (error, allocated) = ThrowsAndAllocated<ImageFormatException>(() => ImageFile.LoadRgb(path));
        Assert.Equal(path, error.File);
        Assert.Contains("16384×16384", error.Problem);
        Assert.Contains("JPEG", error.Problem);
        Assert.True(allocated < AllocationLimit, $"{allocated} bytes allocated");
    }

    [Theory]
    [InlineData("flat.png")]
    [InlineData("flat.jpg")]
    public void Large_flat_images_near_the_compression_limit_still_decode(string name)
    {
        // a flat image is the best case for the encoders, so it sits closest to the size bound
        const int W = 3000, H = 2000;
        var image = new RgbImage(W, H);
        for (int i = 0; i < image.Data.Length; i += 3) (image.Data[i], image.Data[i + 1], image.Data[i + 2]) = ((byte)40, (byte)90, (byte)200);
        string path = Path.Combine(dir, name);
        if (name.EndsWith(".png")) ImageFile.SavePng(path, image);
        else ImageFile.SaveJpeg(path, image, quality: 75);
        long size = new FileInfo(path).Length;
        long needed = name.EndsWith(".png")
            ? (EncodedSizeBound.PngFilteredBytes(W, H, 24) - 4096) / EncodedSizeBound.DeflateMaxRatio
            : (long)W * H / EncodedSizeBound.JpegPixelsPerByte;
        output.WriteLine($"{name}: {size} bytes; the bound asks for at least about {needed}");
        var back = ImageFile.LoadRgb(path);
        Assert.Equal((W, H), (back.Width, back.Height));
        Assert.InRange(back.Data[3 * (W * H / 2) + 2], 195, 205);
    }

    [Fact]
    public void Buffer_decoding_reuses_the_callers_buffer_and_matches_the_image_decoding()
    {
        string a = Path.Combine(dir, "a.png"), b = Path.Combine(dir, "b.png");
        var ga = Gradient(37, 23);
        var gb = Gradient(23, 37);
        ImageFile.SavePng(a, ga);
        ImageFile.SavePng(b, gb);
        byte[] buffer = [];
        var view = ImageFile.LoadRgb(a, ref buffer);
        byte[] first = buffer;
        Assert.Equal((37, 23, 3), (view.Width, view.Height, view.Channels));
        Assert.Equal(ga.Data, RgbImage.CopyOf(view).Data);
        view = ImageFile.LoadRgb(b, ref buffer);
        Assert.Same(first, buffer);
        Assert.Equal(gb.Data, RgbImage.CopyOf(view).Data);
        Assert.Equal(gb.Data, ImageFile.LoadRgb(b).Data);
    }

    [Fact]
    public void Grey_pngs_decode_to_replicated_rgb()
    {
        string path = Path.Combine(dir, "grey.png");
        byte[] grey = [0, 50, 100, 150, 200, 250];
        ImageFile.SavePng(path, grey, 3, 2, channels: 1);
        var img = ImageFile.LoadRgb(path);
        for (int i = 0; i < 6; i++) Assert.Equal([grey[i], grey[i], grey[i]], img.Data[(3 * i)..(3 * i + 3)]);
    }

    [Fact]
    public void Empty_garbage_truncated_and_missing_files_are_refused_naming_the_file()
    {
        string empty = Path.Combine(dir, "empty.png"), garbage = Path.Combine(dir, "garbage.png"), cut = Path.Combine(dir, "cut.jpg");
        File.WriteAllBytes(empty, []);
        File.WriteAllText(garbage, "this is not an image");
        string whole = Path.Combine(dir, "whole.jpg");
        ImageFile.SaveJpeg(whole, Gradient(64, 64));
        byte[] bytes = File.ReadAllBytes(whole);
        File.WriteAllBytes(cut, bytes[..(bytes.Length / 2)]);
        foreach (var (path, problem) in new[] { (empty, "empty"), (garbage, "not a decodable image"), (cut, "truncated"), (Path.Combine(dir, "none.png"), "cannot read") })
        {
            var e = Assert.Throws<ImageFormatException>(() => ImageFile.LoadRgb(path));
            Assert.Equal(path, e.File);
            Assert.Contains(problem, e.Problem);
        }
    }

    private static RgbImage Gradient(int w, int h)
    {
        var img = new RgbImage(w, h);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                (img.Data[(y * w + x) * 3], img.Data[(y * w + x) * 3 + 1], img.Data[(y * w + x) * 3 + 2]) = ((byte)(x * 255 / w), (byte)(y * 255 / h), (byte)((x + y) * 3));
        return img;
    }
}
