using System.Security.Cryptography;
using CrateIL.Crate.Data;
using CrateIL.Imaging;
using Xunit;
using Xunit.Abstractions;

namespace CrateIL.Crate.Tests;

/// <summary>The generated data of the emergence demo: settings, streaming, held-out ranges, masks.</summary>
public class EmergeDataTests(ITestOutputHelper output)
{
    /// <summary>SHA-256 of samples 0–23 (RGB, mask, kind) of ShapesInClutter(seed 7) as rendered before the settings existed.</summary>
    private static string RenderHash(ShapesInClutter set)
    {
        var all = new List<byte>();
        for (int i = 0; i < 24; i++)
        {
            var (rgb, mask, p) = set.Render(i);
            all.AddRange(rgb);
            all.AddRange(mask.Pixels.ToArray());
            all.Add((byte)p.Kind);
        }
        return Convert.ToHexString(SHA256.HashData(all.ToArray()));
    }

    [Theory]
    [InlineData(32, 4, "AA4CD75ADD51B8954EBCF289223D83BC73A360B137B9A6AB31FABAD21A873EB6")]
    [InlineData(64, 8, "C8196AFED7F5198D832DDBD90630F722C9D93B7FFF8560E8A1032EA75B2A0AB2")]
    public void Default_settings_render_the_original_bytes(int side, int patch, string expected)
    {
        Assert.Equal(expected, RenderHash(new ShapesInClutter(64, 7, side, patch)));
        Assert.Equal(expected, RenderHash(new ShapesInClutter(64, 7, side, patch, settings: ShapesInClutterSettings.Default)));
    }

    [Fact]
    public void Streamed_samples_are_fresh_every_epoch_and_reproducible()
    {
        var stream = ShapesInClutter.Stream(64, seed: 3, imageSize: 32, patchSize: 4, settings: ShapesInClutterSettings.Emerge);
        var loader = new DataLoader(stream, batchSize: 16, seed: 9, workers: 0);
        float[] Epoch(int e) => loader.Epoch(e).SelectMany(b => b.ImagesSpan.ToArray()).ToArray();
        int[] Labels(int e) => loader.Epoch(e).SelectMany(b => b.LabelsSpan.ToArray()).ToArray();
        var first = Epoch(0);
        Assert.Equal(first, Epoch(0));
        Assert.Equal(Labels(0), Labels(0));
        var second = Epoch(1);
        // Same indices, new epoch: no image repeats (64 images each of 32·32·3 floats).
        int length = ((IDataset)stream).SampleLength, repeats = 0;
        var seen = new HashSet<string>();
        for (int i = 0; i < 64; i++) seen.Add(Convert.ToHexString(MemoryMarshalBytes(first.AsSpan(i * length, length))));
        for (int i = 0; i < 64; i++) if (seen.Contains(Convert.ToHexString(MemoryMarshalBytes(second.AsSpan(i * length, length))))) repeats++;
        Assert.Equal(0, repeats);
        Assert.Equal(64, seen.Count);
        Assert.All(Labels(1), l => Assert.InRange(l, 0, 3));
        Assert.Throws<InvalidOperationException>(() => stream.GetLabel(0));
        Assert.Throws<InvalidOperationException>(() => stream.Render(0));
    }

