namespace CrateIL.Crate.Training;

/// <summary>
/// The run was cancelled (e.g. Ctrl-C): the trainer finished the optimizer step in flight, wrote a resumable checkpoint
/// of exactly that step (<see cref="Checkpoint"/>; <see cref="Trainer.Resume"/> continues from it as if never stopped)
/// and stopped.
/// </summary>
public sealed class TrainingInterruptedException : OperationCanceledException
{
    public TrainingInterruptedException(int epoch, int stepInEpoch, int stepsPerEpoch, long step, string checkpoint, CancellationToken token)
        : base($"training interrupted in epoch {epoch + 1} after step {stepInEpoch} of {stepsPerEpoch} ({step} optimizer steps in all); checkpoint {checkpoint}", token)
    {
        Epoch = epoch;
        StepInEpoch = stepInEpoch;
        StepsPerEpoch = stepsPerEpoch;
        Step = step;
        Checkpoint = checkpoint;
    }

    /// <summary>0-based epoch that was in progress.</summary>
    public int Epoch { get; }

    /// <summary>Optimizer steps of that epoch already taken (and in the checkpoint).</summary>
    public int StepInEpoch { get; }

    public int StepsPerEpoch { get; }

    /// <summary>Optimizer steps of the whole run taken.</summary>
    public long Step { get; }

    /// <summary>Full path of the resumable checkpoint written at the interruption.</summary>
    public string Checkpoint { get; }
}
