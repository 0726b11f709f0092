using Xunit;

namespace CrateIL.Imaging.Tests;

public class BinaryMaskTests
{
    private static BinaryMask Rect(int h, int w, int x0, int y0, int x1, int y1)
    {
        var m = new BinaryMask(h, w);
        m.FillRectangle(x0, y0, x1, y1);
        return m;
    }

    [Fact]
    public void Iou_area_and_counts_on_overlapping_rectangles()
    {
        var a = Rect(6, 7, 0, 0, 4, 3); // 12 pixels
        var b = Rect(6, 7, 2, 1, 7, 5); // 20 pixels, overlap x 2..3, y 1..2 = 4
        Assert.Equal(12, a.Area);
        Assert.Equal(20, b.Area);
        Assert.Equal(4, a.IntersectionCount(b));
        Assert.Equal(28, a.UnionCount(b));
        Assert.Equal(4.0 / 28, a.Iou(b), 15);
        Assert.Equal(1.0, a.Iou(a.Clone()));
        Assert.True(double.IsNaN(new BinaryMask(3, 3).Iou(new BinaryMask(3, 3))), "two empty masks have no IoU");
        Assert.Equal(0.0, new BinaryMask(6, 7).Iou(a));
        Assert.Throws<ArgumentException>(() => a.Iou(new BinaryMask(7, 6)));
    }

    [Fact]
    public void Union_clear_set_all_and_clone_are_independent()
    {
        var a = Rect(4, 4, 0, 0, 2, 4);
        var b = Rect(4, 4, 1, 0, 3, 1);
        var u = BinaryMask.Union([a, b]);
        Assert.Equal(8 + 1, u.Area);
        Assert.Equal(8, a.Area); // inputs untouched
        var c = a.Clone();
        c.UnionWith(b);
        Assert.Equal(u, c);
        Assert.Equal(8, a.Area);
        c.Clear();
        Assert.Equal(0, c.Area);
        c.SetAll();
        Assert.Equal(16, c.Area);
        Assert.Throws<ArgumentException>(() => BinaryMask.Union([]));
    }

    [Fact]
    public void Resize_nearest_follows_pytorch_legacy_nearest()
    {
        // 2×3 → 4×6: every cell becomes a 2×2 block.
        var m = new BinaryMask(2, 3, [1, 0, 1, 0, 1, 0]);
        var up = m.ResizeNearest(4, 6);
        byte[] expected =
        [
            1, 1, 0, 0, 1, 1,
            1, 1, 0, 0, 1, 1,
            0, 0, 1, 1, 0, 0,
            0, 0, 1, 1, 0, 0,
        ];
        Assert.Equal(expected, up.Pixels.ToArray());
        // 1×5 → 1×3: src = floor(dst·5/3) = 0, 1, 3 (torch.nn.functional.interpolate(mode='nearest')).
        var row = new BinaryMask(1, 5, [1, 0, 0, 1, 0]).ResizeNearest(1, 3);
        Assert.Equal(new byte[] { 1, 0, 1 }, row.Pixels.ToArray());
    }

    [Fact]
    public void Construction_normalises_values_and_refuses_bad_sizes()
    {
        var m = new BinaryMask(1, 4, [0, 7, 255, 1]);
        Assert.Equal(new byte[] { 0, 1, 1, 1 }, m.Pixels.ToArray());
        Assert.True(m[0, 2]);
        Assert.Throws<ArgumentException>(() => new BinaryMask(2, 2, [1, 0, 1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new BinaryMask(0, 3));
        var clipped = Rect(3, 3, -5, 1, 10, 2);
        Assert.Equal(3, clipped.Area);
    }
}
