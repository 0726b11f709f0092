using System.Buffers.Binary;
using System.Runtime.InteropServices;
using SkiaSharp;

namespace CrateIL.Imaging;

/// <summary>
/// JPEG/PNG (and the other formats Skia reads) through SkiaSharp. Decoding yields unpremultiplied RGBA8888 without
/// colour-space conversion, read as RGB with alpha dropped (what PIL's convert("RGB") gives torchvision's ImageFolder);
/// Skia's JPEG decoding is libjpeg-turbo's, bit-identical to Pillow. Truncated, corrupt or hostile files raise
/// <see cref="ImageFormatException"/> instead of yielding partial pixels.
/// </summary>
/// <remarks>
/// Two ways to decode the same way: into a new <see cref="RgbImage"/>, or into a caller-owned RGBA buffer that is reused
/// from image to image (the data loader's hot path), read through an <see cref="ImageView"/>.
/// </remarks>
public static class ImageFile
{
    /// <summary>Largest image accepted, in pixels (16384²): a 1 GiB RGBA buffer.</summary>
    public const long MaxPixels = 1L << 28;

    /// <summary>Reads and decodes an image file to RGB (alpha dropped).</summary>
    public static RgbImage LoadRgb(string path) => DecodeRgb(ReadFile(path), path);

    /// <summary>
    /// Reads and decodes an image file into <paramref name="rgba"/> (replaced by a larger array when too small) and returns
    /// a 3-channel view of it; the view is valid until the buffer is decoded into again.
    /// </summary>
    public static ImageView LoadRgb(string path, scoped ref byte[] rgba) => DecodeRgb(ReadFile(path), path, ref rgba);

    /// <summary>Decodes encoded image bytes to RGB; <paramref name="source"/> names them in errors.</summary>
    public static RgbImage DecodeRgb(byte[] encoded, string source)
    {
        byte[] rgba = [];
        return RgbImage.CopyOf(DecodeRgb(encoded, source, ref rgba));
    }

    /// <summary>Decodes encoded image bytes into <paramref name="rgba"/> (grown when too small); returns a 3-channel view of it.</summary>
    public static ImageView DecodeRgb(byte[] encoded, string source, scoped ref byte[] rgba)
    {
        var (w, h) = DecodeRgba(encoded, source, ref rgba);
        return ImageView.Interleaved(rgba.AsSpan(0, w * h * 4), w, h, 3, pixelStride: 4);
    }

