using CrateIL.Segmentation.Imaging;
using CrateIL.Segmentation.Rendering;

namespace CrateIL.Cli.Images;

/// <summary>
/// Sizing rules for the pictures the image commands write: figure tiles have a fixed display size whatever the photo's
/// resolution (large photos are box-filtered down, small generated images enlarged with sharp pixels), and outlines
/// grow with the picture so they stay visible.
/// </summary>
internal static class ImageFigures
{
    /// <summary>Longer side of a tile in a multi-tile figure.</summary>
    public const int TileSide = 224;

    /// <summary>
    /// The photo at about <paramref name="side"/> pixels on its longer side: box-filtered down when larger, enlarged by an
    /// integer factor with nearest neighbours when smaller (a 32-px image becomes 224 px of sharp blocks).
    /// </summary>
    public static RgbImage Display(RgbImage photo, int side = TileSide)
    {
        ArgumentNullException.ThrowIfNull(photo);
        int longer = Math.Max(photo.Width, photo.Height);
        if (longer < side) return Tiles.Image(photo, side);
        if (longer == side) return photo;
        int w = Math.Max(1, (int)Math.Round((double)photo.Width * side / longer));
        int h = Math.Max(1, (int)Math.Round((double)photo.Height * side / longer));
        return BoxDownscale(photo, w, h);
    }

    /// <summary>
    /// An outline width that reads at the picture's size (2 px up to 400 px, then one more per 200 px), but at most a
    /// quarter of a patch cell when the mask is on a <paramref name="gridWidth"/>-wide patch grid, so fine grids keep
    /// their fill visible between outlines.
    /// </summary>
    public static int OutlineThickness(RgbImage image, int gridWidth = 0)
    {
        int thickness = Math.Max(2, Math.Max(image.Width, image.Height) / 200);
        if (gridWidth > 0) thickness = Math.Min(thickness, image.Width / gridWidth / 4);
        return Math.Max(1, thickness);
    }

    /// <summary>Area average over each output pixel's source box (integer box edges), for display only.</summary>
    private static RgbImage BoxDownscale(RgbImage src, int width, int height)
    {
        var dst = new RgbImage(width, height);
        for (int oy = 0; oy < height; oy++)
        {
            int y0 = (int)((long)oy * src.Height / height), y1 = Math.Max(y0 + 1, (int)((long)(oy + 1) * src.Height / height));
            for (int ox = 0; ox < width; ox++)
            {
                int x0 = (int)((long)ox * src.Width / width), x1 = Math.Max(x0 + 1, (int)((long)(ox + 1) * src.Width / width));
                int r = 0, g = 0, b = 0, n = (y1 - y0) * (x1 - x0);
                for (int y = y0; y < y1; y++)
                    for (int x = x0; x < x1; x++)
                    {
                        int o = (y * src.Width + x) * 3;
                        r += src.Data[o]; g += src.Data[o + 1]; b += src.Data[o + 2];
                    }
                int d = (oy * width + ox) * 3;
                dst.Data[d] = (byte)((r + n / 2) / n);
                dst.Data[d + 1] = (byte)((g + n / 2) / n);
                dst.Data[d + 2] = (byte)((b + n / 2) / n);
            }
        }
        return dst;
    }
}
