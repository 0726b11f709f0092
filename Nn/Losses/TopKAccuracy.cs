using System.Buffers;
using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;

namespace CrateIL.Nn.Losses;

/// <summary>Correct top-1 and top-5 predictions of one batch.</summary>
public readonly record struct TopKCounts(int Top1, int Top5, int Rows);

/// <summary>
/// Top-k accuracy counts on the host (logits are copied back once). A row counts as correct at k when its
/// label's rank is below k, where rank = classes with a strictly larger logit + equal logits at a smaller
/// class index (a deterministic tie order). With fewer than k classes every row is correct at k, as timm's
/// <c>accuracy</c> clamps k to the class count.
/// </summary>
public static class TopKAccuracy
{
    /// <summary>Top-1 and top-5 counts over the rows of <paramref name="logits"/> [rows, classes].</summary>
    public static TopKCounts Count(Tensor logits, ReadOnlySpan<int> labels)
    {
        Span<int> ks = [1, 5];
        Span<int> counts = stackalloc int[2];
        Count(logits, labels, ks, counts);
        return new TopKCounts(counts[0], counts[1], labels.Length);
    }

    /// <summary>Correct predictions at each k of <paramref name="ks"/>, written to <paramref name="counts"/>.</summary>
    public static void Count(Tensor logits, ReadOnlySpan<int> labels, ReadOnlySpan<int> ks, Span<int> counts)
    {
        ArgumentNullException.ThrowIfNull(logits);
        if (logits.Rank < 1 || logits.Shape.LastDim < 1)
            throw new ArgumentException($"TopKAccuracy: logits{logits.Shape} need a non-empty class dimension", nameof(logits));
        int classes = logits.Shape.LastDim;
        long rows = logits.Shape.Rows;
        if (labels.Length != rows)
            throw new ArgumentException($"TopKAccuracy: {labels.Length} labels for {rows} rows of logits{logits.Shape}", nameof(labels));
        if (counts.Length != ks.Length)
            throw new ArgumentException($"TopKAccuracy: {counts.Length} count slots for {ks.Length} values of k", nameof(counts));
        foreach (int k in ks)
            if (k < 1) throw new ArgumentOutOfRangeException(nameof(ks), k, "TopKAccuracy: k must be at least 1");
        for (int r = 0; r < labels.Length; r++)
            if ((uint)labels[r] >= (uint)classes)
                throw new ArgumentOutOfRangeException(nameof(labels), labels[r], $"TopKAccuracy: label {labels[r]} of row {r} is outside [0, {classes})");
        counts.Clear();
        if (rows == 0) return;

        float[]? rented = null;
        ReadOnlySpan<float> host;
        if (logits.Device is CpuDevice) host = logits.AsSpan();
        else
        {
            rented = ArrayPool<float>.Shared.Rent(checked((int)logits.Length));
            logits.CopyTo(rented.AsSpan(0, (int)logits.Length));
            host = rented.AsSpan(0, (int)logits.Length);
        }
        try
        {
            for (int r = 0; r < labels.Length; r++)
            {
                var row = host.Slice(r * classes, classes);
                int label = labels[r];
                float target = row[label];
                int rank = 0;
                for (int c = 0; c < classes; c++)
                    if (row[c] > target || (row[c] == target && c < label)) rank++;
                // A NaN logit at the label never counts as correct.
                if (float.IsNaN(target)) rank = int.MaxValue;
                for (int j = 0; j < ks.Length; j++)
                    if (rank < ks[j]) counts[j]++;
            }
        }
        finally
        {
            if (rented is not null) ArrayPool<float>.Shared.Return(rented);
        }
    }
}
