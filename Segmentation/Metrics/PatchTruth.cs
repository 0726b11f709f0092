using CrateIL.Imaging;

namespace CrateIL.Segmentation.Metrics;

/// <summary>
/// A binary object/background ground truth on the patch grid (row-major, patch t = r·w + c, the layout of
/// <see cref="Attention.AttentionMaps"/>), made from an exact pixel mask: a patch is foreground when the fraction of
/// its pixels inside the object (its <see cref="Coverage"/>) is at least <see cref="MinCoverage"/>.
/// Scoring attention on the grid it was computed on keeps the metric free of any upsampling choice.
/// </summary>
public sealed class PatchTruth
{
    /// <summary>A patch counts as object when at least half of its pixels are object pixels.</summary>
    public const double DefaultMinCoverage = 0.5;

    private readonly double[] _coverage;

    private PatchTruth(BinaryMask foreground, double[] coverage, double minCoverage)
    {
        Foreground = foreground;
        _coverage = coverage;
        GridHeight = foreground.Height;
        GridWidth = foreground.Width;
        MinCoverage = minCoverage;
        ForegroundCount = (int)foreground.Area;
    }

    public int GridHeight { get; }
    public int GridWidth { get; }
    public int Patches => GridHeight * GridWidth;

    /// <summary>The coverage a patch needs to be foreground.</summary>
    public double MinCoverage { get; }

    /// <summary>The object patches, on the grid. Shared, not copied: do not change it.</summary>
    public BinaryMask Foreground { get; }

    /// <summary>Per patch: the fraction of its pixels that are object pixels, in [0, 1].</summary>
    public ReadOnlySpan<double> Coverage => _coverage;

    public int ForegroundCount { get; }
    public int BackgroundCount => Patches - ForegroundCount;

    /// <summary>
    /// True when the object covers no patch or every patch: then there is nothing to separate, IoU against a class
    /// that fills or misses the grid says nothing about attention and AUC is undefined, so scores are NaN.
    /// </summary>
    public bool IsDegenerate => ForegroundCount == 0 || ForegroundCount == Patches;

    /// <summary>Two-class label map for <see cref="HeadwiseMiou"/>: 0 = background, 1 = object.</summary>
    public byte[] ToLabels()
    {
        return Foreground.Pixels.ToArray(); // 0/1 already
    }

    /// <summary>
    /// From an exact pixel mask whose height and width are multiples of the grid (each patch is a
    /// (height / gridHeight) × (width / gridWidth) block, as a ViT patchifies).
    /// </summary>
    public static PatchTruth FromMask(BinaryMask mask, int gridHeight, int gridWidth, double minCoverage = DefaultMinCoverage)
    {
        ArgumentNullException.ThrowIfNull(mask);
        int height = mask.Height, width = mask.Width;
        CheckGrid(height, width, gridHeight, gridWidth, minCoverage);
        int ph = height / gridHeight, pw = width / gridWidth;
        var inside = new int[gridHeight * gridWidth];
        var pixels = mask.Pixels;
        for (int y = 0; y < height; y++)
        {
            int rowBase = (y / ph) * gridWidth;
            var row = pixels.Slice(y * width, width);
            for (int x = 0; x < width; x++) inside[rowBase + x / pw] += row[x];
        }
        return FromCounts(inside, ph * pw, gridHeight, gridWidth, minCoverage);
    }

    /// <summary>From a patch-level mask (coverage 1 for object patches, 0 for the rest); the mask is copied.</summary>
    public static PatchTruth FromPatches(BinaryMask foreground)
    {
        ArgumentNullException.ThrowIfNull(foreground);
        var coverage = new double[foreground.Height * foreground.Width];
        for (int i = 0; i < coverage.Length; i++) coverage[i] = foreground.Pixels[i];
        return new PatchTruth(foreground.Clone(), coverage, DefaultMinCoverage);
    }

    private static PatchTruth FromCounts(int[] inside, int pixelsPerPatch, int gridHeight, int gridWidth, double minCoverage)
    {
        var coverage = new double[inside.Length];
        var foreground = new BinaryMask(gridHeight, gridWidth);
        var f = foreground.Pixels;
        for (int i = 0; i < inside.Length; i++)
        {
            coverage[i] = (double)inside[i] / pixelsPerPatch;
            f[i] = coverage[i] >= minCoverage ? (byte)1 : (byte)0;
        }
        return new PatchTruth(foreground, coverage, minCoverage);
    }

    private static void CheckGrid(int height, int width, int gridHeight, int gridWidth, double minCoverage)
    {
        if (gridHeight < 1 || gridWidth < 1) throw new ArgumentOutOfRangeException(nameof(gridHeight), $"grid {gridHeight}×{gridWidth} must be non-empty");
        if (height % gridHeight != 0 || width % gridWidth != 0)
            throw new ArgumentException($"image {height}×{width} is not a whole number of patches of a {gridHeight}×{gridWidth} grid; crop or resize it first");
        // 0 would make every patch object, whatever the mask; a coverage above 1 no patch can reach
        if (!(minCoverage > 0 && minCoverage <= 1))
            throw new ArgumentOutOfRangeException(nameof(minCoverage), minCoverage, "minimum coverage must be in (0, 1]");
    }
}
