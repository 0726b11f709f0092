using System.Globalization;
using CrateIL.Segmentation.Imaging;
using CrateIL.Segmentation.MaskCut;
using CrateIL.Segmentation.Pca;
using CrateIL.Segmentation.Rendering;

namespace CrateIL.Cli.Images;

/// <summary>
/// The pictures of <c>crate pca</c> for one image: the first component as a heat map, the foreground it selects, the
/// paper's RGB map of components 1–3 of the foreground tokens (background black), and that map laid over the photo.
/// </summary>
internal static class PcaPictures
{
    /// <summary>
    /// The figure. The first component is shown oriented so that the foreground side is bright (its sign is arbitrary;
    /// with <paramref name="sign"/> <see cref="ForegroundSign.Negative"/> the map is drawn as 1 − component).
    /// </summary>
    public static ImageGrid Figure(string title, string footnote, RgbImage visible, PcaImageMap map, ForegroundSign sign, int gridHeight, int gridWidth)
    {
        var first = sign == ForegroundSign.Negative ? map.FirstComponent.Select(v => 1 - v).ToArray() : map.FirstComponent;
        var tile = ImageFigures.Display(visible);
        var grid = new ImageGrid(["photo", "1st component", "foreground", "components 1–3 (RGB)", "RGB over photo"])
        {
            Title = title,
            Footnote = footnote,
            ColorBar = Colormap.Viridis,
        };
        int fg = map.Foreground.Count(f => f);
        grid.AddRow("", [
            new GridCell(tile),
            new GridCell(Overlays.Heatmap(tile, first, gridHeight, gridWidth, 0.7, Colormap.Viridis), "foreground side bright"),
            new GridCell(Overlays.Masks(tile, [map.Foreground], gridHeight, gridWidth, 0.45, ImageFigures.OutlineThickness(tile, gridWidth)),
                string.Create(CultureInfo.InvariantCulture, $"{fg * 100.0 / map.Foreground.Length:0}% of patches")),
            new GridCell(Rgb(map.Rgb, gridHeight, gridWidth, tile.Width, tile.Height)),
            new GridCell(OverPhoto(tile, map, gridHeight, gridWidth)),
        ]);
        return grid;
    }

    /// <summary>The RGB map at <paramref name="width"/>×<paramref name="height"/>, nearest neighbour (each patch a flat block).</summary>
    public static RgbImage Rgb(byte[] rgb, int gridHeight, int gridWidth, int width, int height)
    {
        var img = new RgbImage(width, height);
        for (int y = 0; y < height; y++)
        {
            int gy = Math.Min(gridHeight - 1, y * gridHeight / height);
            for (int x = 0; x < width; x++)
            {
                int gx = Math.Min(gridWidth - 1, x * gridWidth / width);
                int s = (gy * gridWidth + gx) * 3, d = (y * width + x) * 3;
                img.Data[d] = rgb[s]; img.Data[d + 1] = rgb[s + 1]; img.Data[d + 2] = rgb[s + 2];
            }
        }
        return img;
    }

    /// <summary>The RGB map blended (α 0.65) over the foreground of the photo; the background dimmed to a third.</summary>
    public static RgbImage OverPhoto(RgbImage photo, PcaImageMap map, int gridHeight, int gridWidth)
    {
        var colours = Rgb(map.Rgb, gridHeight, gridWidth, photo.Width, photo.Height);
        var inside = BinaryMasks.ResizeNearest(map.Foreground, gridHeight, gridWidth, photo.Height, photo.Width);
        var result = new RgbImage(photo.Width, photo.Height);
        for (int p = 0; p < inside.Length; p++)
            for (int c = 0; c < 3; c++)
            {
                int o = p * 3 + c;
                result.Data[o] = inside[p]
                    ? (byte)Math.Round(0.35 * photo.Data[o] + 0.65 * colours.Data[o])
                    : (byte)(photo.Data[o] / 3);
            }
        return result;
    }
}
