namespace CrateIL.Crate.Data;

/// <summary>
/// A labelled image dataset whose samples are float32 CHW tensors of one fixed shape. <see cref="Load"/> must be safe to
/// call from several threads at once, and its output must depend only on the index and the random stream it is given
/// (which <see cref="DataLoader"/> derives from the seed, epoch and index), so batches are reproducible.
/// </summary>
public interface IDataset
{
    int Count { get; }

    /// <summary>Number of classes; labels lie in [0, ClassCount). 0 for an unlabelled dataset (labels are then −1).</summary>
    int ClassCount { get; }

    IReadOnlyList<string> ClassNames { get; }

    int Channels { get; }
    int Height { get; }
    int Width { get; }

    /// <summary>Floats in one sample: Channels·Height·Width.</summary>
    int SampleLength => Channels * Height * Width;

    /// <summary>The label of sample <paramref name="index"/> without decoding its image.</summary>
    int GetLabel(int index);

    /// <summary>Writes sample <paramref name="index"/> into <paramref name="destination"/> (SampleLength floats) and returns its label.</summary>
    int Load(int index, Span<float> destination, ref SampleRandom random);
}

internal static class DatasetChecks
{
    public static void Index(int index, int count)
    {
        if ((uint)index >= (uint)count) throw new ArgumentOutOfRangeException(nameof(index), $"sample {index} is outside [0, {count})");
    }

    public static void Destination(Span<float> destination, int length)
    {
        if (destination.Length < length)
            throw new ArgumentException($"destination holds {destination.Length} floats; a sample needs {length}", nameof(destination));
    }
}
