using System.Globalization;
using CrateIL.Segmentation.Attention;
using CrateIL.Segmentation.Imaging;
using CrateIL.Segmentation.Rendering;

namespace CrateIL.Cli.Images;

/// <summary>
/// The pictures of <c>crate attention</c> for one image: heat maps (inferno, bilinearly upsampled from the patch grid,
/// min→max per map, blended over the photo, with a colour bar) and masks (cyan fill and outline over the photo).
/// </summary>
internal static class AttentionPictures
{
    private const double HeatAlpha = 0.6, MaskAlpha = 0.45;

    /// <summary>Smallest longer side of the full-size pictures: small (generated) images are enlarged to it.</summary>
    public const int FullSide = 448;

    /// <summary>
    /// The figure: a row of heat maps (the mean, then each head) and a row of the same maps' masks, the photo first,
    /// captions with each map's peak relative to uniform attention and each mask's share of the patches.
    /// </summary>
    public static ImageGrid Figure(string title, RgbImage visible, AttentionMaps heads, IReadOnlyList<int> headIndices,
        AttentionMaps mean, bool[] meanMask, bool[][] headMasks, AttentionRule rule)
    {
        var headers = new List<string> { "photo", "mean" };
        headers.AddRange(headIndices.Select(h => string.Create(CultureInfo.InvariantCulture, $"head {h}")));
        var grid = new ImageGrid(headers)
        {
            Title = title,
            ColorBar = Colormap.Inferno,
            Footnote = $"each heat map scaled min→max on its own; masks: {rule.Describe()}",
        };
        var tile = ImageFigures.Display(visible);
        int thickness = ImageFigures.OutlineThickness(tile, heads.Width);
        var heat = new List<GridCell?> { new(tile), Heat(tile, mean.Head(0), mean) };
        var masks = new List<GridCell?> { null, Mask(tile, meanMask, mean, thickness) };
        for (int k = 0; k < heads.Heads; k++)
        {
            heat.Add(Heat(tile, heads.Head(k), heads));
            masks.Add(Mask(tile, headMasks[k], heads, thickness));
        }
        grid.AddRow("attention", heat);
        grid.AddRow("mask", masks);
        return grid;
    }

    /// <summary>The mean map over the photo at (at least) <see cref="FullSide"/>, with a colour bar and the map's value range.</summary>
    public static ImageGrid Mean(string title, RgbImage visible, AttentionMaps mean)
    {
        var photo = Full(visible);
        var map = mean.Head(0);
        float lo = float.PositiveInfinity, hi = float.NegativeInfinity;
        foreach (float v in map) { lo = Math.Min(lo, v); hi = Math.Max(hi, v); }
        return new ImageGrid([title])
        {
            ColorBar = Colormap.Inferno,
            Footnote = string.Create(CultureInfo.InvariantCulture,
                $"attention per patch {lo:G3} (min) to {hi:G3} (max); uniform would be {1.0 / mean.Tokens:G3}"),
        }.AddRow("", new GridCell(Overlays.Heatmap(photo, map, mean.Height, mean.Width, HeatAlpha, Colormap.Inferno)));
    }

    /// <summary>The mask over the photo at (at least) <see cref="FullSide"/>: cyan fill and a solid outline.</summary>
    public static RgbImage MaskOverlay(RgbImage visible, bool[] mask, int gridHeight, int gridWidth)
    {
        var photo = Full(visible);
        return Overlays.Masks(photo, [mask], gridHeight, gridWidth, MaskAlpha, ImageFigures.OutlineThickness(photo, gridWidth));
    }

    /// <summary>The photo enlarged (sharp pixels) when its longer side is under <see cref="FullSide"/>, else as it is.</summary>
    public static RgbImage Full(RgbImage visible) =>
        Math.Max(visible.Width, visible.Height) < FullSide ? Tiles.Image(visible, FullSide) : visible;

    public static double Fraction(bool[] mask) => mask.Count(m => m) / (double)mask.Length;

    private static GridCell Heat(RgbImage tile, ReadOnlySpan<float> map, AttentionMaps maps)
    {
        float peak = float.NegativeInfinity;
        foreach (float v in map) peak = Math.Max(peak, v);
        return new GridCell(Overlays.Heatmap(tile, map, maps.Height, maps.Width, HeatAlpha, Colormap.Inferno),
            string.Create(CultureInfo.InvariantCulture, $"peak {peak * maps.Tokens:0.0}× uniform"));
    }

    private static GridCell Mask(RgbImage tile, bool[] mask, AttentionMaps maps, int thickness) =>
        new(Overlays.Masks(tile, [mask], maps.Height, maps.Width, MaskAlpha, thickness),
            string.Create(CultureInfo.InvariantCulture, $"{Fraction(mask) * 100:0}% of patches"));
}