    private static byte[] ReadFile(string path)
    {
        try
        {
            return File.ReadAllBytes(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ImageFormatException(path, $"cannot read the image: {ex.Message}", ex);
        }
    }

    private static (int Width, int Height) DecodeRgba(byte[] encoded, string source, scoped ref byte[] rgba)
    {
        if (encoded.Length == 0) throw new ImageFormatException(source, "the image file is empty");
        using var stream = new MemoryStream(encoded, writable: false);
        using var codec = SKCodec.Create(stream, out var createResult);
        if (codec is null) throw new ImageFormatException(source, $"not a decodable image ({createResult})");
        var info = codec.Info;
        if (info.Width <= 0 || info.Height <= 0 || (long)info.Width * info.Height > MaxPixels)
            throw new ImageFormatException(source, $"image size {info.Width}×{info.Height} is empty or larger than {MaxPixels} pixels");
        if (EncodedSizeBound.Problem(codec.EncodedFormat, encoded, info.Width, info.Height) is { } tooSmall)
            throw new ImageFormatException(source, tooSmall);
        var target = new SKImageInfo(info.Width, info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        int bytes = info.Width * info.Height * 4;
        if (rgba.Length < bytes) rgba = new byte[bytes];
        SKCodecResult result;
        unsafe
        {
            fixed (byte* p = rgba) result = codec.GetPixels(target, (IntPtr)p);
        }
        if (result != SKCodecResult.Success)
            throw new ImageFormatException(source, result == SKCodecResult.IncompleteInput
                ? "truncated or incomplete image data"
                : $"decoding failed ({result})");
        return (info.Width, info.Height);
    }

    public static void SavePng(string path, RgbImage image) => SavePng(path, image.Data, image.Width, image.Height, 3);

    /// <summary>Writes a JPEG with the given quality (1..100).</summary>
    public static void SaveJpeg(string path, RgbImage image, int quality = 90) =>
        SaveJpeg(path, image.Data, image.Width, image.Height, 3, quality);

    /// <summary>Writes interleaved 8-bit pixels (1 = grey, 3 = RGB, 4 = RGBA channels) as PNG.</summary>
    public static void SavePng(string path, ReadOnlySpan<byte> pixels, int width, int height, int channels) =>
        Save(path, pixels, width, height, channels, SKEncodedImageFormat.Png, 100);

    /// <summary>Writes interleaved 8-bit pixels as JPEG with quality 1..100 (alpha dropped).</summary>
    public static void SaveJpeg(string path, ReadOnlySpan<byte> pixels, int width, int height, int channels, int quality = 90)
    {
        if (quality is < 1 or > 100) throw new ArgumentOutOfRangeException(nameof(quality), $"JPEG quality {quality} must be 1..100");
        Save(path, pixels, width, height, channels, SKEncodedImageFormat.Jpeg, quality);
    }

    private static void Save(string path, ReadOnlySpan<byte> pixels, int width, int height, int channels,
        SKEncodedImageFormat format, int quality)
    {
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width), $"image size {width}×{height} is empty");
        if (channels is not (1 or 3 or 4)) throw new ArgumentOutOfRangeException(nameof(channels), $"{channels} channels: 1, 3 or 4 are written");
        if (pixels.Length < width * height * channels)
            throw new ArgumentException($"{pixels.Length} bytes do not hold a {width}×{height}×{channels} image", nameof(pixels));
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, channels == 4 ? SKAlphaType.Unpremul : SKAlphaType.Opaque);
        using var bitmap = new SKBitmap(info);
        var rgba = new byte[width * height * 4];
        for (int i = 0, n = width * height; i < n; i++)
        {
            if (channels == 1)
            {
                rgba[4 * i] = rgba[4 * i + 1] = rgba[4 * i + 2] = pixels[i];
                rgba[4 * i + 3] = 255;
            }
            else
            {
                rgba[4 * i] = pixels[i * channels];
                rgba[4 * i + 1] = pixels[i * channels + 1];
                rgba[4 * i + 2] = pixels[i * channels + 2];
                rgba[4 * i + 3] = channels == 4 ? pixels[i * channels + 3] : (byte)255;
            }
        }
        Marshal.Copy(rgba, 0, bitmap.GetPixels(), rgba.Length);
        using var encoded = bitmap.Encode(format, quality) ?? throw new ImageFormatException(path, $"SkiaSharp could not encode {format}");
        try
        {
            using var fs = File.Create(path);
            encoded.SaveTo(fs);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ImageFormatException(path, $"cannot write the image: {ex.Message}", ex);
        }
    }
}

/// <summary>
/// Whether an encoded file is large enough to hold the image its header claims, checked before the pixel buffer is
/// allocated: a 300-byte PNG that claims 16384² would otherwise cost a 1 GiB buffer before the missing data is noticed.
/// The bounds are the formats' own limits, so no intact file is refused.
/// </summary>
internal static class EncodedSizeBound
{
    /// <summary>Deflate's largest expansion: a 258-byte match costs at least two bits (1-bit length and distance codes).</summary>
    public const long DeflateMaxRatio = 1032;

    /// <summary>Allowance for the zlib header, block headers and the literal a run of matches starts from.</summary>
    private const long DeflateSlack = 4096;

    /// <summary>
    /// Pixels one byte of Huffman-coded JPEG data can cover: every 8×8 block of the full-resolution component costs at
    /// least one bit (a 1-bit DC code; progressive AC scans may skip blocks with end-of-band runs, the DC scan cannot).
    /// </summary>
    public const long JpegPixelsPerByte = 8 * 64;

