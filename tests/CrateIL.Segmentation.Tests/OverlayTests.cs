using CrateIL.Imaging;
using CrateIL.Segmentation.Rendering;
using Xunit;

namespace CrateIL.Segmentation.Tests;

public class OverlayTests
{
    private static RgbImage Gray(int w, int h, byte v)
    {
        var img = new RgbImage(w, h);
        Array.Fill(img.Data, v);
        return img;
    }

    [Fact]
    public void HeatmapBlendsColormapEndsAtMinAndMax()
    {
        var img = Gray(16, 8, 100);
        // 2×4 grid: the left column is the minimum, the right column the maximum.
        float[] map = [0, 1, 2, 3, 0, 1, 2, 3];
        var outImg = Overlays.Heatmap(img, map, 2, 4, alpha: 0.5, Colormap.Viridis);
        var (r0, g0, b0) = Colormap.Viridis.Map(0);
        var (r1, g1, b1) = Colormap.Viridis.Map(1);
        Assert.Equal(new byte[] { (byte)Math.Round(50 + r0 / 2.0), (byte)Math.Round(50 + g0 / 2.0), (byte)Math.Round(50 + b0 / 2.0) }, outImg.Data[0..3]);
        int last = (16 * 8 - 1) * 3;
        Assert.Equal(new byte[] { (byte)Math.Round(50 + r1 / 2.0), (byte)Math.Round(50 + g1 / 2.0), (byte)Math.Round(50 + b1 / 2.0) }, outImg.Data[last..(last + 3)]);
        Assert.Equal((68, 1, 84), ((int)r0, (int)g0, (int)b0));
        Assert.Equal((253, 231, 37), ((int)r1, (int)g1, (int)b1));
    }

    [Fact]
    public void MaskTintsOnlyMaskedPatchesAndRoundTripsThroughPng()
    {
        var img = Gray(8, 8, 0);
        var mask = new BinaryMask(2, 2) { [0, 0] = true }; // 2×2 grid: top-left quadrant
        var outImg = Overlays.Mask(img, mask, (200, 0, 0), alpha: 1);
        Assert.Equal(200, outImg.Data[0]);
        Assert.Equal(200, outImg.Data[(3 * 8 + 3) * 3]);
        Assert.Equal(0, outImg.Data[(3 * 8 + 4) * 3]);
        Assert.Equal(0, outImg.Data[(4 * 8 + 3) * 3]);
        string path = Path.Combine(Path.GetTempPath(), $"crateil-overlay-{Guid.NewGuid():N}.png");
        try
        {
            ImageFile.SavePng(path, outImg);
            Assert.Equal(outImg.Data, ImageFile.LoadRgb(path).Data);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void GridUpscalesWithNearestNeighbours()
    {
        byte[] rgb = [1, 2, 3, 4, 5, 6];
        var img = Overlays.Grid(rgb, 1, 2, scale: 3);
        Assert.Equal(6, img.Width);
        int a = (2 * 6 + 2) * 3, b = (2 * 6 + 3) * 3;
        Assert.Equal(new byte[] { 1, 2, 3 }, img.Data[a..(a + 3)]);
        Assert.Equal(new byte[] { 4, 5, 6 }, img.Data[b..(b + 3)]);
        Assert.Throws<ArgumentException>(() => Overlays.Heatmap(Gray(4, 4, 0), new float[3], 2, 2));
    }
}
