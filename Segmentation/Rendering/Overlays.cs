using CrateIL.Segmentation.Attention;
using CrateIL.Imaging;

namespace CrateIL.Segmentation.Rendering;

/// <summary>A perceptually uniform colour map sampled at evenly spaced anchors, linearly interpolated.</summary>
public sealed class Colormap
{
    private readonly byte[] _anchors; // RGB triples

    private Colormap(byte[] anchors) => _anchors = anchors;

    /// <summary>Viridis (matplotlib's default), 9 anchors.</summary>
    public static Colormap Viridis { get; } = new([
        68, 1, 84, 71, 44, 122, 59, 81, 139, 44, 113, 142, 33, 144, 141, 39, 173, 129, 92, 200, 99, 170, 220, 50, 253, 231, 37]);

    /// <summary>Inferno, 9 anchors: black → purple → orange → yellow, good on photos.</summary>
    public static Colormap Inferno { get; } = new([
        0, 0, 4, 31, 12, 72, 85, 15, 109, 136, 34, 106, 186, 54, 85, 227, 89, 51, 249, 140, 10, 249, 201, 50, 252, 255, 164]);

    /// <summary>The colour for t in [0, 1] (clamped).</summary>
    public (byte R, byte G, byte B) Map(double t)
    {
        int n = _anchors.Length / 3;
        t = double.IsNaN(t) ? 0 : Math.Clamp(t, 0, 1);
        double pos = t * (n - 1);
        int i = Math.Min((int)pos, n - 2);
        double f = pos - i;
        byte Lerp(int c) => (byte)Math.Round(_anchors[i * 3 + c] * (1 - f) + _anchors[(i + 1) * 3 + c] * f);
        return (Lerp(0), Lerp(1), Lerp(2));
    }
}

/// <summary>
/// Renders what the segmentation code produces onto images: attention heat maps, binary masks, PCA colour maps.
/// Maps on the patch grid are upsampled to the image (bilinear for heat maps, nearest for masks and PCA).
/// </summary>
public static class Overlays
{
    /// <summary>
    /// Blends a min–max normalised heat map (grid <paramref name="gridHeight"/>×<paramref name="gridWidth"/>) over
    /// the image: out = (1 − α)·image + α·colormap(map).
    /// </summary>
    public static RgbImage Heatmap(RgbImage image, ReadOnlySpan<float> map, int gridHeight, int gridWidth, double alpha = 0.6, Colormap? colormap = null)
    {
        CheckGrid(map.Length, gridHeight, gridWidth);
        if (alpha is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(alpha), alpha, "alpha must be in [0, 1]");
        colormap ??= Colormap.Inferno;
        var up = Resample.Bilinear(map, gridHeight, gridWidth, image.Height, image.Width);
        float lo = float.PositiveInfinity, hi = float.NegativeInfinity;
        foreach (var v in up) { if (v < lo) lo = v; if (v > hi) hi = v; }
        double range = hi > lo ? hi - lo : 1;
        var outImg = new RgbImage(image.Width, image.Height);
        for (int p = 0; p < up.Length; p++)
        {
            var (r, g, b) = colormap.Map((up[p] - lo) / range);
            Blend(image.Data, outImg.Data, p, r, g, b, alpha);
        }
        return outImg;
    }

    /// <summary>Tints the pixels of a binary mask (on the patch grid or at image size) with a colour.</summary>
    public static RgbImage Mask(RgbImage image, BinaryMask mask, (byte R, byte G, byte B) color, double alpha = 0.5)
    {
        // The same nearest-neighbour upsampling as Outline, so a fill and its outline cover the same pixels.
        var inside = mask.ResizeNearest(image.Height, image.Width).Pixels;
        var outImg = new RgbImage(image.Width, image.Height, (byte[])image.Data.Clone());
        for (int p = 0; p < inside.Length; p++)
            if (inside[p] != 0) Blend(image.Data, outImg.Data, p, color.R, color.G, color.B, alpha);
        return outImg;
    }

