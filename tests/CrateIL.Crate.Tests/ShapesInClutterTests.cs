using CrateIL.Crate.Data;
using CrateIL.Imaging;
using Xunit.Abstractions;
using Xunit;

namespace CrateIL.Crate.Tests;

public class ShapesInClutterTests(ITestOutputHelper output)
{
    [Fact]
    public void Same_seed_and_index_give_identical_bytes_on_any_thread()
    {
        var a = new ShapesInClutter(200, seed: 7);
        var b = new ShapesInClutter(200, seed: 7);
        var sequential = Enumerable.Range(0, 40).Select(i => a.Render(i)).ToArray();
        var parallel = new (byte[] Rgb, BinaryMask Mask, ShapePlacement Placement)[40];
        Parallel.For(0, 40, new ParallelOptions { MaxDegreeOfParallelism = 4 }, k => parallel[39 - k] = b.Render(39 - k));
        for (int i = 0; i < 40; i++)
        {
            Assert.Equal(sequential[i].Rgb, parallel[i].Rgb);
            Assert.Equal(sequential[i].Mask, parallel[i].Mask);
            Assert.Equal(sequential[i].Placement, parallel[i].Placement);
        }
        // Rendering other samples in between changes nothing (no state carried from one sample to the next).
        b.Render(150);
        Assert.Equal(sequential[3].Rgb, b.Render(3).Rgb);

        var other = new ShapesInClutter(200, seed: 8);
        Assert.NotEqual(sequential[0].Rgb, other.Render(0).Rgb);
        Assert.NotEqual(sequential[0].Rgb, sequential[1].Rgb);
    }

    [Fact]
    public void Every_class_appears_and_labels_are_balanced()
    {
        var set = new ShapesInClutter(3000, seed: 11);
        var counts = new int[ShapesInClutter.ShapeCount];
        for (int i = 0; i < set.Count; i++) counts[set.GetLabel(i)]++;
        double expected = (double)set.Count / counts.Length;
        output.WriteLine("class counts: " + string.Join(", ", counts));
        foreach (int c in counts) Assert.InRange(c, 0.8 * expected, 1.2 * expected);
        Assert.True(set.ClassCount >= 8);
        Assert.Equal(set.ClassCount, set.ClassNames.Count);
        Assert.Equal("disk", set.ClassNames[0]);
        // GetLabel agrees with what is drawn.
        for (int i = 0; i < 30; i++) Assert.Equal(set.GetLabel(i), (int)set.Render(i).Placement.Kind);
    }

    [Fact]
    public void Masks_match_the_object_size_and_place()
    {
        const int S = 64;
        var set = new ShapesInClutter(200, seed: 3, imageSize: S);
        var minFraction = new double[set.ClassCount];
        Array.Fill(minFraction, double.MaxValue);
        var maxFraction = new double[set.ClassCount];
        for (int i = 0; i < set.Count; i++)
        {
            var (_, mask, p) = set.Render(i);
            Assert.InRange(2 * p.Radius / S, 0.25, 0.60);
            Assert.InRange(p.CenterX - p.Radius, 0, S);
            Assert.InRange(p.CenterX + p.Radius, 0, S);
            Assert.InRange(p.CenterY - p.Radius, 0, S);
            Assert.InRange(p.CenterY + p.Radius, 0, S);
            int area = 0;
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++)
                {
                    if (!mask[y, x]) continue;
                    area++;
                    double dx = x + 0.5 - p.CenterX, dy = y + 0.5 - p.CenterY;
                    Assert.True(dx * dx + dy * dy <= (p.Radius + 1) * (p.Radius + 1), $"sample {i}: mask pixel ({x}, {y}) outside the object's circle");
                }
            Assert.True(area > 0, $"sample {i}: empty mask");
            double fraction = area / (Math.PI * p.Radius * p.Radius);
            int k = (int)p.Kind;
            minFraction[k] = Math.Min(minFraction[k], fraction);
            maxFraction[k] = Math.Max(maxFraction[k], fraction);
            // Image-area fraction: at most the whole bounding circle of a 60 % object, at least a thin shape of a 25 % one.
            Assert.InRange(area / (double)(S * S), 0.2 * Math.PI * 0.125 * 0.125, Math.PI * 0.3 * 0.3 * 1.1);
        }
        for (int k = 0; k < set.ClassCount; k++)
        {
            output.WriteLine($"{set.ClassNames[k],-9} mask area / circle area {minFraction[k]:F2} .. {maxFraction[k]:F2}");
            // Each class fills a steady share of its circle (the same shape at any size, position and rotation).
            Assert.InRange(maxFraction[k] - minFraction[k], 0, 0.2);
            Assert.InRange(minFraction[k], 0.2, 1.05);
        }
    }

    [Fact]
    public void Load_normalises_the_rendered_image()
    {
        var set = new ShapesInClutter(10, seed: 5, imageSize: 32, patchSize: 16);
        Assert.Equal((3, 32, 32), (set.Channels, set.Height, set.Width));
        var (rgb, _, _) = set.Render(4);
        var dst = new float[3 * 32 * 32];
        var rng = default(SampleRandom);
        int label = set.Load(4, dst, ref rng);
        Assert.Equal(set.GetLabel(4), label);
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 32 * 32; i++)
                Assert.Equal(DataTestHelpers.Normalised(rgb[i * 3 + c], Normalization.ImageNet, c), dst[c * 1024 + i], 5e-6);

        // With augmentation the output follows the transform's size.
        var aug = new ShapesInClutter(10, seed: 5, imageSize: 32, patchSize: 16, pipeline: new ImagePipeline(new RandomResizedCrop(24)));
        Assert.Equal((24, 24), (aug.Width, aug.Height));
    }

    [Fact]
    public void Size_must_be_a_multiple_of_the_patch()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ShapesInClutter(10, 0, imageSize: 60, patchSize: 8));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ShapesInClutter(10, 0, imageSize: 8, patchSize: 8));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ShapesInClutter(0, 0));
        var big = new ShapesInClutter(2, 0, imageSize: 96, patchSize: 16);
        Assert.Equal(96 * 96 * 3, big.Render(1).Rgb.Length);
    }

    [Fact]
    public void Sample_grid_is_written_as_png()
    {
        // CRATEIL_SHAPES_GRID=path keeps the grid for eyeballing.
        string? keep = Environment.GetEnvironmentVariable("CRATEIL_SHAPES_GRID");
        using var tmp = new TempFolder();
        string path = keep is { Length: > 0 } ? keep : tmp.Combine("grid.png");
        var set = new ShapesInClutter(64, seed: 1);
        set.SaveGrid(path, 0, 40, columns: 5);
        if (Environment.GetEnvironmentVariable("CRATEIL_SHAPES_GRID_LARGE") is { Length: > 0 } large)
            new ShapesInClutter(64, seed: 1, imageSize: 128).SaveGrid(large, 0, 12, columns: 3);
        byte[] buffer = [];
        var view = ImageFile.LoadRgb(path, ref buffer);
        Assert.Equal((5 * 2 * 66 + 2, 8 * 66 + 2), (view.Width, view.Height));
        // The first tile's top-left pixel is the first sample's.
        var (rgb, _, _) = set.Render(0);
        Assert.Equal(rgb[0], view[2, 2, 0]);
        Assert.Equal(rgb[1], view[2, 2, 1]);
        output.WriteLine("labels: " + string.Join(" ", Enumerable.Range(0, 40).Select(i => set.ClassNames[set.GetLabel(i)])));
    }
}
