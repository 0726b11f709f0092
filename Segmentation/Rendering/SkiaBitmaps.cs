using System.Runtime.InteropServices;
using CrateIL.Imaging;
using SkiaSharp;

namespace CrateIL.Segmentation.Rendering;

/// <summary>Copies between <see cref="RgbImage"/> and the Skia bitmaps that figures are drawn on.</summary>
internal static class SkiaBitmaps
{
    /// <summary>An opaque RGBA8 Skia bitmap holding the image, for drawing on or encoding; the caller disposes it.</summary>
    public static SKBitmap ToBitmap(RgbImage image)
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
    public static RgbImage FromBitmap(SKBitmap bitmap)
    {
        if (bitmap.ColorType != SKColorType.Rgba8888 || bitmap.RowBytes != bitmap.Width * 4)
            throw new ArgumentException($"expected an unpadded Rgba8888 bitmap, got {bitmap.ColorType} with {bitmap.RowBytes} bytes a row", nameof(bitmap));
        var rgba = new byte[bitmap.Info.BytesSize];
        Marshal.Copy(bitmap.GetPixels(), rgba, 0, rgba.Length);
        return RgbImage.CopyOf(ImageView.Interleaved(rgba, bitmap.Width, bitmap.Height, 3, pixelStride: 4));
    }
}
