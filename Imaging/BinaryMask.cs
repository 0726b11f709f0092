namespace CrateIL.Imaging;

/// <summary>
/// A binary mask of <see cref="Height"/> × <see cref="Width"/> pixels stored row-major (index = y·W + x), one byte per
/// pixel holding 0 or 1. Row-major is the image layout; COCO RLE walks the same pixels column-major, which the
/// segmentation library's RLE encoder and decoder take care of.
/// </summary>
public sealed class BinaryMask : IEquatable<BinaryMask>
{
    private readonly byte[] pixels;

    public int Height { get; }
    public int Width { get; }

    /// <summary>An all-zero mask.</summary>
    public BinaryMask(int height, int width)
    {
        CheckSize(height, width);
        Height = height;
        Width = width;
        pixels = new byte[(long)height * width];
    }

    /// <summary>A mask from row-major values; every non-zero value becomes 1.</summary>
    public BinaryMask(int height, int width, ReadOnlySpan<byte> rowMajor) : this(height, width)
    {
        if (rowMajor.Length != pixels.Length)
            throw new ArgumentException($"expected {pixels.Length} values for a {height}×{width} mask, got {rowMajor.Length}", nameof(rowMajor));
        for (int i = 0; i < pixels.Length; i++) pixels[i] = rowMajor[i] != 0 ? (byte)1 : (byte)0;
    }

    /// <summary>The mask of the pixels of <paramref name="labels"/> (row-major) that equal <paramref name="label"/>.</summary>
    public static BinaryMask FromLabels(int height, int width, ReadOnlySpan<byte> labels, byte label)
    {
        var m = new BinaryMask(height, width);
        if (labels.Length != m.pixels.Length)
            throw new ArgumentException($"expected {m.pixels.Length} labels for a {height}×{width} mask, got {labels.Length}", nameof(labels));
        for (int i = 0; i < labels.Length; i++) m.pixels[i] = labels[i] == label ? (byte)1 : (byte)0;
        return m;
    }

    private static void CheckSize(int height, int width)
    {
        if (height <= 0 || width <= 0)
            throw new ArgumentOutOfRangeException(nameof(height), $"mask size {height}×{width} must be positive");
        if ((long)height * width > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(height), $"mask size {height}×{width} exceeds {int.MaxValue} pixels");
    }

    /// <summary>Row-major pixels, 0 or 1 each. Writing values other than 0 and 1 breaks <see cref="Area"/> and RLE encoding.</summary>
    public Span<byte> Pixels => pixels;

    public bool this[int y, int x]
    {
        get => pixels[checked(y * Width + x)] != 0;
        set => pixels[checked(y * Width + x)] = value ? (byte)1 : (byte)0;
    }

    /// <summary>Number of foreground pixels.</summary>
    public long Area
    {
        get
        {
            long n = 0;
            foreach (byte b in pixels) n += b;
            return n;
        }
    }

    /// <summary>Sets every pixel inside the half-open rectangle [x0, x1) × [y0, y1) (clipped to the mask).</summary>
    public void FillRectangle(int x0, int y0, int x1, int y1)
    {
        x0 = Math.Max(0, x0); y0 = Math.Max(0, y0);
        x1 = Math.Min(Width, x1); y1 = Math.Min(Height, y1);
        for (int y = y0; y < y1; y++) pixels.AsSpan(y * Width + x0, Math.Max(0, x1 - x0)).Fill(1);
    }

    /// <summary>Number of pixels where both masks are set.</summary>
    public long IntersectionCount(BinaryMask other)
    {
        CheckSame(other);
        long n = 0;
        for (int i = 0; i < pixels.Length; i++) n += pixels[i] & other.pixels[i];
        return n;
    }

    /// <summary>Number of pixels where either mask is set.</summary>
    public long UnionCount(BinaryMask other)
    {
        CheckSame(other);
        long n = 0;
        for (int i = 0; i < pixels.Length; i++) n += pixels[i] | other.pixels[i];
        return n;
    }

