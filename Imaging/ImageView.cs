namespace CrateIL.Imaging;

/// <summary>
/// A read-only view of 8-bit pixels with arbitrary strides, so that interleaved RGB(A) rows (HWC), planar CIFAR records
/// (CHW) and grey idx images are all read in place. Byte of (x, y, c) = Data[y·RowStride + x·PixelStride + c·ChannelStride].
/// </summary>
public readonly ref struct ImageView
{
    public ReadOnlySpan<byte> Data { get; }
    public int Width { get; }
    public int Height { get; }
    public int Channels { get; }
    public int RowStride { get; }
    public int PixelStride { get; }
    public int ChannelStride { get; }

    public ImageView(ReadOnlySpan<byte> data, int width, int height, int channels, int rowStride, int pixelStride, int channelStride)
    {
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width), $"image size {width}×{height} is empty");
        if (channels is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(channels), $"{channels} channels: only 1 (grey) or 3 (RGB) are read");
        if (rowStride < 0 || pixelStride < 0 || channelStride < 0) throw new ArgumentOutOfRangeException(nameof(rowStride), "strides must be non-negative");
        long last = (long)(height - 1) * rowStride + (long)(width - 1) * pixelStride + (long)(channels - 1) * channelStride;
        if (last >= data.Length)
            throw new ArgumentException($"{data.Length} bytes do not hold a {width}×{height}×{channels} image with these strides", nameof(data));
        Data = data;
        Width = width;
        Height = height;
        Channels = channels;
        RowStride = rowStride;
        PixelStride = pixelStride;
        ChannelStride = channelStride;
    }

    /// <summary>Interleaved rows (HWC), <paramref name="pixelStride"/> bytes per pixel (3 for RGB, 4 for RGBA read as RGB).</summary>
    public static ImageView Interleaved(ReadOnlySpan<byte> data, int width, int height, int channels, int pixelStride = 0)
    {
        int ps = pixelStride == 0 ? channels : pixelStride;
        return new ImageView(data, width, height, channels, width * ps, ps, 1);
    }

    /// <summary>Planar channels (CHW), as CIFAR stores them.</summary>
    public static ImageView Planar(ReadOnlySpan<byte> data, int width, int height, int channels) =>
        new(data, width, height, channels, width, 1, width * height);

    public byte this[int x, int y, int c] => Data[y * RowStride + x * PixelStride + c * ChannelStride];
}
