using CrateIL.Imaging;

namespace CrateIL.Crate.Data;

/// <summary>
/// MNIST-style idx pair: an images file [N, H, W] of grey bytes and a labels file [N]. Samples are grey; the pipeline
/// replicates them to 3 channels (3-channel normalisation, the default) or keeps 1 (a 1-channel normalisation such as
/// <see cref="Normalization.ImageNetGrey"/> or MNIST's own statistics).
/// </summary>
public sealed class IdxDataset : IDataset
{
    public static IReadOnlyList<string> FashionMnistClassNames { get; } =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    public static IReadOnlyList<string> MnistClassNames { get; } = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

    /// <summary>Where Debian's <c>dataset-fashion-mnist</c> package installs the files.</summary>
    public const string DebianFashionMnistDirectory = "/usr/share/datasets/fashion-mnist";

    private readonly byte[] _pixels;
    private readonly byte[] _labels;
    private readonly string[] _classNames;
    private readonly ImagePipeline _pipeline;
    private readonly int _sourceWidth, _sourceHeight;

    public IdxDataset(string imagesPath, string labelsPath, ImagePipeline pipeline, IReadOnlyList<string>? classNames = null)
        : this(IdxFile.Read(imagesPath), imagesPath, IdxFile.Read(labelsPath), labelsPath, pipeline, classNames) { }

    /// <summary>From parsed arrays; the paths only name them in errors.</summary>
    public IdxDataset(IdxArray images, string imagesSource, IdxArray labels, string labelsSource, ImagePipeline pipeline,
        IReadOnlyList<string>? classNames = null)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(pipeline);
        if (images.Dimensions.Count != 3)
            throw new DatasetException(imagesSource, $"images must be [N, H, W]; the file holds [{string.Join(", ", images.Dimensions)}]");
        if (labels.Dimensions.Count != 1)
            throw new DatasetException(labelsSource, $"labels must be [N]; the file holds [{string.Join(", ", labels.Dimensions)}]");
        int n = images.Dimensions[0];
        if (labels.Dimensions[0] != n)
            throw new DatasetException(labelsSource, $"{labels.Dimensions[0]} labels do not match the {n} images in {imagesSource}");
        if (n == 0) throw new DatasetException(imagesSource, "the file holds no images");
        _sourceHeight = images.Dimensions[1];
        _sourceWidth = images.Dimensions[2];
        if (_sourceHeight == 0 || _sourceWidth == 0) throw new DatasetException(imagesSource, $"images of size {_sourceWidth}×{_sourceHeight} are empty");

        int maxLabel = 0;
        foreach (byte b in labels.Data) maxLabel = Math.Max(maxLabel, b);
        if (classNames is not null && maxLabel >= classNames.Count)
            throw new DatasetException(labelsSource, $"label {maxLabel} is outside the {classNames.Count} classes given");
        _classNames = classNames is not null ? [.. classNames] : Enumerable.Range(0, maxLabel + 1).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();

        _pixels = images.Data;
        _labels = labels.Data;
        _pipeline = pipeline;
        Count = n;
        Channels = pipeline.Channels;
        (Width, Height) = pipeline.OutputSize(_sourceWidth, _sourceHeight);
    }

    /// <summary>
    /// Fashion-MNIST from <paramref name="directory"/> ({train,t10k}-{images-idx3,labels-idx1}-ubyte, with or without .gz).
    /// </summary>
    public static IdxDataset FashionMnist(string directory, bool train, ImagePipeline pipeline)
    {
        string prefix = train ? "train" : "t10k";
        return new IdxDataset(Find(directory, $"{prefix}-images-idx3-ubyte"), Find(directory, $"{prefix}-labels-idx1-ubyte"),
            pipeline, FashionMnistClassNames);
    }

    private static string Find(string directory, string name)
    {
        foreach (string candidate in new[] { name + ".gz", name })
        {
            string path = Path.Combine(directory, candidate);
            if (File.Exists(path)) return path;
        }
        throw new DatasetException(Path.Combine(directory, name), "missing (looked for the file with and without .gz)");
    }

    public int Count { get; }
    public int ClassCount => _classNames.Length;
    public IReadOnlyList<string> ClassNames => _classNames;
    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }
    public int SourceWidth => _sourceWidth;
    public int SourceHeight => _sourceHeight;

    /// <summary>The grey bytes of image <paramref name="index"/> (H·W, row-major).</summary>
    public ReadOnlySpan<byte> Pixels(int index)
    {
        DatasetChecks.Index(index, Count);
        int size = _sourceWidth * _sourceHeight;
        return _pixels.AsSpan(index * size, size);
    }

    public int GetLabel(int index)
    {
        DatasetChecks.Index(index, Count);
        return _labels[index];
    }

    public int Load(int index, Span<float> destination, ref SampleRandom random)
    {
        DatasetChecks.Destination(destination, Channels * Height * Width);
        var view = ImageView.Interleaved(Pixels(index), _sourceWidth, _sourceHeight, 1);
        _pipeline.Run(view, destination, ref random);
        return _labels[index];
    }
}
