using CrateIL.Imaging;
using CrateIL.Segmentation.Rendering;
using Xunit;

namespace CrateIL.Segmentation.Tests;

public class ImageGridTests
{
    private static readonly (byte R, byte G, byte B) GridBackground = (22, 22, 26);

    private static RgbImage Solid(int w, int h, byte r, byte g, byte b)
    {
        var img = new RgbImage(w, h);
        for (int i = 0; i < w * h; i++) { img.Data[i * 3] = r; img.Data[i * 3 + 1] = g; img.Data[i * 3 + 2] = b; }
        return img;
    }

    private static int CountColor(RgbImage img, (byte R, byte G, byte B) c)
    {
        int n = 0;
        for (int i = 0; i < img.Width * img.Height; i++)
            if (img.Data[i * 3] == c.R && img.Data[i * 3 + 1] == c.G && img.Data[i * 3 + 2] == c.B) n++;
        return n;
    }

    private static (byte, byte, byte) Pixel(RgbImage img, int x, int y)
    {
        int o = (y * img.Width + x) * 3;
        return (img.Data[o], img.Data[o + 1], img.Data[o + 2]);
    }

    [Fact]
    public void TilesAreEnlargedByTheSmallestIntegerFactorReachingMinTileSide()
    {
        // 32 px → 3× = 96 exactly; 30×20 → 4× (3× would give 90 < 96) = 120×80.
        var grid = new ImageGrid(["a", "b"]) { MinTileSide = 96 }
            .AddRow("row", new GridCell(Solid(32, 32, 255, 0, 0)), new GridCell(Solid(30, 20, 0, 0, 255)));
        var img = grid.Render();
        Assert.Equal(96 * 96, CountColor(img, (255, 0, 0)));
        Assert.Equal(120 * 80, CountColor(img, (0, 0, 255)));
    }

    [Fact]
    public void EachColumnAndRowAddsItsTileAndOneGap()
    {
        var tile = new GridCell(Solid(32, 32, 200, 200, 200));
        // 32 px at the default MinTileSide (128) → 4× = 128 px tiles, 8 px gaps.
        var oneByTwo = new ImageGrid(["x", "y"]).AddRow("r0", tile, tile).Render();
        var oneByThree = new ImageGrid(["x", "y", "z"]).AddRow("r0", tile, tile, tile).Render();
        var twoByTwo = new ImageGrid(["x", "y"]).AddRow("r0", tile, tile).AddRow("r1", tile, tile).Render();
        Assert.Equal(128 + 8, oneByThree.Width - oneByTwo.Width);
        Assert.Equal(oneByTwo.Height, oneByThree.Height);
        Assert.Equal(128 + 8, twoByTwo.Height - oneByTwo.Height);
        Assert.Equal(oneByTwo.Width, twoByTwo.Width);
    }

