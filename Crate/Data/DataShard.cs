namespace CrateIL.Crate.Data;

/// <summary>
/// This rank's part of every global batch in data-parallel training. The global order is the single-process order
/// (a <see cref="DataLoader"/> with the same seed); the samples of global step s are positions [s·B, (s + 1)·B) of
/// that order, B = <see cref="Ranks"/> · <see cref="BatchesPerStep"/> · batch size, and rank r takes the
/// <see cref="BatchesPerStep"/> consecutive loader batches starting at position s·B + r·B/Ranks. The ranks' shards
/// of an epoch are disjoint and together are what one process with batch B reads, in the same steps.
/// </summary>
public sealed record DataShard(int Rank, int Ranks, int BatchesPerStep)
{
    public DataShard Validate()
    {
        if (Ranks < 1) throw new ArgumentOutOfRangeException(nameof(Ranks), Ranks, "DataShard: a job has at least one rank");
        if (Rank < 0 || Rank >= Ranks) throw new ArgumentOutOfRangeException(nameof(Rank), Rank, $"DataShard: rank must be in [0, {Ranks})");
        if (BatchesPerStep < 1) throw new ArgumentOutOfRangeException(nameof(BatchesPerStep), BatchesPerStep, "DataShard: at least one batch per step");
        return this;
    }

    /// <summary>This rank's loader batches per epoch when the whole order holds <paramref name="globalBatches"/> batches (whole steps only).</summary>
    public int LocalBatches(int globalBatches) => globalBatches / (Ranks * BatchesPerStep) * BatchesPerStep;

    /// <summary>The global batch index (in the single-process order) of this rank's local batch <paramref name="local"/>.</summary>
    public int GlobalBatch(int local) =>
        local / BatchesPerStep * (Ranks * BatchesPerStep) + Rank * BatchesPerStep + local % BatchesPerStep;
}