    private static byte[] MemoryMarshalBytes(ReadOnlySpan<float> values) => SHA256.HashData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values));

    [Fact]
    public void Streamed_keys_never_meet_the_indexed_range_of_the_same_seed()
    {
        // A streamed sample's key has the top bit set; indexed sample i is key i. Rendering key i reproduces sample i.
        var indexed = new ShapesInClutter(100, seed: 4, imageSize: 32, patchSize: 4, settings: ShapesInClutterSettings.Emerge);
        var stream = ShapesInClutter.Stream(100, seed: 4, imageSize: 32, patchSize: 4, settings: ShapesInClutterSettings.Emerge);
        var rgb = new byte[32 * 32 * 3];
        var mask = new BinaryMask(32, 32);
        stream.RenderKey(5, rgb, mask);
        Assert.Equal(indexed.Render(5).Rgb, rgb);
        var held = new HashSet<string>(Enumerable.Range(0, 100).Select(i => Convert.ToHexString(SHA256.HashData(indexed.Render(i).Rgb))));
        var loader = new DataLoader(stream, batchSize: 50, seed: 4, workers: 0);
        for (int i = 0; i < 100; i++)
        {
            var random = loader.SampleStream(0, i);
            long key = (long)(random.NextUInt64() | (1UL << 63));
            Assert.True(key < 0);
            stream.RenderKey(key, rgb, mask);
            Assert.DoesNotContain(Convert.ToHexString(SHA256.HashData(rgb)), held);
        }
    }

    [Fact]
    public void Emerge_shapes_are_four_balanced_classes_whose_masks_a_trivial_mask_cannot_match()
    {
        const int S = 32;
        var set = new ShapesInClutter(2000, seed: 21, imageSize: S, patchSize: 4, settings: ShapesInClutterSettings.Emerge);
        Assert.Equal(["disk", "triangle", "cross", "ring"], set.ClassNames);
        var counts = new int[4];
        double areaSum = 0, minArea = 1, maxArea = 0;
        var rgb = new byte[S * S * 3];
        var mask = new BinaryMask(S, S);
        IMaskedDataset masked = set;
        for (int i = 0; i < 400; i++)
        {
            int label = masked.RenderMasked(i, rgb, mask);
            Assert.Equal(set.GetLabel(i), label);
            counts[label]++;
            double area = mask.Area / (double)(S * S);
            areaSum += area;
            minArea = Math.Min(minArea, area);
            maxArea = Math.Max(maxArea, area);
        }
        double mean = areaSum / 400;
        output.WriteLine($"class counts {string.Join(", ", counts)}; object area mean {mean:P1}, range {minArea:P1}–{maxArea:P1}");
        foreach (int c in counts) Assert.InRange(c, 70, 130);
        // The all-foreground mask's IoU with the truth is the object's area fraction: about a quarter on average.
        Assert.InRange(mean, 0.15, 0.35);
        Assert.True(minArea > 0.05 && maxArea < 0.6, $"object areas {minArea:P1}–{maxArea:P1}");
    }

    [Fact]
    public void Settings_reject_inconsistent_values()
    {
        Assert.Throws<ArgumentException>(() => new ShapesInClutterSettings { Classes = [ShapeKind.Disk] }.Validate());
        Assert.Throws<ArgumentException>(() => new ShapesInClutterSettings { Classes = [ShapeKind.Disk, ShapeKind.Disk] }.Validate());
        Assert.Throws<ArgumentException>(() => new ShapesInClutterSettings { MinDiameter = 0.7, MaxDiameter = 0.6 }.Validate());
        Assert.Throws<ArgumentException>(() => new ShapesInClutterSettings { MinBlobs = 2, MaxBlobs = 1 }.Validate());
        Assert.Throws<ArgumentException>(() => new FashionClutterSettings { Classes = [3, 3] }.Validate());
        Assert.Throws<ArgumentException>(() => new FashionClutterSettings { MinSize = 0 }.Validate());
    }

    internal static string FashionDirectory =>
        Environment.GetEnvironmentVariable("CRATEIL_FASHION_MNIST_DIR") is { Length: > 0 } d ? d : IdxDataset.DebianFashionMnistDirectory;

    internal static FashionItems? LoadFashionOrSkip()
    {
        string dir = FashionDirectory;
        bool present = File.Exists(Path.Combine(dir, "train-images-idx3-ubyte.gz")) || File.Exists(Path.Combine(dir, "train-images-idx3-ubyte"));
        if (!present && Environment.GetEnvironmentVariable("CI") == "true")
            throw new InvalidOperationException($"Fashion-MNIST not found under {dir}; test.sh installs dataset-fashion-mnist under CI");
        Skip.IfNot(present, $"Fashion-MNIST not installed ({dir}); apt-get install dataset-fashion-mnist");
        return FashionItems.Load(dir);
    }

    [Fact]
    public void Missing_fashion_mnist_names_the_package()
    {
        var e = Assert.Throws<DatasetException>(() => FashionItems.Load(Path.Combine(Path.GetTempPath(), "no-such-fashion-" + Guid.NewGuid().ToString("N"))));
        Assert.Contains("dataset-fashion-mnist", e.Message);
    }

    [SkippableFact]
    public void Fashion_clutter_masks_are_the_items_own_pixels_and_held_out_items_come_from_the_test_split()
    {
        var items = LoadFashionOrSkip()!;
        const int S = 32;
        var train = new FashionClutter(items, 300, seed: 1, imageSize: S, patchSize: 4);
        var held = new FashionClutter(items, 300, seed: 2, imageSize: S, patchSize: 4, heldOut: true);
        Assert.Equal(["T-shirt/top", "Trouser", "Sneaker", "Bag"], train.ClassNames);
        Assert.True(held.IsHeldOut);
        var rgb = new byte[S * S * 3];
        var mask = new BinaryMask(S, S);
        var counts = new int[4];
        double areaSum = 0;
        for (int i = 0; i < 300; i++)
        {
            int label = held.Render(i, rgb, mask);
            Assert.Equal(held.GetLabel(i), label);
            counts[label]++;
            long area = mask.Area;
            Assert.True(area > 20, $"sample {i}: mask of {area} pixels");
            areaSum += area / (double)(S * S);
        }
        double mean = areaSum / 300;
        output.WriteLine($"held-out class counts {string.Join(", ", counts)}; item area mean {mean:P1}");
        foreach (int c in counts) Assert.InRange(c, 50, 100);
        Assert.InRange(mean, 0.15, 0.45);
        // Deterministic by index; a different seed or split gives other images.
        var again = new byte[S * S * 3];
        held.Render(7, again, mask);
        held.Render(7, rgb, mask);
        Assert.Equal(rgb, again);
        train.Render(7, again, mask);
        Assert.NotEqual(rgb, again);
    }
}
