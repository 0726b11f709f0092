namespace CrateIL.Segmentation.MaskCut;

/// <summary>A box in pixel (or patch) coordinates: [X0, X1) × [Y0, Y1), exclusive right/bottom edges.</summary>
public readonly record struct Box(int X0, int Y0, int X1, int Y1)
{
    public int Width => X1 - X0;
    public int Height => Y1 - Y0;

    /// <summary>COCO [x, y, w, h].</summary>
    public (int X, int Y, int W, int H) ToXywh() => (X0, Y0, X1 - X0, Y1 - Y0);
}

/// <summary>Binary-mask helpers on row-major [height, width] grids (scipy.ndimage semantics where noted).</summary>
public static class BinaryMasks
{
    /// <summary>
    /// 4-connected component labels (scipy.ndimage.label with its default cross structure): 0 = background,
    /// components numbered 1.. in raster order of their first pixel. Returns the number of components.
    /// </summary>
    public static int Label4(ReadOnlySpan<bool> mask, int height, int width, Span<int> labels)
    {
        Check(mask.Length, height, width, nameof(mask));
        if (labels.Length != mask.Length) throw new ArgumentException($"labels has {labels.Length} entries, mask has {mask.Length}", nameof(labels));
        labels.Clear();
        var stack = new int[mask.Length];
        int count = 0;
        for (int start = 0; start < mask.Length; start++)
        {
            if (!mask[start] || labels[start] != 0) continue;
            count++;
            int top = 0;
            stack[top++] = start;
            labels[start] = count;
            while (top > 0)
            {
                int p = stack[--top];
                int y = p / width, x = p - y * width;
                for (int k = 0; k < 4; k++)
                {
                    int q = k switch { 0 => x > 0 ? p - 1 : -1, 1 => x + 1 < width ? p + 1 : -1, 2 => y > 0 ? p - width : -1, _ => y + 1 < height ? p + width : -1 };
                    if (q >= 0 && mask[q] && labels[q] == 0) { labels[q] = count; stack[top++] = q; }
                }
            }
        }
        return count;
    }

    /// <summary>The 4-connected component of <paramref name="mask"/> that contains pixel <paramref name="seed"/> (empty if the seed is off).</summary>
    public static bool[] ComponentContaining(ReadOnlySpan<bool> mask, int height, int width, int seed)
    {
        Check(mask.Length, height, width, nameof(mask));
        if ((uint)seed >= (uint)mask.Length) throw new ArgumentOutOfRangeException(nameof(seed), seed, $"seed outside the {height}×{width} grid");
        var labels = new int[mask.Length];
        Label4(mask, height, width, labels);
        var result = new bool[mask.Length];
        int l = labels[seed];
        if (l == 0) return result;
        for (int i = 0; i < result.Length; i++) result[i] = labels[i] == l;
        return result;
    }

    /// <summary>
    /// scipy.ndimage.binary_fill_holes with the default (cross) structure: background pixels not 4-connected to
    /// the image border become foreground.
    /// </summary>
    public static bool[] FillHoles(ReadOnlySpan<bool> mask, int height, int width)
    {
        Check(mask.Length, height, width, nameof(mask));
        var outside = new bool[mask.Length];
        var stack = new int[mask.Length];
        int top = 0;
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                if (y != 0 && y != height - 1 && x != 0 && x != width - 1) continue;
                int p = y * width + x;
                if (!mask[p] && !outside[p]) { outside[p] = true; stack[top++] = p; }
            }
        while (top > 0)
        {
            int p = stack[--top];
            int y = p / width, x = p - y * width;
            for (int k = 0; k < 4; k++)
            {
                int q = k switch { 0 => x > 0 ? p - 1 : -1, 1 => x + 1 < width ? p + 1 : -1, 2 => y > 0 ? p - width : -1, _ => y + 1 < height ? p + width : -1 };
                if (q >= 0 && !mask[q] && !outside[q]) { outside[q] = true; stack[top++] = q; }
            }
        }
        var filled = new bool[mask.Length];
        for (int i = 0; i < filled.Length; i++) filled[i] = !outside[i];
        return filled;
    }

    /// <summary>
    /// IoU as TokenCut's metric.IoU: |A∧B| / |A∨B|; NaN when both are empty (and NaN compares false, so an
    /// empty pair never triggers a "&gt; 0.5" or "&lt; 0.5" rule).
    /// </summary>
    public static double Iou(ReadOnlySpan<bool> a, ReadOnlySpan<bool> b)
    {
        if (a.Length != b.Length) throw new ArgumentException($"mask lengths differ: {a.Length} vs {b.Length}");
        long inter = 0, union = 0;
        for (int i = 0; i < a.Length; i++)
        {
            if (a[i] & b[i]) inter++;
            if (a[i] | b[i]) union++;
        }
        return union == 0 ? double.NaN : (double)inter / union;
    }

    public static int Count(ReadOnlySpan<bool> mask)
    {
        int c = 0;
        foreach (bool b in mask) if (b) c++;
        return c;
    }

    /// <summary>The tight box around the foreground, or null when the mask is empty.</summary>
    public static Box? BoundingBox(ReadOnlySpan<bool> mask, int height, int width)
    {
        Check(mask.Length, height, width, nameof(mask));
        int x0 = int.MaxValue, y0 = int.MaxValue, x1 = -1, y1 = -1;
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                if (!mask[y * width + x]) continue;
                if (x < x0) x0 = x;
                if (x > x1) x1 = x;
                if (y < y0) y0 = y;
                if (y > y1) y1 = y;
            }
        return x1 < 0 ? null : new Box(x0, y0, x1 + 1, y1 + 1);
    }

    /// <summary>
    /// Nearest resize with PyTorch's legacy 'nearest' rule for an output size: src = floor(dst·in/out)
    /// (computed in float32 as PyTorch does: scale = in/out, src = min(floor(dst·scale), in−1)).
    /// </summary>
    public static T[] ResizeNearest<T>(ReadOnlySpan<T> src, int height, int width, int outHeight, int outWidth)
    {
        Check(src.Length, height, width, nameof(src));
        if (outHeight < 1 || outWidth < 1) throw new ArgumentOutOfRangeException(nameof(outHeight), $"output size {outHeight}×{outWidth} must be positive");
        var dst = new T[(long)outHeight * outWidth];
        float sy = (float)height / outHeight, sx = (float)width / outWidth;
        var xs = new int[outWidth];
        for (int x = 0; x < outWidth; x++) xs[x] = Math.Min((int)MathF.Floor(x * sx), width - 1);
        for (int y = 0; y < outHeight; y++)
        {
            int ys = Math.Min((int)MathF.Floor(y * sy), height - 1);
            var srow = src.Slice(ys * width, width);
            var drow = dst.AsSpan(y * outWidth, outWidth);
            for (int x = 0; x < outWidth; x++) drow[x] = srow[xs[x]];
        }
        return dst;
    }

    internal static void Check(int length, int height, int width, string name)
    {
        if (height < 1 || width < 1) throw new ArgumentOutOfRangeException(name, $"grid {height}×{width} must be positive");
        if (length != (long)height * width) throw new ArgumentException($"{name} has {length} entries, a {height}×{width} grid needs {(long)height * width}", name);
    }
}