    /// <summary>Why <paramref name="encoded"/> cannot hold a <paramref name="width"/>×<paramref name="height"/> image, or null when it can (or the format has no useful bound).</summary>
    public static string? Problem(SKEncodedImageFormat format, ReadOnlySpan<byte> encoded, int width, int height)
    {
        switch (format)
        {
            case SKEncodedImageFormat.Png:
                if (PngBitsPerPixel(encoded) is not { } bits) return null;
                long raw = PngFilteredBytes(width, height, bits);
                return DeflateCanHold(encoded.Length, raw)
                    ? null
                    : $"image size {width}×{height} claimed by the header needs {raw} bytes of image data; {encoded.Length} bytes of PNG cannot hold them (truncated or forged header)";
            case SKEncodedImageFormat.Jpeg:
                // Arithmetic-coded JPEGs can spend far less than a bit a block; only Huffman coding has this bound.
                if (JpegIsHuffmanCoded(encoded) != true) return null;
                long pixels = (long)width * height;
                return pixels <= encoded.Length * JpegPixelsPerByte + 64 * 64
                    ? null
                    : $"image size {width}×{height} claimed by the header needs at least {pixels / JpegPixelsPerByte} bytes of JPEG data; the file has {encoded.Length} (truncated or forged header)";
            default:
                // GIF, WebP, BMP, ICO...: lossless WebP can code a flat image in a few bytes whatever its size, so only MaxPixels applies.
                return null;
        }
    }

    /// <summary>Whether <paramref name="compressed"/> bytes of deflate data can expand to <paramref name="raw"/> bytes.</summary>
    public static bool DeflateCanHold(long compressed, long raw) => raw <= compressed * DeflateMaxRatio + DeflateSlack;

    /// <summary>Bytes of filtered scanlines in a non-interlaced PNG (one filter byte a row); interlacing only adds to it.</summary>
    public static long PngFilteredBytes(long width, long height, int bitsPerPixel) => height * (1 + (width * bitsPerPixel + 7) / 8);

    /// <summary>Bits per pixel from a PNG's IHDR (bit depth × samples), or null when the header is not where the format puts it.</summary>
    private static int? PngBitsPerPixel(ReadOnlySpan<byte> png)
    {
        if (png.Length < 33 || BinaryPrimitives.ReadUInt32BigEndian(png[8..]) != 13 || !png.Slice(12, 4).SequenceEqual("IHDR"u8))
            return null;
        int depth = png[24];
        int samples = png[25] switch { 0 => 1, 2 => 3, 3 => 1, 4 => 2, 6 => 4, _ => 0 };
        return samples == 0 || depth == 0 ? null : depth * samples;
    }

    /// <summary>True for a Huffman-coded frame, false for an arithmetic-coded one, null when no frame header precedes the scan data.</summary>
    private static bool? JpegIsHuffmanCoded(ReadOnlySpan<byte> jpeg)
    {
        int pos = 2; // after SOI
        while (pos + 4 <= jpeg.Length)
        {
            if (jpeg[pos] != 0xFF) return null;
            byte marker = jpeg[pos + 1];
            if (marker == 0xFF) { pos++; continue; }                        // fill byte
            if (marker is 0x01 or (>= 0xD0 and <= 0xD7)) { pos += 2; continue; } // markers without a segment
            switch (marker)
            {
                case 0xC0 or 0xC1 or 0xC2 or 0xC3 or 0xC5 or 0xC6 or 0xC7: return true;
                case 0xC9 or 0xCA or 0xCB or 0xCD or 0xCE or 0xCF: return false;
                case 0xDA or 0xD9: return null;                              // scan or end before any frame header
            }
            pos += 2 + BinaryPrimitives.ReadUInt16BigEndian(jpeg[(pos + 2)..]);
        }
        return null;
    }
}