    [Fact]
    public void SavedPngHasTheRenderedSizeAndPixels()
    {
        var grid = new ImageGrid(["image", "true mask"]) { Title = "title", Footnote = "each heat map scaled min→max", ColorBar = Colormap.Inferno }
            .AddRow("CRATE #3", new GridCell(Solid(32, 32, 10, 200, 30), "IoU 0.62"), null);
        var rendered = grid.Render();
        // The colour bar ends in the colour map's maximum, one 10-px-high column of it.
        Assert.InRange(CountColor(rendered, Colormap.Inferno.Map(1)), 9, 11);
        string path = Path.Combine(Path.GetTempPath(), $"crateil-grid-{Guid.NewGuid():N}.png");
        try
        {
            grid.SavePng(path);
            var loaded = ImageFile.LoadRgb(path);
            Assert.Equal((rendered.Width, rendered.Height), (loaded.Width, loaded.Height));
            Assert.Equal(rendered.Data, loaded.Data);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void HeaderTextIsDrawnAboveTheTiles()
    {
        var tile = new GridCell(Solid(32, 32, 255, 0, 0));
        var withText = new ImageGrid(["image", "head 0"]).AddRow("CRATE #3", tile, tile).Render();
        var blank = new ImageGrid(["", ""]).AddRow("", tile, tile).Render();
        Assert.Equal(withText.Height, blank.Height); // header and label bands keep their height without text
        int tileTop = Enumerable.Range(0, withText.Height).First(y => Enumerable.Range(0, withText.Width).Any(x => Pixel(withText, x, y) == (255, 0, 0)));
        int TextPixels(RgbImage img, int y0, int y1, int x0, int x1) =>
            Enumerable.Range(y0, y1 - y0).Sum(y => Enumerable.Range(x0, x1 - x0).Count(x => Pixel(img, x, y) != GridBackground));
        Assert.True(TextPixels(withText, 0, tileTop, 0, withText.Width) > 50, "header band has no text pixels");
        Assert.Equal(0, TextPixels(blank, 0, tileTop, 0, blank.Width));
        int tileLeft = Enumerable.Range(0, withText.Width).First(x => Pixel(withText, x, tileTop) == (255, 0, 0));
        Assert.True(TextPixels(withText, tileTop, tileTop + 128, 0, tileLeft) > 50, "row label has no text pixels");
    }

    [Fact]
    public void RowsMayHaveFewerCellsButNotMore()
    {
        var grid = new ImageGrid(["a", "b", "c"]).AddRow("short", new GridCell(Solid(8, 8, 1, 2, 3)));
        Assert.Equal(1, grid.RowCount);
        Assert.Throws<ArgumentException>(() => grid.AddRow("long", null, null, null, null));
        Assert.Throws<InvalidOperationException>(() => new ImageGrid(["a"]).Render());
    }
}

public class TileTests
{
    private static RgbImage Gray(int w, int h, byte v)
    {
        var img = new RgbImage(w, h);
        Array.Fill(img.Data, v);
        return img;
    }

    private static (byte, byte, byte) Pixel(RgbImage img, int x, int y)
    {
        int o = (y * img.Width + x) * 3;
        return (img.Data[o], img.Data[o + 1], img.Data[o + 2]);
    }

    /// <summary>A 32×32 mask of the square [8, 24)².</summary>
    private static BinaryMask Square32()
    {
        var m = new BinaryMask(32, 32);
        m.FillRectangle(8, 8, 24, 24);
        return m;
    }

    [Fact]
    public void MaskTileFillsAndOutlinesTheMaskAndLeavesTheRestAlone()
    {
        var image = Gray(32, 32, 100);
        var tile = Tiles.Mask(image, Square32()); // 4× → 128 px, square [32, 96)²
        Assert.Equal((128, 128), (tile.Width, tile.Height));
        var color = Overlays.MaskColors[0]; // (0, 220, 255) at α = 0.5 over 100: (50, 160, 178)
        for (int y = 0; y < 128; y++)
            for (int x = 0; x < 128; x++)
            {
                bool inside = x is >= 32 and < 96 && y is >= 32 and < 96;
                bool edge = inside && (x is 32 or 95 || y is 32 or 95);
                var expected = edge ? color : inside ? ((byte)50, (byte)160, (byte)178) : ((byte)100, (byte)100, (byte)100);
                Assert.Equal(expected, Pixel(tile, x, y));
            }
    }

    [Fact]
    public void SeveralMasksTakeSuccessiveColours()
    {
        var left = new BinaryMask(2, 2); left.FillRectangle(0, 0, 1, 2);  // 2×2 patch grid: left half
        var right = new BinaryMask(2, 2); right.FillRectangle(1, 0, 2, 2); // right half
        var tile = Tiles.Masks(Gray(32, 32, 0), [left, right], alpha: 1);
        Assert.Equal(Overlays.MaskColors[0], Pixel(tile, 20, 60));
        Assert.Equal(Overlays.MaskColors[1], Pixel(tile, 100, 60));
    }

    [Fact]
    public void OutlineThicknessCountsPixelsInsideTheMask()
    {
        var mask = new BinaryMask(4, 4); // 4×4 grid, the centre 2×2 patches
        mask.FillRectangle(1, 1, 3, 3);
        var outlined = Overlays.Outline(Gray(16, 16, 0), mask, (255, 255, 255), thickness: 2); // centre is [4, 12)²
        Assert.Equal((255, 255, 255), Pixel(outlined, 4, 8));
        Assert.Equal((255, 255, 255), Pixel(outlined, 5, 8));
        Assert.Equal((0, 0, 0), Pixel(outlined, 6, 8));
        Assert.Equal((0, 0, 0), Pixel(outlined, 3, 8));
        int white = Enumerable.Range(0, 256).Count(p => outlined.Data[p * 3] == 255);
        Assert.Equal(8 * 8 - 4 * 4, white);
    }

    [Fact]
    public void HeatmapTileIsDisplaySizedWithTheReferenceContour()
    {
        float[] map = [0, 1, 2, 3]; // 2×2: maximum bottom-right
        var tile = Tiles.Heatmap(Gray(32, 32, 0), map, 2, 2, contour: Square32(), alpha: 1, colormap: Colormap.Viridis);
        Assert.Equal((128, 128), (tile.Width, tile.Height));
        Assert.Equal(Colormap.Viridis.Map(0), Pixel(tile, 0, 0));
        Assert.Equal(Colormap.Viridis.Map(1), Pixel(tile, 127, 127));
        Assert.Equal(Tiles.ReferenceOutlineColor, Pixel(tile, 32, 50));
        Assert.NotEqual(Tiles.ReferenceOutlineColor, Pixel(tile, 33, 50));
    }

    [Fact]
    public void PcaTileIsBlocksOfThePatchColours()
    {
        var rgb = new byte[8 * 8 * 3];
        rgb[(7 * 8 + 7) * 3] = 255; // last patch red
        var tile = Tiles.Pca(rgb, 8, 8);
        Assert.Equal((128, 128), (tile.Width, tile.Height));
        Assert.Equal((255, 0, 0), Pixel(tile, 112, 112));
        Assert.Equal((0, 0, 0), Pixel(tile, 111, 112));
        Assert.Equal(4, Tiles.ScaleFor(32, 32));
        Assert.Equal(3, Tiles.ScaleFor(48, 40));
        Assert.Equal(1, Tiles.ScaleFor(200, 10));
    }
}
