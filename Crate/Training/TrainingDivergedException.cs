namespace CrateIL.Crate.Training;

/// <summary>
/// Training produced a non-finite loss, gradient norm or weights. The trainer reads the loss and the gradient norm from
/// the device once per logging interval (<see cref="TrainerOptions.LogEvery"/>), so a bad value is found when its interval
/// is read: at the end of the interval, and at the latest before every checkpoint (each epoch's end, an interrupt),
/// where the weights are checked too. <see cref="Step"/> is the step that produced the first bad value;
/// <see cref="FirstStep"/>…<see cref="LastStep"/> the steps read together with it (the steps after it already ran in
/// memory). The run stops before anything is written, so the last checkpoint on disk is the last good state.
/// </summary>
public sealed class TrainingDivergedException : Exception
{
    /// <summary>A bad value found on its own (the weights before a checkpoint, or a value read right after its step).</summary>
    public TrainingDivergedException(int epoch, long step, string quantity, double value, string? lastCheckpoint)
        : this(epoch, step, quantity, value, lastCheckpoint, step, step)
    {
    }

    /// <summary>A bad value found when the values of steps <paramref name="firstStep"/>…<paramref name="lastStep"/> were read.</summary>
    public TrainingDivergedException(int epoch, long step, string quantity, double value, string? lastCheckpoint, long firstStep, long lastStep)
        : base($"training diverged at epoch {epoch}, optimizer step {step}: the {quantity} is {value}" +
               (lastStep > firstStep ? $" (found reading the values of optimizer steps {firstStep}–{lastStep}, one logging interval)" : "") +
               (lastCheckpoint is null ? "; no checkpoint was written yet" : $"; the last good checkpoint is {lastCheckpoint}"))
    {
        Epoch = epoch;
        Step = step;
        Quantity = quantity;
        Value = value;
        LastCheckpoint = lastCheckpoint;
        FirstStep = firstStep;
        LastStep = lastStep;
    }

    /// <summary>0-based epoch in which the bad value appeared.</summary>
    public int Epoch { get; }

    /// <summary>Optimizer steps completed before the step that produced the bad value (0-based index of that step).</summary>
    public long Step { get; }

    /// <summary>"loss", "gradient norm" or "weights' L2 norm".</summary>
    public string Quantity { get; }

    public double Value { get; }

    public string? LastCheckpoint { get; }

    /// <summary>First step (0-based, as <see cref="Step"/>) of the values read together with the bad one.</summary>
    public long FirstStep { get; }

    /// <summary>Last step (0-based, as <see cref="Step"/>) of the values read together with the bad one.</summary>
    public long LastStep { get; }
}
