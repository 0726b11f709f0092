using System.IO.Compression;
using CrateIL.Crate.Data;
using Xunit;

namespace CrateIL.Crate.Tests;

public class IdxTests
{
    // A [2, 3, 4] unsigned-byte array written out by hand: magic 00 00 08 03, big-endian dimensions, then 24 bytes.
    private static readonly byte[] s_handWritten =
    [
        0x00, 0x00, 0x08, 0x03,
        0x00, 0x00, 0x00, 0x02,
        0x00, 0x00, 0x00, 0x03,
        0x00, 0x00, 0x00, 0x04,
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 255,
    ];

    private static byte[] Gzip(byte[] raw)
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Optimal, leaveOpen: true)) gz.Write(raw);
        return ms.ToArray();
    }

    [Fact]
    public void Hand_written_bytes_parse_and_round_trip_plain_and_gzipped()
    {
        var a = IdxFile.Parse(s_handWritten, "hand");
        Assert.Equal([2, 3, 4], a.Dimensions);
        Assert.Equal(24, a.Data.Length);
        Assert.Equal(255, a.Data[23]);
        Assert.Equal(s_handWritten, IdxFile.ToBytes(a));

        var gz = IdxFile.Parse(Gzip(s_handWritten), "hand.gz");
        Assert.Equal(a.Dimensions, gz.Dimensions);
        Assert.Equal(a.Data, gz.Data);
        Assert.Equal(a.Data, IdxFile.Parse(IdxFile.ToBytes(a, gzip: true), "ours.gz").Data);

        using var tmp = new TempFolder();
        IdxFile.Write(tmp.Combine("x-idx3-ubyte.gz"), a, gzip: true);
        Assert.Equal(a.Data, IdxFile.Read(tmp.Combine("x-idx3-ubyte.gz")).Data);
    }

    [Theory]
    [InlineData(new byte[] { 0x00, 0x00 }, "truncated idx header")]
    [InlineData(new byte[] { 0x1f, 0x00, 0x08, 0x01, 0, 0, 0, 0 }, "bad magic")]
    [InlineData(new byte[] { 0x50, 0x4b, 0x03, 0x04, 0, 0, 0, 0 }, "bad magic")]
    [InlineData(new byte[] { 0x00, 0x00, 0x0D, 0x01, 0, 0, 0, 1, 0, 0, 0, 0 }, "element type 0x0d (float32)")]
    [InlineData(new byte[] { 0x00, 0x00, 0x08, 0x00 }, "0 dimensions")]
    [InlineData(new byte[] { 0x00, 0x00, 0x08, 0x02, 0, 0, 0, 2 }, "truncated idx header")]
    [InlineData(new byte[] { 0x00, 0x00, 0x08, 0x01, 0, 0, 0, 3, 1, 2 }, "truncated: dimensions [3] need 3 data bytes, the file has 2")]
    [InlineData(new byte[] { 0x00, 0x00, 0x08, 0x01, 0, 0, 0, 1, 1, 2 }, "1 unexpected bytes")]
    [InlineData(new byte[] { 0x00, 0x00, 0x08, 0x01, 0x80, 0, 0, 0 }, "beyond what a file can hold")]
    [InlineData(new byte[] { 0x1f, 0x8b, 0x08, 0x00, 1, 2, 3 }, "gzip")]
    public void Malformed_files_are_typed_errors(byte[] bytes, string problem)
    {
        using var tmp = new TempFolder();
        string path = tmp.Combine("bad-idx");
        File.WriteAllBytes(path, bytes);
        var ex = Assert.Throws<DatasetException>(() => IdxFile.Read(path));
        Assert.Equal(path, ex.File);
        Assert.Contains(problem, ex.Problem);
    }

    [Fact]
    public void Truncated_gzipped_data_is_caught_after_decompression()
    {
        var gz = Gzip(s_handWritten[..^5]);
        var ex = Assert.Throws<DatasetException>(() => IdxFile.Parse(gz, "t.gz"));
        Assert.Contains("truncated", ex.Problem);

        // A gzip file cut short: GZipStream yields a prefix silently; the trailer check catches it.
        var big = new IdxArray([64, 64], Enumerable.Range(0, 4096).Select(i => (byte)(i * 31 % 253)).ToArray());
        var whole = IdxFile.ToBytes(big, gzip: true);
        var cut = Assert.Throws<DatasetException>(() => IdxFile.Parse(whole[..(whole.Length * 2 / 3)], "cut.gz"));
        Assert.Equal("cut.gz", cut.File);
        Assert.Contains("gzip", cut.Problem);
    }

    private static IdxArray Images(int n, int h, int w) =>
        new([n, h, w], Enumerable.Range(0, n * h * w).Select(i => (byte)(i * 7 % 256)).ToArray());

    [Fact]
    public void Dataset_pairs_images_and_labels_and_checks_them()
    {
        var images = Images(5, 3, 4);
        var labels = new IdxArray([5], [3, 0, 9, 1, 3]);
        var ds = new IdxDataset(images, "img", labels, "lab", new ImagePipeline(ImageTransform.None), IdxDataset.MnistClassNames);
        Assert.Equal((5, 10, 3, 3, 4), (ds.Count, ds.ClassCount, ds.Channels, ds.Height, ds.Width));
        var dst = new float[3 * 12];
        var rng = default(SampleRandom);
        Assert.Equal(9, ds.Load(2, dst, ref rng));
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 12; i++)
                Assert.Equal(DataTestHelpers.Normalised(images.Data[2 * 12 + i], Normalization.ImageNet, c), dst[c * 12 + i], 5e-6);

        var grey = new IdxDataset(images, "img", labels, "lab", new ImagePipeline(ImageTransform.None, new Normalization([0.5f], [0.5f])));
        Assert.Equal(1, grey.Channels);
        Assert.Equal(10, grey.ClassCount);
        var one = new float[12];
        grey.Load(4, one, ref rng);
        for (int i = 0; i < 12; i++) Assert.Equal((images.Data[4 * 12 + i] / 255.0 - 0.5) / 0.5, one[i], 5e-6);

        var mismatch = Assert.Throws<DatasetException>(() => new IdxDataset(images, "img", new IdxArray([4], [0, 1, 2, 3]), "lab", ImagePipeline.Default));
        Assert.Equal("lab", mismatch.File);
        Assert.Contains("4 labels do not match the 5 images", mismatch.Problem);
        Assert.Throws<DatasetException>(() => new IdxDataset(new IdxArray([60], new byte[60]), "img", labels, "lab", ImagePipeline.Default));
        Assert.Throws<DatasetException>(() => new IdxDataset(images, "img", new IdxArray([5, 1], new byte[5]), "lab", ImagePipeline.Default));
        var outOfRange = Assert.Throws<DatasetException>(() => new IdxDataset(images, "img", labels, "lab", ImagePipeline.Default, ["a", "b"]));
        Assert.Contains("label 9", outOfRange.Problem);
    }

    private static string FashionMnistDirectory =>
        Environment.GetEnvironmentVariable("CRATEIL_FASHION_MNIST_DIR") is { Length: > 0 } d ? d : IdxDataset.DebianFashionMnistDirectory;

    [SkippableFact]
    public void Fashion_mnist_test_split_reads_when_installed()
    {
        string dir = FashionMnistDirectory;
        bool present = File.Exists(Path.Combine(dir, "t10k-labels-idx1-ubyte.gz")) || File.Exists(Path.Combine(dir, "t10k-labels-idx1-ubyte"));
        if (!present && Environment.GetEnvironmentVariable("CI") == "true")
            throw new InvalidOperationException($"Fashion-MNIST not found under {dir}; test.sh installs dataset-fashion-mnist under CI");
        Skip.IfNot(present, $"Fashion-MNIST not installed ({dir}); run test.sh as root or apt-get install dataset-fashion-mnist");

        var ds = IdxDataset.FashionMnist(dir, train: false, new ImagePipeline(ImageTransform.None, Normalization.UnitRange(1)));
        Assert.Equal((10000, 10, 1, 28, 28), (ds.Count, ds.ClassCount, ds.Channels, ds.Height, ds.Width));
        Assert.Equal("Ankle boot", ds.ClassNames[9]);
        // The published test split: 1000 images per class, first labels 9 2 1 1 6 (ankle boot, pullover, trouser, trouser, shirt).
        var counts = new int[10];
        for (int i = 0; i < ds.Count; i++) counts[ds.GetLabel(i)]++;
        Assert.All(counts, c => Assert.Equal(1000, c));
        Assert.Equal([9, 2, 1, 1, 6], Enumerable.Range(0, 5).Select(ds.GetLabel));
        var dst = new float[28 * 28];
        var rng = default(SampleRandom);
        ds.Load(0, dst, ref rng);
        Assert.InRange(dst.Max(), 0.9f, 1f);
        Assert.Equal(0f, dst[0]);
    }
}