    /// <summary>
    /// Intersection over union, |A∧B| / |A∨B| (TokenCut's metric.IoU); NaN when both are empty, so an empty pair never
    /// passes a "&gt; 0.5" or "&lt; 0.5" rule.
    /// </summary>
    public double Iou(BinaryMask other)
    {
        CheckSame(other);
        long inter = 0, union = 0;
        for (int i = 0; i < pixels.Length; i++)
        {
            inter += pixels[i] & other.pixels[i];
            union += pixels[i] | other.pixels[i];
        }
        return union == 0 ? double.NaN : (double)inter / union;
    }

    /// <summary>Adds <paramref name="other"/>'s pixels to this mask (in place).</summary>
    public void UnionWith(BinaryMask other)
    {
        CheckSame(other);
        for (int i = 0; i < pixels.Length; i++) pixels[i] |= other.pixels[i];
    }

    /// <summary>The union of equally sized masks, as a new mask.</summary>
    public static BinaryMask Union(IReadOnlyList<BinaryMask> masks)
    {
        if (masks.Count == 0) throw new ArgumentException("no masks to unite", nameof(masks));
        var u = new BinaryMask(masks[0].Height, masks[0].Width);
        foreach (var m in masks) u.UnionWith(m);
        return u;
    }

    /// <summary>Clears every pixel, so a mask can be rendered into again without allocating.</summary>
    public void Clear() => Array.Clear(pixels);

    /// <summary>Sets every pixel.</summary>
    public void SetAll() => Array.Fill(pixels, (byte)1);

    public BinaryMask Clone()
    {
        var m = new BinaryMask(Height, Width);
        pixels.CopyTo(m.pixels, 0);
        return m;
    }

    /// <summary>
    /// Nearest resize with PyTorch's legacy 'nearest' rule for an output size: src = floor(dst·in/out), computed in
    /// float32 as PyTorch does (scale = in/out, src = min(floor(dst·scale), in−1)). A patch-grid mask resized to the
    /// image size covers each patch's pixels.
    /// </summary>
    public BinaryMask ResizeNearest(int outHeight, int outWidth)
    {
        var dst = new BinaryMask(outHeight, outWidth);
        float sy = (float)Height / outHeight, sx = (float)Width / outWidth;
        var xs = new int[outWidth];
        for (int x = 0; x < outWidth; x++) xs[x] = Math.Min((int)MathF.Floor(x * sx), Width - 1);
        for (int y = 0; y < outHeight; y++)
        {
            int ys = Math.Min((int)MathF.Floor(y * sy), Height - 1);
            var srow = pixels.AsSpan(ys * Width, Width);
            var drow = dst.pixels.AsSpan(y * outWidth, outWidth);
            for (int x = 0; x < outWidth; x++) drow[x] = srow[xs[x]];
        }
        return dst;
    }

    /// <summary>Number of pixels where the two masks agree.</summary>
    public long AgreementCount(BinaryMask other)
    {
        CheckSame(other);
        long n = 0;
        for (int i = 0; i < pixels.Length; i++) n += pixels[i] == other.pixels[i] ? 1 : 0;
        return n;
    }

    private void CheckSame(BinaryMask other)
    {
        if (other.Height != Height || other.Width != Width)
            throw new ArgumentException($"mask sizes differ: {Height}×{Width} vs {other.Height}×{other.Width}", nameof(other));
    }

    public bool Equals(BinaryMask? other) =>
        other is not null && other.Height == Height && other.Width == Width && pixels.AsSpan().SequenceEqual(other.pixels);

    public override bool Equals(object? obj) => Equals(obj as BinaryMask);

    public override int GetHashCode() => HashCode.Combine(Height, Width, Area);

    public override string ToString() => $"BinaryMask {Height}×{Width}, area {Area}";
}
