using CrateIL.Imaging;

namespace CrateIL.Segmentation.Rendering;

/// <summary>
/// Report tiles from plain data: a small image (e.g. 32×32) is first enlarged with nearest neighbours to at least
/// <c>minSide</c> pixels, and only then are maps, fills and outlines drawn on it, so outlines stay one display pixel
/// thin and heat maps are interpolated at display resolution instead of showing blocky upscaled blends.
/// </summary>
public static class Tiles
{
    /// <summary>Default length of a tile's longer side: 32-px images become 128 px (4×).</summary>
    public const int DefaultMinSide = 128;

    /// <summary>Outline colour of the reference (true) mask on heat maps; the first of <see cref="Overlays.MaskColors"/>.</summary>
    public static (byte R, byte G, byte B) ReferenceOutlineColor => Overlays.MaskColors[0];

    /// <summary>The smallest integer factor that makes the longer side of a <paramref name="width"/>×<paramref name="height"/> image at least <paramref name="minSide"/>.</summary>
    public static int ScaleFor(int width, int height, int minSide = DefaultMinSide)
    {
        if (width < 1 || height < 1) throw new ArgumentOutOfRangeException(nameof(width), $"size {width}×{height} must be positive");
        int longer = Math.Max(width, height);
        return Math.Max(1, (minSide + longer - 1) / longer);
    }

    /// <summary>The image enlarged (nearest neighbours) to at least <paramref name="minSide"/> on its longer side.</summary>
    public static RgbImage Image(RgbImage image, int minSide = DefaultMinSide) =>
        Overlays.Upscale(image, ScaleFor(image.Width, image.Height, minSide));

    /// <summary>
    /// A [<paramref name="gridHeight"/>, <paramref name="gridWidth"/>] map (e.g. one head's CLS attention) upsampled
    /// bilinearly to the enlarged image, min–max normalised per map and blended over it; with <paramref name="contour"/>
    /// the mask's inner outline (e.g. the true object; any size, on the patch grid or at image size) is drawn on top in
    /// <see cref="ReferenceOutlineColor"/>.
    /// </summary>
    public static RgbImage Heatmap(RgbImage image, ReadOnlySpan<float> map, int gridHeight, int gridWidth,
        BinaryMask? contour = null, int minSide = DefaultMinSide, double alpha = 0.6, Colormap? colormap = null)
    {
        var tile = Overlays.Heatmap(Image(image, minSide), map, gridHeight, gridWidth, alpha, colormap);
        return contour is null ? tile : Overlays.Outline(tile, contour, ReferenceOutlineColor);
    }

    /// <summary>
    /// The enlarged image with each mask (pixels or patches) filled at <paramref name="alpha"/> and outlined, in the
    /// colours of <see cref="Overlays.MaskColors"/>.
    /// </summary>
    public static RgbImage Masks(RgbImage image, IReadOnlyList<BinaryMask> masks, int minSide = DefaultMinSide, double alpha = 0.5) =>
        Overlays.Masks(Image(image, minSide), masks, alpha);

    /// <summary>One mask over the enlarged image (see <see cref="Masks"/>).</summary>
    public static RgbImage Mask(RgbImage image, BinaryMask mask, int minSide = DefaultMinSide, double alpha = 0.5) =>
        Masks(image, [mask], minSide, alpha);

    /// <summary>Per-patch RGB bytes [h·w·3] (e.g. <see cref="Pca.PcaImageMap.Rgb"/>) as blocks, at least <paramref name="minSide"/> on the longer side.</summary>
    public static RgbImage Pca(ReadOnlySpan<byte> rgb, int gridHeight, int gridWidth, int minSide = DefaultMinSide) =>
        Overlays.Grid(rgb, gridHeight, gridWidth, ScaleFor(gridWidth, gridHeight, minSide));
}
