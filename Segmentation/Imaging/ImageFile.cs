using System.Runtime.InteropServices;
using SkiaSharp;

namespace CrateIL.Segmentation.Imaging;

/// <summary>An image file that cannot be decoded or written; the message names the file and the problem.</summary>
public class ImageFormatException(string file, string message) : Exception($"{file}: {message}")
{
    public string File { get; } = file;
    public string Problem { get; } = message;
}

/// <summary>An 8-bit RGB image, row-major, channels interleaved (index = (y·W + x)·3 + c).</summary>
public sealed class RgbImage
{
    public int Width { get; }
    public int Height { get; }
    public byte[] Data { get; }

    public RgbImage(int width, int height, byte[]? data = null)
    {
        if (width <= 0 || height <= 0 || (long)width * height * 3 > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(width), $"image size {width}×{height} is not usable");
        Data = data ?? new byte[width * height * 3];
        if (Data.Length != width * height * 3)
            throw new ArgumentException($"{Data.Length} bytes for a {width}×{height} RGB image", nameof(data));
        Width = width;
        Height = height;
    }
}

/// <summary>
/// JPEG/PNG (and other Skia formats) reading and writing through SkiaSharp, whose JPEG decoding matches Pillow
/// (libjpeg-turbo) bit for bit. Broken files raise <see cref="ImageFormatException"/> instead of returning partial pixels.
/// </summary>
public static class ImageFile
{
    /// <summary>Decodes an image to RGB (alpha dropped, no colour-space conversion).</summary>
    public static RgbImage LoadRgb(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ImageFormatException(path, $"cannot read: {ex.Message}");
        }
        return DecodeRgb(bytes, path);
    }

    public static RgbImage DecodeRgb(byte[] bytes, string source)
    {
        using var stream = new MemoryStream(bytes, writable: false);
        using var codec = SKCodec.Create(stream, out var createResult);
        if (codec is null)
            throw new ImageFormatException(source, $"not a decodable image ({createResult})");
        var info = codec.Info;
        if (info.Width <= 0 || info.Height <= 0 || (long)info.Width * info.Height > Png.MaxPixels)
            throw new ImageFormatException(source, $"image size {info.Width}×{info.Height} is empty or too large");
        var rgbaInfo = new SKImageInfo(info.Width, info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var rgba = new byte[rgbaInfo.BytesSize];
        var handle = GCHandle.Alloc(rgba, GCHandleType.Pinned);
        SKCodecResult result;
        try
        {
            result = codec.GetPixels(rgbaInfo, handle.AddrOfPinnedObject());
        }
        finally
        {
            handle.Free();
        }
        if (result != SKCodecResult.Success)
            throw new ImageFormatException(source, result == SKCodecResult.IncompleteInput
                ? "truncated or incomplete image data"
                : $"decoding failed ({result})");
        return FromRgba(info.Width, info.Height, rgba);
    }

    /// <summary>Drops the alpha channel of interleaved RGBA8 pixels.</summary>
    internal static RgbImage FromRgba(int width, int height, ReadOnlySpan<byte> rgba)
    {
        var img = new RgbImage(width, height);
        for (int i = 0, n = width * height; i < n; i++)
        {
            img.Data[i * 3] = rgba[i * 4];
            img.Data[i * 3 + 1] = rgba[i * 4 + 1];
            img.Data[i * 3 + 2] = rgba[i * 4 + 2];
        }
        return img;
    }

    /// <summary>An opaque RGBA8 Skia bitmap holding the image, for drawing on or encoding; the caller disposes it.</summary>
    internal static SKBitmap ToBitmap(RgbImage image)
    {
        var info = new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        var bitmap = new SKBitmap(info);
        var rgba = new byte[info.BytesSize];
        for (int i = 0, n = image.Width * image.Height; i < n; i++)
        {
            rgba[i * 4] = image.Data[i * 3];
            rgba[i * 4 + 1] = image.Data[i * 3 + 1];
            rgba[i * 4 + 2] = image.Data[i * 3 + 2];
            rgba[i * 4 + 3] = 255;
        }
        Marshal.Copy(rgba, 0, bitmap.GetPixels(), rgba.Length);
        return bitmap;
    }

    /// <summary>Reads an RGBA8 Skia bitmap back into an RGB image.</summary>
    internal static RgbImage FromBitmap(SKBitmap bitmap)
    {
        if (bitmap.ColorType != SKColorType.Rgba8888 || bitmap.RowBytes != bitmap.Width * 4)
            throw new ArgumentException($"expected an unpadded Rgba8888 bitmap, got {bitmap.ColorType} with {bitmap.RowBytes} bytes a row", nameof(bitmap));
        var rgba = new byte[bitmap.Info.BytesSize];
        Marshal.Copy(bitmap.GetPixels(), rgba, 0, rgba.Length);
        return FromRgba(bitmap.Width, bitmap.Height, rgba);
    }

    public static void SavePng(string path, RgbImage image) => Save(path, image, SKEncodedImageFormat.Png, 100);

    /// <summary>Writes a JPEG with the given quality (1..100).</summary>
    public static void SaveJpeg(string path, RgbImage image, int quality = 90)
    {
        if (quality is < 1 or > 100) throw new ArgumentOutOfRangeException(nameof(quality), "JPEG quality must be 1..100");
        Save(path, image, SKEncodedImageFormat.Jpeg, quality);
    }

    private static void Save(string path, RgbImage image, SKEncodedImageFormat format, int quality)
    {
        using var bitmap = ToBitmap(image);
        using var encoded = bitmap.Encode(format, quality)
            ?? throw new ImageFormatException(path, $"SkiaSharp could not encode {format}");
        using var fs = File.Create(path);
        encoded.SaveTo(fs);
    }
}
