using CrateIL.Cli.Reporting;
using CrateIL.Imaging;
using Xunit;

namespace CrateIL.Cli.Tests;

public sealed class CurvePlotTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("crateil-curves-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private static int DistinctColors(RgbImage img, int y0, int y1)
    {
        var seen = new HashSet<int>();
        for (int y = y0; y < y1; y++)
            for (int x = 0; x < img.Width; x++)
            {
                int o = (y * img.Width + x) * 3;
                seen.Add(img.Data[o] << 16 | img.Data[o + 1] << 8 | img.Data[o + 2]);
            }
        return seen.Count;
    }

    private static int CountNear(RgbImage img, (int R, int G, int B) c, int tolerance)
    {
        int n = 0;
        for (int p = 0; p < img.Width * img.Height; p++)
            if (Math.Abs(img.Data[p * 3] - c.R) <= tolerance && Math.Abs(img.Data[p * 3 + 1] - c.G) <= tolerance && Math.Abs(img.Data[p * 3 + 2] - c.B) <= tolerance) n++;
        return n;
    }

    [Fact]
    public void SaveLinesWritesAPngOfTheRequestedSizeWithBothLineColours()
    {
        string path = Path.Combine(dir, "lines.png");
        double[] x = [1, 2, 3, 4, 5, 6, 7, 8];
        CurvePlots.SaveLines(path, "held-out loss", "epoch", "loss",
            [("CRATE", x, [2.3, 1.9, 1.6, 1.4, 1.3, 1.2, 1.15, 1.1]), ("ViT", x, [2.3, 2.0, 1.8, 1.7, 1.6, 1.55, 1.5, 1.5])], width: 640, height: 360);
        var img = ImageFile.LoadRgb(path);
        Assert.Equal((640, 360), (img.Width, img.Height));
        Assert.True(CountNear(img, (0x1F, 0x77, 0xB4), 8) > 100, "no CRATE-blue line pixels");
        Assert.True(CountNear(img, (0xFF, 0x7F, 0x0E), 8) > 100, "no ViT-orange line pixels");
        // The title band (top 8 %) holds antialiased text: many grey levels, not one background colour.
        Assert.True(DistinctColors(img, 0, img.Height * 8 / 100) > 10, "title band looks empty");
    }

    [Fact]
    public void TrainingFigureHasFourPanelsOfTheRequestedSize()
    {
        string path = Path.Combine(dir, "training.png");
        TrainingCurves Run(string name, double speed) => new(name,
            Curve.ByEpoch([.. Enumerable.Range(0, 20).Select(e => 2.3 * Math.Exp(-speed * e) + 0.3)]),
            Curve.ByEpoch([.. Enumerable.Range(0, 20).Select(e => 2.3 * Math.Exp(-speed * e) + 0.5)]),
            Curve.ByEpoch([.. Enumerable.Range(0, 20).Select(e => 0.9 - 0.8 * Math.Exp(-speed * e))]),
            Curve.ByEpoch([.. Enumerable.Range(0, 20).Select(e => 1e-3 * Math.Cos(Math.PI * e / 40))]),
            new([0, 1, 2, 3], [40, 30, 25, 22]));
        CurvePlots.SaveTrainingFigure(path, [Run("CRATE", 0.2), Run("ViT", 0.1)], width: 1000, height: 700);
        var img = ImageFile.LoadRgb(path);
        Assert.Equal((1000, 700), (img.Width, img.Height));
        Assert.True(DistinctColors(img, 0, img.Height / 2) > 50 && DistinctColors(img, img.Height / 2, img.Height) > 50);
        Assert.True(CountNear(img, (0xFF, 0x7F, 0x0E), 8) > 200, "no ViT-orange line pixels");
    }

    [Fact]
    public void NonFinitePointsAreLeftOut()
    {
        string path = Path.Combine(dir, "gaps.png");
        CurvePlots.SaveLines(path, "held-out top-1", "epoch", "top-1",
            [("CRATE", [1, 2, 3, 4], [0.1, double.NaN, 0.5, 0.6]), ("ViT", [1, 2, 3, 4], [double.NaN, double.NaN, double.NaN, double.NaN])], width: 400, height: 300);
        var img = ImageFile.LoadRgb(path);
        Assert.Equal((400, 300), (img.Width, img.Height));
        Assert.True(CountNear(img, (0x1F, 0x77, 0xB4), 8) > 50, "the finite CRATE points were not drawn");
    }

    [Fact]
    public void MismatchedSeriesLengthsAreRejected()
    {
        Assert.Throws<ArgumentException>(() => CurvePlots.SaveLines(Path.Combine(dir, "bad.png"), "t", "x", "y", [("a", [1, 2], [1])]));
        Assert.False(File.Exists(Path.Combine(dir, "bad.png")));
    }
}
