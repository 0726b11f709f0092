using CrateIL.Imaging;

namespace CrateIL.Segmentation.MaskCut;

/// <summary>A box in pixel (or patch) coordinates: [X0, X1) × [Y0, Y1), exclusive right/bottom edges.</summary>
public readonly record struct Box(int X0, int Y0, int X1, int Y1)
{
    public int Width => X1 - X0;
    public int Height => Y1 - Y0;

    /// <summary>COCO [x, y, w, h].</summary>
    public (int X, int Y, int W, int H) ToXywh() => (X0, Y0, X1 - X0, Y1 - Y0);
}

/// <summary>Connected-component helpers on <see cref="BinaryMask"/> grids (scipy.ndimage semantics where noted).</summary>
public static class BinaryMasks
{
    /// <summary>
    /// 4-connected component labels (scipy.ndimage.label with its default cross structure): 0 = background,
    /// components numbered 1.. in raster order of their first pixel. Returns the number of components.
    /// </summary>
    public static int Label4(BinaryMask mask, Span<int> labels)
    {
        ArgumentNullException.ThrowIfNull(mask);
        var m = mask.Pixels;
        int height = mask.Height, width = mask.Width;
        if (labels.Length != m.Length) throw new ArgumentException($"labels has {labels.Length} entries, the mask {height}×{width}", nameof(labels));
        labels.Clear();
        var stack = new int[m.Length];
        int count = 0;
        for (int start = 0; start < m.Length; start++)
        {
            if (m[start] == 0 || labels[start] != 0) continue;
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
                    if (q >= 0 && m[q] != 0 && labels[q] == 0) { labels[q] = count; stack[top++] = q; }
                }
            }
        }
        return count;
    }

    /// <summary>The 4-connected component of <paramref name="mask"/> that contains pixel <paramref name="seed"/> (row-major index; empty if the seed is off).</summary>
    public static BinaryMask ComponentContaining(BinaryMask mask, int seed)
    {
        ArgumentNullException.ThrowIfNull(mask);
        int n = mask.Pixels.Length;
        if ((uint)seed >= (uint)n) throw new ArgumentOutOfRangeException(nameof(seed), seed, $"seed outside the {mask.Height}×{mask.Width} grid");
        var labels = new int[n];
        Label4(mask, labels);
        var result = new BinaryMask(mask.Height, mask.Width);
        int l = labels[seed];
        if (l == 0) return result;
        var r = result.Pixels;
        for (int i = 0; i < n; i++) r[i] = labels[i] == l ? (byte)1 : (byte)0;
        return result;
    }

    /// <summary>
    /// scipy.ndimage.binary_fill_holes with the default (cross) structure: background pixels not 4-connected to
    /// the image border become foreground.
    /// </summary>
    public static BinaryMask FillHoles(BinaryMask mask)
    {
        ArgumentNullException.ThrowIfNull(mask);
        var m = mask.Pixels;
        int height = mask.Height, width = mask.Width;
        var outside = new bool[m.Length]; // flood-fill visit flags
        var stack = new int[m.Length];
        int top = 0;
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                if (y != 0 && y != height - 1 && x != 0 && x != width - 1) continue;
                int p = y * width + x;
                if (m[p] == 0 && !outside[p]) { outside[p] = true; stack[top++] = p; }
            }
        while (top > 0)
        {
            int p = stack[--top];
            int y = p / width, x = p - y * width;
            for (int k = 0; k < 4; k++)
            {
                int q = k switch { 0 => x > 0 ? p - 1 : -1, 1 => x + 1 < width ? p + 1 : -1, 2 => y > 0 ? p - width : -1, _ => y + 1 < height ? p + width : -1 };
                if (q >= 0 && m[q] == 0 && !outside[q]) { outside[q] = true; stack[top++] = q; }
            }
        }
        var filled = new BinaryMask(height, width);
        var f = filled.Pixels;
        for (int i = 0; i < f.Length; i++) f[i] = outside[i] ? (byte)0 : (byte)1;
        return filled;
    }

    /// <summary>The tight box around the foreground, or null when the mask is empty.</summary>
    public static Box? BoundingBox(BinaryMask mask)
    {
        ArgumentNullException.ThrowIfNull(mask);
        var m = mask.Pixels;
        int height = mask.Height, width = mask.Width;
        int x0 = int.MaxValue, y0 = int.MaxValue, x1 = -1, y1 = -1;
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                if (m[y * width + x] == 0) continue;
                if (x < x0) x0 = x;
                if (x > x1) x1 = x;
                if (y < y0) y0 = y;
                if (y > y1) y1 = y;
            }
        return x1 < 0 ? null : new Box(x0, y0, x1 + 1, y1 + 1);
    }

    internal static void Check(int length, int height, int width, string name)
    {
        if (height < 1 || width < 1) throw new ArgumentOutOfRangeException(name, $"grid {height}×{width} must be positive");
        if (length != (long)height * width) throw new ArgumentException($"{name} has {length} entries, a {height}×{width} grid needs {(long)height * width}", name);
    }
}
