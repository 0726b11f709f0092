using System.Runtime.InteropServices;
using SkiaSharp;

namespace CrateIL.Crate.Data;

/// <summary>
/// PNG/JPEG (and the other formats Skia reads) through SkiaSharp. Decoding yields unpremultiplied RGBA8888 without
/// colour-space conversion, read as RGB with alpha dropped (what PIL's convert("RGB") gives torchvision's ImageFolder);
/// Skia's JPEG decoding is libjpeg-turbo's, bit-identical to Pillow. Truncated or corrupt files raise
/// <see cref="DatasetException"/> instead of yielding partial pixels.
/// </summary>
public static class ImageCodec
{
    /// <summary>Largest image accepted, in pixels (guards against absurd headers).</summary>
    public const long MaxPixels = 1L << 28;

    /// <summary>Reads and decodes a file into <paramref name="rgba"/> (grown when too small); returns a 3-channel view of it.</summary>
    public static ImageView DecodeFile(string path, ref byte[] rgba)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new DatasetException(path, $"cannot read the image: {ex.Message}", ex);
        }
        return Decode(bytes, path, ref rgba);
    }

    /// <summary>Decodes encoded image bytes into <paramref name="rgba"/>; <paramref name="source"/> names them in errors.</summary>
    public static ImageView Decode(byte[] encoded, string source, ref byte[] rgba)
    {
        var (w, h) = DecodeRgba(encoded, source, ref rgba);
        return ImageView.Interleaved(rgba.AsSpan(0, w * h * 4), w, h, 3, pixelStride: 4);
    }

    private static (int Width, int Height) DecodeRgba(byte[] encoded, string source, ref byte[] rgba)
    {
        if (encoded.Length == 0) throw new DatasetException(source, "the image file is empty");
        using var stream = new MemoryStream(encoded, writable: false);
        using var codec = SKCodec.Create(stream, out var createResult);
        if (codec is null) throw new DatasetException(source, $"not a decodable image ({createResult})");
        var info = codec.Info;
        if (info.Width <= 0 || info.Height <= 0 || (long)info.Width * info.Height > MaxPixels)
            throw new DatasetException(source, $"image size {info.Width}×{info.Height} is empty or too large");
        var target = new SKImageInfo(info.Width, info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        int bytes = info.Width * info.Height * 4;
        if (rgba.Length < bytes) rgba = new byte[bytes];
        SKCodecResult result;
        unsafe
        {
            fixed (byte* p = rgba) result = codec.GetPixels(target, (IntPtr)p);
        }
        if (result != SKCodecResult.Success)
            throw new DatasetException(source, result == SKCodecResult.IncompleteInput
                ? "truncated or incomplete image data"
                : $"decoding failed ({result})");
        return (info.Width, info.Height);
    }

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
        using var encoded = bitmap.Encode(format, quality) ?? throw new DatasetException(path, $"SkiaSharp could not encode {format}");
        try
        {
            using var fs = File.Create(path);
            encoded.SaveTo(fs);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new DatasetException(path, $"cannot write the image: {ex.Message}", ex);
        }
    }
}
