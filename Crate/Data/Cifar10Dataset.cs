using CrateIL.Imaging;

namespace CrateIL.Crate.Data;

/// <summary>
/// The CIFAR-10 binary version: files of 3073-byte records, one label byte (0..9) then 3072 pixel bytes in CHW order
/// (1024 red, 1024 green, 1024 blue; rows top to bottom). Every file is read into memory when the dataset is built.
/// </summary>
public sealed class Cifar10Dataset : IDataset
{
    public const int Side = 32;
    public const int RecordLength = 1 + 3 * Side * Side;

    public static IReadOnlyList<string> CifarClassNames { get; } =
        ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

    private readonly byte[] _records;
    private readonly ImagePipeline _pipeline;

    /// <summary>Reads the given batch files (in order).</summary>
    public Cifar10Dataset(IReadOnlyList<string> files, ImagePipeline pipeline)
        : this(files.Select(f => (ReadAll(f), f)).ToList(), pipeline) { }

    /// <summary>From file contents; the names only appear in errors.</summary>
    public Cifar10Dataset(IReadOnlyList<(byte[] Bytes, string Source)> files, ImagePipeline pipeline)
    {
        ArgumentNullException.ThrowIfNull(files);
        ArgumentNullException.ThrowIfNull(pipeline);
        if (files.Count == 0) throw new ArgumentException("no CIFAR-10 batch files given", nameof(files));
        long total = 0;
        foreach (var (bytes, source) in files)
        {
            if (bytes.Length == 0) throw new DatasetException(source, "the CIFAR-10 batch file is empty");
            if (bytes.Length % RecordLength != 0)
                throw new DatasetException(source, $"size {bytes.Length} bytes is not a whole number of {RecordLength}-byte records (1 label + 3×32×32 pixels); {bytes.Length / RecordLength} records and {bytes.Length % RecordLength} bytes over");
            for (int r = 0, n = bytes.Length / RecordLength; r < n; r++)
            {
                byte label = bytes[r * RecordLength];
                if (label >= 10) throw new DatasetException(source, $"record {r} has label {label}; CIFAR-10 labels are 0..9");
            }
            total += bytes.Length;
        }
        if (total > int.MaxValue) throw new ArgumentException($"{total} bytes of records exceed what one array holds", nameof(files));
        _records = new byte[total];
        int offset = 0;
        foreach (var (bytes, _) in files)
        {
            bytes.CopyTo(_records, offset);
            offset += bytes.Length;
        }
        _pipeline = pipeline;
        Count = (int)(total / RecordLength);
        Channels = pipeline.Channels;
        if (Channels != 3) throw new ArgumentException("CIFAR-10 images are RGB: use a 3-channel normalisation", nameof(pipeline));
        (Width, Height) = pipeline.OutputSize(Side, Side);
    }

    /// <summary>
    /// The training (data_batch_1..5.bin) or test (test_batch.bin) split from a <c>cifar-10-batches-bin</c> folder.
    /// </summary>
    public static Cifar10Dataset FromDirectory(string directory, bool train, ImagePipeline pipeline)
    {
        string[] names = train ? [.. Enumerable.Range(1, 5).Select(i => $"data_batch_{i}.bin")] : ["test_batch.bin"];
        var paths = names.Select(n => Path.Combine(directory, n)).ToArray();
        foreach (string p in paths)
            if (!File.Exists(p)) throw new DatasetException(p, "missing CIFAR-10 batch file");
        return new Cifar10Dataset(paths, pipeline);
    }

    private static byte[] ReadAll(string path)
    {
        try
        {
            return File.ReadAllBytes(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new DatasetException(path, $"cannot read the CIFAR-10 batch file: {ex.Message}", ex);
        }
    }

    public int Count { get; }
    public int ClassCount => 10;
    public IReadOnlyList<string> ClassNames => CifarClassNames;
    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }

    /// <summary>The 3072 CHW pixel bytes of record <paramref name="index"/>.</summary>
    public ReadOnlySpan<byte> Pixels(int index)
    {
        DatasetChecks.Index(index, Count);
        return _records.AsSpan(index * RecordLength + 1, RecordLength - 1);
    }

    public int GetLabel(int index)
    {
        DatasetChecks.Index(index, Count);
        return _records[index * RecordLength];
    }

    public int Load(int index, Span<float> destination, ref SampleRandom random)
    {
        DatasetChecks.Destination(destination, Channels * Height * Width);
        var view = ImageView.Planar(Pixels(index), Side, Side, 3);
        _pipeline.Run(view, destination, ref random);
        return _records[index * RecordLength];
    }
}