    /// <summary>An RGB8 grid (e.g. <see cref="Pca.PcaImageMap.Rgb"/>) scaled up by <paramref name="scale"/> with nearest neighbours.</summary>
    public static RgbImage Grid(ReadOnlySpan<byte> rgb, int gridHeight, int gridWidth, int scale = 8)
    {
        if (rgb.Length != gridHeight * gridWidth * 3) throw new ArgumentException($"{rgb.Length} bytes for a {gridHeight}×{gridWidth} RGB grid");
        if (scale < 1) throw new ArgumentOutOfRangeException(nameof(scale));
        var img = new RgbImage(gridWidth * scale, gridHeight * scale);
        for (int y = 0; y < img.Height; y++)
            for (int x = 0; x < img.Width; x++)
            {
                int src = ((y / scale) * gridWidth + x / scale) * 3, dst = (y * img.Width + x) * 3;
                img.Data[dst] = rgb[src]; img.Data[dst + 1] = rgb[src + 1]; img.Data[dst + 2] = rgb[src + 2];
            }
        return img;
    }

    /// <summary>
    /// Colours for drawing several masks on one image, in order: saturated and far apart in hue so that neighbouring
    /// masks stay distinguishable over photos and over each other (cyan, magenta, yellow, lime, orange, blue, red, white).
    /// </summary>
    public static IReadOnlyList<(byte R, byte G, byte B)> MaskColors { get; } =
    [
        (0, 220, 255), (255, 60, 200), (255, 225, 0), (90, 255, 60),
        (255, 140, 0), (60, 110, 255), (255, 40, 40), (255, 255, 255),
    ];

    /// <summary>The image enlarged <paramref name="factor"/> times with nearest neighbours (pixels become blocks).</summary>
    public static RgbImage Upscale(RgbImage image, int factor) => Grid(image.Data, image.Height, image.Width, factor);

    /// <summary>
    /// Paints the inner boundary of a binary mask (on the patch grid or at image size, upsampled with nearest
    /// neighbours) in a solid colour: every masked pixel within <paramref name="thickness"/> pixels (Chebyshev) of an
    /// unmasked pixel or of the image edge. Pixels outside the mask are never touched, so an outline never hides
    /// what lies next to the object.
    /// </summary>
    public static RgbImage Outline(RgbImage image, BinaryMask mask, (byte R, byte G, byte B) color, int thickness = 1)
    {
        if (thickness < 1) throw new ArgumentOutOfRangeException(nameof(thickness), thickness, "outline thickness must be at least 1 pixel");
        int w = image.Width, h = image.Height;
        var inside = mask.ResizeNearest(h, w);
        var outImg = new RgbImage(w, h, (byte[])image.Data.Clone());
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                if (!inside[y, x] || !NearOutside(inside, w, h, x, y, thickness)) continue;
                int o = (y * w + x) * 3;
                outImg.Data[o] = color.R; outImg.Data[o + 1] = color.G; outImg.Data[o + 2] = color.B;
            }
        return outImg;
    }

    /// <summary>
    /// Several masks on one image: each filled with its colour from <see cref="MaskColors"/> (cycled) at
    /// <paramref name="alpha"/> and outlined in the same colour at full strength, later masks drawn over earlier ones.
    /// </summary>
    public static RgbImage Masks(RgbImage image, IReadOnlyList<BinaryMask> masks, double alpha = 0.5, int outlineThickness = 1)
    {
        var outImg = image;
        for (int k = 0; k < masks.Count; k++)
        {
            var color = MaskColors[k % MaskColors.Count];
            outImg = Mask(outImg, masks[k], color, alpha);
            if (outlineThickness > 0) outImg = Outline(outImg, masks[k], color, outlineThickness);
        }
        return outImg;
    }

    private static bool NearOutside(BinaryMask inside, int w, int h, int x, int y, int radius)
    {
        for (int dy = -radius; dy <= radius; dy++)
            for (int dx = -radius; dx <= radius; dx++)
            {
                int nx = x + dx, ny = y + dy;
                if (nx < 0 || ny < 0 || nx >= w || ny >= h || !inside[ny, nx]) return true;
            }
        return false;
    }

    private static void Blend(byte[] src, byte[] dst, int pixel, byte r, byte g, byte b, double alpha)
    {
        int o = pixel * 3;
        dst[o] = (byte)Math.Round((1 - alpha) * src[o] + alpha * r);
        dst[o + 1] = (byte)Math.Round((1 - alpha) * src[o + 1] + alpha * g);
        dst[o + 2] = (byte)Math.Round((1 - alpha) * src[o + 2] + alpha * b);
    }

    private static void CheckGrid(int length, int h, int w)
    {
        if (h <= 0 || w <= 0 || length != h * w) throw new ArgumentException($"map has {length} values, grid {h}×{w} needs {h * w}");
    }
}
