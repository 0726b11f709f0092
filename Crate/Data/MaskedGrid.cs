using CrateIL.Imaging;

namespace CrateIL.Crate.Data;

/// <summary>Writes generated images beside their exact masks as one PNG, to look at what a model is asked to learn.</summary>
public static class MaskedGrid
{
    /// <summary>
    /// Samples 0 .. count − 1 of <paramref name="data"/>, <paramref name="columns"/> per row, each image followed by its
    /// mask in white on black, 2-pixel gaps.
    /// </summary>
    public static void Save(IMaskedDataset data, string path, int count, int columns)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (count <= 0 || columns <= 0) throw new ArgumentOutOfRangeException(nameof(count), "count and columns must be positive");
        count = Math.Min(count, data.Count);
        int s = data.ImageSize, gap = 2;
        int cols = Math.Min(columns, count), rows = (count + columns - 1) / columns;
        int w = cols * 2 * (s + gap) + gap, h = rows * (s + gap) + gap;
        var grid = new byte[w * h * 3];
        Array.Fill(grid, (byte)40);
        var rgb = new byte[s * s * 3];
        var mask = new BinaryMask(s, s);
        for (int k = 0; k < count; k++)
        {
            data.RenderMasked(k, rgb, mask);
            int ox = gap + k % columns * 2 * (s + gap), oy = gap + k / columns * (s + gap);
            for (int y = 0; y < s; y++)
            {
                rgb.AsSpan(y * s * 3, s * 3).CopyTo(grid.AsSpan(((oy + y) * w + ox) * 3));
                for (int x = 0; x < s; x++)
                {
                    byte v = mask[y, x] ? (byte)255 : (byte)0;
                    int o = ((oy + y) * w + ox + s + gap + x) * 3;
                    grid[o] = grid[o + 1] = grid[o + 2] = v;
                }
            }
        }
        ImageFile.SavePng(path, grid, w, h, 3);
    }
}
