namespace CrateIL.Crate.Data;

/// <summary>
/// Samples already held as a float32 NCHW array (e.g. read from an .npy file by an array reader), with optional int
/// labels. Samples are copied as they are: no transform, no normalisation. This is the whole contract an .npy dataset
/// needs: the reader supplies the data and the shape.
/// </summary>
public sealed class ArrayDataset : IDataset
{
    private readonly ReadOnlyMemory<float> _images;
    private readonly int[]? _labels;
    private readonly string[] _classNames;

    /// <param name="images">Count·channels·height·width floats, NCHW.</param>
    /// <param name="shape">[N, C, H, W].</param>
    /// <param name="labels">N labels in [0, classCount), or null for an unlabelled set (labels read as −1).</param>
    /// <param name="classNames">Class names; when null, "0".."K−1" with K = max label + 1.</param>
    /// <param name="source">Names the data in errors (the .npy path).</param>
    public ArrayDataset(ReadOnlyMemory<float> images, IReadOnlyList<int> shape, IReadOnlyList<int>? labels = null,
        IReadOnlyList<string>? classNames = null, string source = "array")
    {
        ArgumentNullException.ThrowIfNull(shape);
        if (shape.Count != 4) throw new DatasetException(source, $"images must be [N, C, H, W]; got [{string.Join(", ", shape)}]");
        if (shape.Any(d => d <= 0)) throw new DatasetException(source, $"shape [{string.Join(", ", shape)}] has an empty dimension");
        long n = (long)shape[0] * shape[1] * shape[2] * shape[3];
        if (n != images.Length) throw new DatasetException(source, $"shape [{string.Join(", ", shape)}] needs {n} floats; the array holds {images.Length}");
        Count = shape[0];
        Channels = shape[1];
        Height = shape[2];
        Width = shape[3];
        _images = images;
        if (labels is not null)
        {
            if (labels.Count != Count) throw new DatasetException(source, $"{labels.Count} labels do not match the {Count} images");
            int max = -1;
            for (int i = 0; i < labels.Count; i++)
            {
                if (labels[i] < 0) throw new DatasetException(source, $"label {labels[i]} of sample {i} is negative");
                max = Math.Max(max, labels[i]);
            }
            if (classNames is not null && max >= classNames.Count)
                throw new DatasetException(source, $"label {max} is outside the {classNames.Count} classes given");
            _labels = [.. labels];
            _classNames = classNames is not null ? [.. classNames] : Enumerable.Range(0, max + 1).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        }
        else
        {
            _classNames = classNames is not null ? [.. classNames] : [];
        }
    }

    public int Count { get; }
    public int ClassCount => _labels is null ? 0 : _classNames.Length;
    public IReadOnlyList<string> ClassNames => _classNames;
    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }

    public int GetLabel(int index)
    {
        DatasetChecks.Index(index, Count);
        return _labels is null ? -1 : _labels[index];
    }

    public int Load(int index, Span<float> destination, ref SampleRandom random)
    {
        int length = Channels * Height * Width;
        DatasetChecks.Index(index, Count);
        DatasetChecks.Destination(destination, length);
        _images.Span.Slice(index * length, length).CopyTo(destination);
        return _labels is null ? -1 : _labels[index];
    }
}

/// <summary>A view of some samples of another dataset, in the given order (e.g. the first 5000 of Fashion-MNIST).</summary>
public sealed class SubsetDataset : IDataset
{
    private readonly IDataset _inner;
    private readonly int[] _indices;

    public SubsetDataset(IDataset inner, IReadOnlyList<int> indices)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(indices);
        foreach (int i in indices) DatasetChecks.Index(i, inner.Count);
        _inner = inner;
        _indices = [.. indices];
    }

    /// <summary>The first <paramref name="count"/> samples.</summary>
    public static SubsetDataset First(IDataset inner, int count) =>
        new(inner, Enumerable.Range(0, Math.Min(count, inner.Count)).ToArray());

    public int Count => _indices.Length;
    public int ClassCount => _inner.ClassCount;
    public IReadOnlyList<string> ClassNames => _inner.ClassNames;
    public int Channels => _inner.Channels;
    public int Height => _inner.Height;
    public int Width => _inner.Width;

    public int GetLabel(int index)
    {
        DatasetChecks.Index(index, Count);
        return _inner.GetLabel(_indices[index]);
    }

    public int Load(int index, Span<float> destination, ref SampleRandom random)
    {
        DatasetChecks.Index(index, Count);
        return _inner.Load(_indices[index], destination, ref random);
    }
}
