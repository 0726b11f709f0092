namespace CrateIL.Crate.Training;

/// <summary>Which optimizer the trainer builds.</summary>
public enum OptimizerKind
{
    Lion,
    AdamW,
}

/// <summary>Everything that determines a training run besides the model configuration and the data.</summary>
public sealed record TrainerOptions
{
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.Lion;

    /// <summary>Peak learning rate of the warm-up + cosine schedule.</summary>
    public double LearningRate { get; init; } = 1e-4;

    /// <summary>Decoupled weight decay (both optimizers), applied to every parameter as the reference does.</summary>
    public double WeightDecay { get; init; } = 0.05;

    public double Beta1 { get; init; } = 0.9;

    /// <summary>β₂; Lion's reference value is 0.99, AdamW's 0.999.</summary>
    public double Beta2 { get; init; } = 0.99;

    /// <summary>Linear warm-up length in optimizer steps (the schedule is evaluated every step).</summary>
    public int WarmupSteps { get; init; }

    /// <summary>Floor of the cosine decay.</summary>
    public double MinLearningRate { get; init; }

    public float LabelSmoothing { get; init; } = 0.1f;

    /// <summary>Micro-batches per optimizer step; each micro-batch holds <see cref="BatchSize"/>/k images.</summary>
    public int AccumulationSteps { get; init; } = 1;

    /// <summary>Global L2 gradient-norm clip; null disables clipping (the norm is still measured and guarded).</summary>
    public float? ClipNorm { get; init; }

    public int Epochs { get; init; } = 1;

    /// <summary>
    /// Optimizer steps per logging interval; null: a tenth of an epoch (at least one step). The training loss of every
    /// micro-batch and the gradient norm of every step stay on the device and are read once per interval (intervals
    /// count within the epoch and also end with it, and the values are read before every checkpoint): then
    /// <see cref="Trainer.StepCompleted"/> reports the interval and non-finite values stop the run
    /// (<see cref="TrainingDivergedException"/>). The interval changes neither the weights nor the epoch metrics.
    /// </summary>
    public int? LogEvery { get; init; }

    /// <summary>Images per optimizer step (a multiple of <see cref="AccumulationSteps"/>).</summary>
    public int BatchSize { get; init; } = 32;

    public int EvalBatchSize { get; init; } = 64;

    /// <summary>Seeds the initialisation, the data order (seed, epoch) and the dropout masks (seed, step).</summary>
    public int Seed { get; init; }

    /// <summary>Images in the fixed probe batch (the first ones of the validation set).</summary>
    public int ProbeImages { get; init; } = 8;

    /// <summary>Data loader worker threads (0: load on the training thread).</summary>
    public int Workers { get; init; } = 1;

    /// <summary>
    /// Per-epoch checkpoint files (<c>epoch-NNNN.safetensors</c>) kept: the newest this many; 0 writes none.
    /// <c>last.safetensors</c> and <c>best.safetensors</c> are always written (<see cref="CheckpointRotation"/>).
    /// </summary>
    public int KeepEpochCheckpoints { get; init; } = 3;

    /// <summary>Where metrics and checkpoints go.</summary>
    public string OutputDirectory { get; init; } = "train-out";

    /// <summary>
    /// What the model expects of a photo (evaluation resize, normalisation, class names), stored in every checkpoint so
    /// the segmentation commands prepare images as the model saw them; null: nothing stored (readers assume the default).
    /// </summary>
    public Models.ModelInput? Input { get; init; }

    /// <summary>Data-parallel job this trainer is one rank of (null: a single process). See <see cref="IDataParallel"/>.</summary>
    public IDataParallel? DataParallel { get; init; }

    public TrainerOptions Validate()
    {
        void Require(bool ok, string name, object value, string why)
        {
            if (!ok) throw new ArgumentOutOfRangeException(name, value, $"TrainerOptions: {name} {why}");
        }
        Require(Enum.IsDefined(Optimizer), nameof(Optimizer), Optimizer, "is unknown");
        Require(LearningRate >= 0 && double.IsFinite(LearningRate), nameof(LearningRate), LearningRate, "must be finite and non-negative");
        Require(WeightDecay >= 0 && double.IsFinite(WeightDecay), nameof(WeightDecay), WeightDecay, "must be finite and non-negative");
        Require(WarmupSteps >= 0, nameof(WarmupSteps), WarmupSteps, "must be non-negative");
        Require(AccumulationSteps >= 1, nameof(AccumulationSteps), AccumulationSteps, "must be at least 1");
        Require(BatchSize >= 1 && BatchSize % AccumulationSteps == 0, nameof(BatchSize), BatchSize, $"must be a positive multiple of the accumulation steps ({AccumulationSteps})");
        Require(EvalBatchSize >= 1, nameof(EvalBatchSize), EvalBatchSize, "must be positive");
        Require(Epochs >= 1, nameof(Epochs), Epochs, "must be at least 1");
        Require(LogEvery is null or >= 1, nameof(LogEvery), LogEvery!, "must be at least 1");
        Require(ClipNorm is null || (ClipNorm > 0 && float.IsFinite(ClipNorm.Value)), nameof(ClipNorm), ClipNorm!, "must be finite and positive");
        Require(LabelSmoothing is >= 0f and <= 1f, nameof(LabelSmoothing), LabelSmoothing, "must be in [0, 1]");
        Require(ProbeImages >= 0, nameof(ProbeImages), ProbeImages, "must be non-negative");
        Require(Workers >= 0, nameof(Workers), Workers, "must be non-negative");
        Require(KeepEpochCheckpoints >= 0, nameof(KeepEpochCheckpoints), KeepEpochCheckpoints, "must be non-negative");
        return this;
    }
}
