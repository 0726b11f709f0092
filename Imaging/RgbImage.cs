namespace CrateIL.Imaging;

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

    /// <summary>The pixels as a view, to feed the data pipeline (or anything that reads views) without a copy.</summary>
    public ImageView AsView() => ImageView.Interleaved(Data, Width, Height, 3);

    /// <summary>A copy of a view's pixels; a grey view is replicated into the three channels.</summary>
    public static RgbImage CopyOf(in ImageView view)
    {
        var image = new RgbImage(view.Width, view.Height);
        var data = image.Data;
        if (view.Channels == 3 && view.ChannelStride == 1)
        {
            // interleaved RGB or RGBA rows, what the decoder gives: copy each pixel's three bytes
            for (int y = 0, o = 0; y < view.Height; y++)
            {
                var row = view.Data.Slice(y * view.RowStride);
                for (int x = 0, i = 0; x < view.Width; x++, o += 3, i += view.PixelStride)
                {
                    data[o] = row[i];
                    data[o + 1] = row[i + 1];
                    data[o + 2] = row[i + 2];
                }
            }
            return image;
        }
        for (int y = 0, o = 0; y < view.Height; y++)
        for (int x = 0; x < view.Width; x++, o += 3)
        {
            if (view.Channels == 1)
            {
                data[o] = data[o + 1] = data[o + 2] = view[x, y, 0];
            }
            else
            {
                data[o] = view[x, y, 0];
                data[o + 1] = view[x, y, 1];
                data[o + 2] = view[x, y, 2];
            }
        }
        return image;
    }
}
