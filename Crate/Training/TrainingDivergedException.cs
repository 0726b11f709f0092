namespace CrateIL.Crate.Training;

/// <summary>
/// Training produced a non-finite loss, gradient norm or weights. The run stops before the optimizer step (or
/// before the checkpoint) that would spread the bad values, so the last checkpoint on disk is the last good state.
/// </summary>
public sealed class TrainingDivergedException : Exception
{
    public TrainingDivergedException(int epoch, long step, string quantity, double value, string? lastCheckpoint)
        : base($"training diverged at epoch {epoch}, optimizer step {step}: the {quantity} is {value}" +
               (lastCheckpoint is null ? "; no checkpoint was written yet" : $"; the last good checkpoint is {lastCheckpoint}"))
    {
        Epoch = epoch;
        Step = step;
        Quantity = quantity;
        Value = value;
        LastCheckpoint = lastCheckpoint;
    }

    /// <summary>0-based epoch in which the bad value appeared.</summary>
    public int Epoch { get; }

    /// <summary>Optimizer steps completed when the bad value appeared.</summary>
    public long Step { get; }

    /// <summary>"loss", "gradient norm" or "weights".</summary>
    public string Quantity { get; }

    public double Value { get; }

    public string? LastCheckpoint { get; }
}
