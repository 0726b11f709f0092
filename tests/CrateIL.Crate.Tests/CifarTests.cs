using CrateIL.Crate.Data;
using Xunit;

namespace CrateIL.Crate.Tests;

public class CifarTests
{
    /// <summary>Two records written by hand: label 3 with pixel value (c·1024 + p) mod 251, label 7 with 255 − that.</summary>
    private static byte[] TwoRecords()
    {
        var bytes = new byte[2 * 3073];
        bytes[0] = 3;
        bytes[3073] = 7;
        for (int i = 0; i < 3072; i++)
        {
            bytes[1 + i] = (byte)(i % 251);
            bytes[3073 + 1 + i] = (byte)(255 - i % 251);
        }
        return bytes;
    }

    [Fact]
    public void Records_parse_as_label_then_chw_pixels()
    {
        using var tmp = new TempFolder();
        File.WriteAllBytes(tmp.Combine("data_batch_1.bin"), TwoRecords());
        File.WriteAllBytes(tmp.Combine("data_batch_2.bin"), TwoRecords()[3073..]);
        var ds = new Cifar10Dataset([tmp.Combine("data_batch_1.bin"), tmp.Combine("data_batch_2.bin")],
            new ImagePipeline(ImageTransform.None, Normalization.UnitRange(3)));
        Assert.Equal((3, 10, 3, 32, 32), (ds.Count, ds.ClassCount, ds.Channels, ds.Height, ds.Width));
        Assert.Equal([3, 7, 7], Enumerable.Range(0, 3).Select(ds.GetLabel));
        Assert.Equal("cat", ds.ClassNames[3]);
        var dst = new float[3072];
        var rng = default(SampleRandom);
        Assert.Equal(3, ds.Load(0, dst, ref rng));
        // Red plane first, row-major: (c, y, x) is byte c·1024 + y·32 + x of the record.
        for (int i = 0; i < 3072; i++) Assert.Equal(i % 251 / 255.0, dst[i], 1e-7);
        Assert.Equal(7, ds.Load(2, dst, ref rng));
        Assert.Equal((255 - (1024 + 5 * 32 + 6) % 251) / 255.0, dst[1024 + 5 * 32 + 6], 1e-7);

        var flip = new Cifar10Dataset([tmp.Combine("data_batch_1.bin")], new ImagePipeline(new KeepSize(1), Normalization.UnitRange(3)));
        flip.Load(0, dst, ref rng);
        Assert.Equal((2048 + 9 * 32 + 0) % 251 / 255.0, dst[2048 + 9 * 32 + 31], 1e-7);
    }

    [Theory]
    [InlineData(3073 * 2 + 5, "not a whole number of 3073-byte records")]
    [InlineData(3072, "not a whole number of 3073-byte records")]
    [InlineData(0, "empty")]
    public void Wrong_sizes_are_typed_errors(int size, string problem)
    {
        using var tmp = new TempFolder();
        string path = tmp.Combine("data_batch_1.bin");
        File.WriteAllBytes(path, new byte[size]);
        var ex = Assert.Throws<DatasetException>(() => new Cifar10Dataset([path], ImagePipeline.Default));
        Assert.Equal(path, ex.File);
        Assert.Contains(problem, ex.Problem);
    }

    [Fact]
    public void Bad_labels_and_missing_files_are_typed_errors()
    {
        var bytes = TwoRecords();
        bytes[3073] = 10;
        var ex = Assert.Throws<DatasetException>(() => new Cifar10Dataset([(bytes, "b.bin")], ImagePipeline.Default));
        Assert.Equal("b.bin", ex.File);
        Assert.Contains("record 1 has label 10", ex.Problem);

        using var tmp = new TempFolder();
        File.WriteAllBytes(tmp.Combine("data_batch_1.bin"), TwoRecords());
        var missing = Assert.Throws<DatasetException>(() => Cifar10Dataset.FromDirectory(tmp.Path, train: true, ImagePipeline.Default));
        Assert.Equal(tmp.Combine("data_batch_2.bin"), missing.File);
        File.WriteAllBytes(tmp.Combine("test_batch.bin"), TwoRecords());
        Assert.Equal(2, Cifar10Dataset.FromDirectory(tmp.Path, train: false, ImagePipeline.Default).Count);
    }
}
