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

    private readonly bool[] _foreground;
    private readonly double[] _coverage;

    private PatchTruth(bool[] foreground, double[] coverage, int gridHeight, int gridWidth, double minCoverage)
    {
        _foreground = foreground;
        _coverage = coverage;
        GridHeight = gridHeight;
        GridWidth = gridWidth;
        MinCoverage = minCoverage;
        foreach (bool f in foreground) if (f) ForegroundCount++;
    }

    public int GridHeight { get; }
    public int GridWidth { get; }
    public int Patches => GridHeight * GridWidth;

    /// <summary>The coverage a patch needs to be foreground.</summary>
    public double MinCoverage { get; }

    /// <summary>Per patch: whether it is object.</summary>
    public ReadOnlySpan<bool> Foreground => _foreground;

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
        var labels = new byte[Patches];
        for (int i = 0; i < labels.Length; i++) labels[i] = _foreground[i] ? (byte)1 : (byte)0;
        return labels;
    }

    /// <summary>
    /// From a row-major pixel mask of <paramref name="height"/> × <paramref name="width"/> pixels; both must be
    /// multiples of the grid (each patch is a (height / gridHeight) × (width / gridWidth) block, as a ViT patchifies).
    /// </summary>
    public static PatchTruth FromPixels(ReadOnlySpan<bool> pixels, int height, int width, int gridHeight, int gridWidth,
        double minCoverage = DefaultMinCoverage)
    {
        if (height < 1 || width < 1) throw new ArgumentOutOfRangeException(nameof(height), $"image {height}×{width} must be non-empty");
        if (pixels.Length != (long)height * width)
            throw new ArgumentException($"{pixels.Length} pixels do not make a {height}×{width} mask", nameof(pixels));
        CheckGrid(height, width, gridHeight, gridWidth, minCoverage);
        int ph = height / gridHeight, pw = width / gridWidth;
        var inside = new int[gridHeight * gridWidth];
        for (int y = 0; y < height; y++)
        {
            int rowBase = (y / ph) * gridWidth;
            for (int x = 0; x < width; x++)
                if (pixels[y * width + x]) inside[rowBase + x / pw]++;
        }
        return FromCounts(inside, ph * pw, gridHeight, gridWidth, minCoverage);
    }

    /// <summary>From a <see cref="BinaryMask"/> (height and width multiples of the grid).</summary>
    public static PatchTruth FromMask(BinaryMask mask, int gridHeight, int gridWidth, double minCoverage = DefaultMinCoverage)
    {
        ArgumentNullException.ThrowIfNull(mask);
        var pixels = new bool[mask.Pixels.Length];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = mask.Pixels[i] != 0;
        return FromPixels(pixels, mask.Height, mask.Width, gridHeight, gridWidth, minCoverage);
    }

    /// <summary>From a patch-level mask (coverage 1 for object patches, 0 for the rest).</summary>
    public static PatchTruth FromPatches(ReadOnlySpan<bool> foreground, int gridHeight, int gridWidth)
    {
        if (gridHeight < 1 || gridWidth < 1) throw new ArgumentOutOfRangeException(nameof(gridHeight), $"grid {gridHeight}×{gridWidth} must be non-empty");
        if (foreground.Length != gridHeight * gridWidth)
            throw new ArgumentException($"{foreground.Length} patches do not make a {gridHeight}×{gridWidth} grid", nameof(foreground));
        var inside = new int[foreground.Length];
        for (int i = 0; i < inside.Length; i++) inside[i] = foreground[i] ? 1 : 0;
        return FromCounts(inside, 1, gridHeight, gridWidth, DefaultMinCoverage);
    }

    private static PatchTruth FromCounts(int[] inside, int pixelsPerPatch, int gridHeight, int gridWidth, double minCoverage)
    {
        var coverage = new double[inside.Length];
        var foreground = new bool[inside.Length];
        for (int i = 0; i < inside.Length; i++)
        {
            coverage[i] = (double)inside[i] / pixelsPerPatch;
            foreground[i] = coverage[i] >= minCoverage;
        }
        return new PatchTruth(foreground, coverage, gridHeight, gridWidth, minCoverage);
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
