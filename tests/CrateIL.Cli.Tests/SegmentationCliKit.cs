using CrateIL.Imaging;
using Xunit;

namespace CrateIL.Cli.Tests;

/// <summary>Shared pieces of the segmentation command tests (crf, export, maskcut, segeval).</summary>
internal static class SegmentationCliKit
{
    public static string Labelme =>
        Environment.GetEnvironmentVariable("CRATEIL_LABELME_DIR") is { Length: > 0 } d ? d : "/usr/share/doc/labelme-examples/examples";

    /// <summary>The semantic-segmentation VOC export of labelme-examples (JPEGImages, SegmentationClassPNG, no ImageSets).</summary>
    public static string LabelmeVoc => Path.Combine(Labelme, "semantic_segmentation", "data_dataset_voc");

    /// <summary>Skips visibly when labelme-examples is absent (fails under CI, where test.sh installs it).</summary>
    public static void RequireLabelme()
    {
        bool present = File.Exists(Path.Combine(LabelmeVoc, "JPEGImages", "2011_000003.jpg"));
        if (!present && Environment.GetEnvironmentVariable("CI") == "true")
            throw new InvalidOperationException($"labelme-examples not found under {Labelme}; test.sh installs it under CI");
        Skip.IfNot(present, $"labelme-examples not installed ({Labelme}); run test.sh as root or apt-get install labelme-examples");
    }

    /// <summary>A fresh temporary folder, deleted on dispose.</summary>
    public sealed class TempDir : IDisposable
    {
        public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "crateil-seg-" + Guid.NewGuid().ToString("N"));

        public TempDir() => Directory.CreateDirectory(Path);

        public string File(string name) => System.IO.Path.Combine(Path, name);

        public void Dispose()
        {
            if (Directory.Exists(Path)) Directory.Delete(Path, recursive: true);
        }
    }

    /// <summary>One line on stderr starting "error: ", no stack trace, nothing on stdout.</summary>
    public static void AssertOneLineError((int Exit, string Out, string Err) run, string? mentions = null)
    {
        Assert.Equal(2, run.Exit);
        Assert.Equal("", run.Out);
        var lines = run.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", run.Err, StringComparison.Ordinal);
        if (mentions is not null) Assert.Contains(mentions, lines[0], StringComparison.Ordinal);
    }

    /// <summary>
    /// A textured photo: a bright warm disc (the object) on a darker, noisy green-blue background, plus its true mask.
    /// </summary>
    public static (RgbImage Photo, bool[] Truth) DiscScene(int width, int height, int seed = 3)
    {
        var photo = new RgbImage(width, height);
        var truth = new bool[width * height];
        var rng = new Random(seed);
        double cx = width * 0.45, cy = height * 0.55, r = Math.Min(width, height) * 0.3;
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                int p = y * width + x;
                bool inside = (x - cx) * (x - cx) + (y - cy) * (y - cy) < r * r;
                truth[p] = inside;
                int n = rng.Next(-10, 11);
                photo.Data[3 * p] = (byte)Math.Clamp((inside ? 220 : 40) + n, 0, 255);
                photo.Data[3 * p + 1] = (byte)Math.Clamp((inside ? 150 : 110) + n, 0, 255);
                photo.Data[3 * p + 2] = (byte)Math.Clamp((inside ? 60 : 90) + n, 0, 255);
            }
        return (photo, truth);
    }

    public static double Iou(ReadOnlySpan<bool> a, ReadOnlySpan<bool> b)
    {
        long inter = 0, union = 0;
        for (int i = 0; i < a.Length; i++)
        {
            if (a[i] && b[i]) inter++;
            if (a[i] || b[i]) union++;
        }
        return union == 0 ? 1 : (double)inter / union;
    }

    /// <summary>A 0/255 greyscale mask PNG read back as booleans (asserting it is exactly binary).</summary>
    public static bool[] ReadBinaryPng(string path, int width, int height)
    {
        var png = Png.ReadIndexed(path);
        Assert.Null(png.Palette);
        Assert.Equal((width, height), (png.Width, png.Height));
        Assert.All(png.Pixels, v => Assert.True(v is 0 or 255, $"mask value {v} is not 0/255"));
        return png.Pixels.Select(v => v == 255).ToArray();
    }

    /// <summary>Pixels (count) where two images of one size differ, inside and outside a mask.</summary>
    public static (int Inside, int Outside) Differences(RgbImage a, RgbImage b, ReadOnlySpan<bool> mask)
    {
        Assert.Equal((a.Width, a.Height), (b.Width, b.Height));
        int inside = 0, outside = 0;
        for (int p = 0; p < a.Width * a.Height; p++)
        {
            bool differs = a.Data[3 * p] != b.Data[3 * p] || a.Data[3 * p + 1] != b.Data[3 * p + 1] || a.Data[3 * p + 2] != b.Data[3 * p + 2];
            if (!differs) continue;
            if (mask[p]) inside++; else outside++;
        }
        return (inside, outside);
    }
}
