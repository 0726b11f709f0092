using System.Diagnostics;
using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;
using CrateIL.Crate.Checkpoints;
using CrateIL.Crate.Data;
using CrateIL.Crate.Models;
using CrateIL.Nn.Losses;
using CrateIL.Nn.Optim;

namespace CrateIL.Crate.Training;

/// <summary>
/// Supervised training of a <see cref="CrateModel"/>: Lion or AdamW with a per-step warm-up + cosine schedule,
/// label-smoothed cross-entropy, gradient accumulation over k micro-batches (parameter gradients accumulate, each
/// micro-batch's loss weighted by its share of the step's images; gradients zeroed once per step, before its first
/// backward), optional global norm clipping, per-epoch evaluation (top-1/top-5, loss), white-box probes on a fixed batch, metrics appended to
/// CSV and JSON lines, and atomically written checkpoints (<see cref="TrainingCheckpoint"/>) rotated by
/// <see cref="CheckpointRotation"/>: <c>last</c> after every epoch, <c>best</c> by validation top-1, the newest
/// <see cref="TrainerOptions.KeepEpochCheckpoints"/> per-epoch files. A cancelled run (<see cref="Run"/>'s token, e.g.
/// Ctrl-C) stops between optimizer steps and writes a resumable mid-epoch <c>last</c> checkpoint.
/// <para>
/// Determinism: the data order of epoch e comes from (seed, e) (<see cref="DataLoader"/>), a sample's augmentation
/// from (seed, e, index), the dropout mask of micro-batch j of step s from (seed, s·k + j); nothing else is random,
/// so resuming from epoch k's checkpoint, or from one written on interrupt after any step, reproduces the uninterrupted
/// run bit for bit on the same device.
/// </para>
/// <para>
/// A lean step: nothing waits for the device inside a logging interval (<see cref="TrainerOptions.LogEvery"/>). Each
/// micro-batch's labels are uploaded once (the loss's forward and backward share them), its mean loss is written to a
/// device slot, and the gradient norm is reduced and clipping applied on the device (<see cref="TrainingMeter"/>); the
/// values are read once per interval, as a PyTorch loop calls <c>loss.item()</c> only when it logs.
/// </para>
/// A non-finite loss or gradient norm stops the run with <see cref="TrainingDivergedException"/> when its interval is
/// read: at the end of the interval, and at the latest before any checkpoint is written (each epoch's end, an interrupt),
/// where non-finite weights stop it too. The steps of the interval after the bad one have already run in memory, but
/// nothing is written, so the last checkpoint on disk stays the last good state.
/// </summary>
public sealed partial class Trainer : IDisposable
{
    private readonly IDataset _train;
    private readonly IDataset _validation;
    private readonly DataLoader _loader;
    private readonly SoftmaxCrossEntropyLoss _loss;
    private readonly SoftmaxCrossEntropyLoss _evalLoss = new();
    private readonly GradientClipper _clipper;
    private readonly TrainingMeter _meter = null!;
    // One-element slots for the step-by-step drivers (Accumulate, ApplyStep), which read every value at once.
    private readonly Tensor _lossNow = null!, _normNow = null!;
    private readonly WarmupCosineSchedule _schedule;
    private readonly MetricsLog _metrics;
    private readonly Dictionary<int, Tensor> _inputs = [];
    private readonly Tensor _dLogits;
    private Tensor? _probeImages;
    private readonly List<EpochMetrics> _history = [];
    private readonly CheckpointRotation _checkpoints;
    // A run resumed from a checkpoint written on interrupt: steps of the epoch in progress already taken, and its sums.
    private int _stepInEpoch;
    private PartialEpoch? _partial;
    private bool _staleFilesChecked;
    private bool _disposed;

    /// <summary>A fresh run: the model is initialised from <see cref="TrainerOptions.Seed"/>.</summary>
    public Trainer(CrateConfig config, IDataset train, IDataset validation, TrainerOptions options, Device device)
        : this(config, train, validation, options, device, resumeFrom: null)
    {
    }

    private Trainer(CrateConfig config, IDataset train, IDataset validation, TrainerOptions options, Device device, string? resumeFrom)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(validation);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(device);
        Options = options.Validate();
        CheckData(config, train, "training");
        CheckData(config, validation, "validation");
        _train = train;
        _validation = validation;
        MicroBatch = LocalMicroBatch(options);
        if (train.Count < options.BatchSize)
            throw new ArgumentException($"Trainer: the training set has {train.Count} images, fewer than one batch of {options.BatchSize}", nameof(train));
        _loader = new DataLoader(train, MicroBatch, shuffle: true, seed: options.Seed, workers: options.Workers, dropLast: true, shard: ShardOf(options));
        StepsPerEpoch = _loader.BatchesPerEpoch / options.AccumulationSteps;
        long total = (long)options.Epochs * StepsPerEpoch;
        if (options.WarmupSteps >= total)
            throw new ArgumentOutOfRangeException(nameof(options), options.WarmupSteps, $"Trainer: {options.WarmupSteps} warm-up steps leave nothing of the {total} steps of the run");
        _schedule = new WarmupCosineSchedule(options.LearningRate, options.WarmupSteps, total, options.MinLearningRate);
        _loss = new SoftmaxCrossEntropyLoss(options.LabelSmoothing);
        _metrics = new MetricsLog(options.OutputDirectory, config.Depth);
        _checkpoints = new CheckpointRotation(options.OutputDirectory, options.KeepEpochCheckpoints);
        Model = new CrateModel(config, device, options.Seed);
        try
        {
            Optimizer = options.Optimizer switch
            {
                OptimizerKind.Lion => new Lion(Model.Parameters, options.LearningRate, options.WeightDecay, options.Beta1, options.Beta2),
                _ => new AdamW(Model.Parameters, options.LearningRate, options.WeightDecay, options.Beta1, options.Beta2),
            };
            _clipper = new GradientClipper(device);
            _dLogits = device.Allocate(MicroBatch, config.Classes);
            LogEvery = options.LogEvery ?? Math.Max(1, StepsPerEpoch / 10);
            _meter = new TrainingMeter(device, Math.Max(1, Math.Min(LogEvery, StepsPerEpoch)), options.AccumulationSteps);
            _lossNow = device.Allocate(1);
            _normNow = device.Allocate(1);
            if (resumeFrom is not null) RestoreFrom(resumeFrom);
            StartDataParallel(config);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>
    /// Continues a run from a checkpoint of <see cref="TrainingCheckpoint"/>: configuration, weights, optimizer state
    /// and step count, position and best metric come from the file; the seed too (it overrides
    /// <paramref name="options"/>'s). The other options must describe the same run for an exact continuation.
    /// </summary>
    public static Trainer Resume(string checkpoint, IDataset train, IDataset validation, TrainerOptions options, Device device)
    {
        ArgumentNullException.ThrowIfNull(options);
        var state = TrainingCheckpoint.ReadState(checkpoint);
        var config = CrateCheckpoint.ReadConfig(checkpoint);
        // The input description travels with the run: a resumed run keeps the one its first checkpoint stored.
        var metadata = Safetensors.ReadHeader(checkpoint).Metadata;
        var input = options.Input ?? (metadata.ContainsKey(ModelInput.MetadataKey) ? ModelInput.From(metadata, config, checkpoint) : null);
        return new Trainer(config, train, validation, options with { Seed = state.Seed, Input = input }, device, checkpoint);
    }

    public TrainerOptions Options { get; }
    public CrateModel Model { get; }
    public Optimizer Optimizer { get; } = null!;

    /// <summary>Images per forward/backward pass: batch / accumulation steps.</summary>
    public int MicroBatch { get; }

    public int StepsPerEpoch { get; }

    /// <summary>Label batches the training loss copied to the device: one per micro-batch trained.</summary>
    internal long LabelUploads => _loss.LabelUploads;

    /// <summary>Optimizer steps per logging interval: <see cref="TrainerOptions.LogEvery"/>, or a tenth of an epoch (at least 1).</summary>
    public int LogEvery { get; }
    public int EpochsCompleted { get; private set; }

    /// <summary>Optimizer steps taken (also the schedule position of the next step).</summary>
    public long Step { get; private set; }

    public double BestTop1 { get; private set; } = double.NegativeInfinity;
    public int BestEpoch { get; private set; }

    /// <summary>The metrics of every epoch this trainer ran, in order (a resumed run starts empty).</summary>
    public IReadOnlyList<EpochMetrics> History => _history;

    /// <summary>Optimizer steps of the epoch in progress already taken (non-zero after resuming an interrupted epoch).</summary>
    public int StepInEpoch => _stepInEpoch;

    /// <summary>The most recent checkpoint: <c>last.safetensors</c> once an epoch finished or the run was interrupted, the resumed file before (null for a fresh run before its first epoch).</summary>
    public string? LastCheckpoint { get; private set; }

    /// <summary>The checkpoint files of <see cref="TrainerOptions.OutputDirectory"/>.</summary>
    public CheckpointRotation Checkpoints => _checkpoints;

    /// <summary>Names of the stale temporary files (of killed checkpoint writes) removed from the output directory so far.</summary>
    public IReadOnlyList<string> RemovedTemporaryFiles { get; private set; } = [];

    /// <summary>
    /// Removes the temporary files killed checkpoint writes left in the output directory (only names of
    /// <see cref="AtomicFile.TemporaryName"/>'s shape), once per trainer, before it writes there; <see cref="Run"/>
    /// calls it, a caller may call it earlier to report them. Returns <see cref="RemovedTemporaryFiles"/>.
    /// </summary>
    public IReadOnlyList<string> RemoveStaleTemporaryFiles()
    {
        if (!_staleFilesChecked)
        {
            RemovedTemporaryFiles = IsWriter ? _checkpoints.RemoveStaleTemporaryFiles() : [];
            _staleFilesChecked = true;
        }
        return RemovedTemporaryFiles;
    }

    /// <summary>The learning rate of the schedule at optimizer step <paramref name="step"/> (0-based), for plots.</summary>
    public double LearningRateAt(long step) => _schedule.At(step);

    /// <summary>Called after every epoch with its metrics (the CLI prints one line).</summary>
    public Action<EpochMetrics>? EpochCompleted { get; set; }

    /// <summary>
    /// Called once per logging interval (<see cref="LogEvery"/> steps, counted within the epoch; an epoch's last interval
    /// may be shorter, and an interrupt reports the steps since the last one) when its values have been read from the
    /// device: the last step taken, the run's total steps, the interval's mean training loss over its micro-batches, the
    /// learning rate of its last step, its mean gradient norm and its number of steps.
    /// </summary>
    public Action<StepProgress>? StepCompleted { get; set; }

    /// <summary>Optimizer steps of the whole run: epochs × steps per epoch.</summary>
    public long TotalSteps => (long)Options.Epochs * StepsPerEpoch;

    /// <summary>Path of the per-epoch checkpoint written after <paramref name="epochs"/> epochs (kept for the newest <see cref="TrainerOptions.KeepEpochCheckpoints"/>).</summary>
    public string CheckpointPath(int epochs) => _checkpoints.EpochPath(epochs);

    /// <summary>
    /// Trains the remaining epochs up to <see cref="TrainerOptions.Epochs"/>; returns their metrics. First removes the
    /// temporary files killed checkpoint writes left in the output directory. When <paramref name="cancellation"/> is
    /// signalled, the step in flight finishes, a resumable checkpoint of it is written to <c>last.safetensors</c> and
    /// <see cref="TrainingInterruptedException"/> is thrown.
    /// </summary>
    public IReadOnlyList<EpochMetrics> Run(CancellationToken cancellation = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Directory.CreateDirectory(Options.OutputDirectory);
        RemoveStaleTemporaryFiles();
        var results = new List<EpochMetrics>();
        while (EpochsCompleted < Options.Epochs) results.Add(RunEpoch(cancellation));
        return results;
    }

    /// <summary>
    /// One epoch (the rest of it, after resuming an interrupted one): training steps, evaluation, probes, metrics,
    /// checkpoints. <paramref name="cancellation"/> is checked before the first step and after every step.
    /// </summary>
    public EpochMetrics RunEpoch(CancellationToken cancellation = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Directory.CreateDirectory(Options.OutputDirectory);
        int epoch = EpochsCompleted, k = Options.AccumulationSteps;
        var partial = _partial ?? new PartialEpoch();
        int stepInEpoch = _stepInEpoch;
        var sums = new EpochSums { LossSum = partial.LossSum, NormSum = partial.GradNormSum, MicroBatches = partial.MicroBatches };
        int images = 0, micro = 0;
        PartialEpoch SoFar() => new() { LossSum = sums.LossSum, GradNormSum = sums.NormSum, MicroBatches = sums.MicroBatches, Images = partial.Images + images };
        if (cancellation.IsCancellationRequested) Interrupt(epoch, stepInEpoch, SoFar(), cancellation);
        Model.Training = true;
        var clock = Stopwatch.StartNew();
        int budget = (StepsPerEpoch - stepInEpoch) * k, taken = 0;
        // Values left unread by an epoch an exception cut short belong to no interval of this one.
        _meter.Discard();
        long intervalStart = Step;
        double lastRate = 0;
        foreach (var batch in _loader.Epoch(epoch, stepInEpoch * k))
        {
            if (taken == budget) break;
            AccumulateOnDevice(batch.ImagesSpan, batch.LabelsSpan, batch.Count, 1f / k, micro, _meter.NextLoss());
            taken++;
            images += batch.Count;
            if (++micro == k)
            {
                lastRate = _schedule.At(Step);
                ApplyStepOnDevice(_meter.NextNorm());
                stepInEpoch++;
                micro = 0;
                if (stepInEpoch % LogEvery == 0 || stepInEpoch == StepsPerEpoch)
                {
                    ReadInterval(epoch, intervalStart, lastRate, sums);
                    intervalStart = Step;
                }
                if (cancellation.IsCancellationRequested)
                {
                    Model.Training = false;
                    ReadInterval(epoch, intervalStart, lastRate, sums);
                    Interrupt(epoch, stepInEpoch, SoFar(), cancellation);
                }
            }
        }
        clock.Stop();
        // Micro-batches of a step the loader could not complete count in the loss, as they always did.
        ReadInterval(epoch, intervalStart, lastRate, sums);
        var (lossSum, microBatches, imagesOverRanks) = SumOverRanks(sums.LossSum, sums.MicroBatches, images);
        double normSum = sums.NormSum;
        images = imagesOverRanks;
        Model.Training = false;
        double lr = _schedule.At(Math.Max(0, Step - 1));
        var (valLoss, top1, top5) = Evaluate();
        var probes = Probe();
        // Images per second of this process's share of the epoch (a resumed epoch's earlier steps ran in another).
        var metrics = new EpochMetrics(epoch + 1, Step, lr, lossSum / Math.Max(1, microBatches), valLoss, top1, top5,
            images / Math.Max(1e-9, clock.Elapsed.TotalSeconds), normSum / Math.Max(1, StepsPerEpoch), probes);
        bool isBest = top1 > BestTop1;
        if (isBest)
        {
            BestTop1 = top1;
            BestEpoch = epoch + 1;
        }
        CheckWeights(epoch);
        EpochsCompleted = epoch + 1;
        _stepInEpoch = 0;
        _partial = null;
        // In a data-parallel job every rank holds the same weights; only the writer (rank 0) touches the files.
        if (IsWriter)
        {
            _checkpoints.EpochFinished(EpochsCompleted, isBest, path => TrainingCheckpoint.Save(path, Model, Optimizer, CurrentState(), Options.Input));
            _metrics.Append(metrics);
        }
        LastCheckpoint = _checkpoints.LastPath;
        _history.Add(metrics);
        EpochCompleted?.Invoke(metrics);
        return metrics;
    }

    /// <summary>Writes the resumable checkpoint of the step just taken to <c>last</c> and throws <see cref="TrainingInterruptedException"/>.</summary>
    private void Interrupt(int epoch, int stepInEpoch, PartialEpoch partial, CancellationToken cancellation)
    {
        CheckWeights(epoch);
        _stepInEpoch = stepInEpoch;
        _partial = partial;
        Directory.CreateDirectory(Options.OutputDirectory);
        if (IsWriter)
            TrainingCheckpoint.Save(_checkpoints.LastPath, Model, Optimizer, CurrentState() with { StepInEpoch = stepInEpoch, Partial = partial }, Options.Input);
        LastCheckpoint = _checkpoints.LastPath;
        throw new TrainingInterruptedException(epoch, stepInEpoch, StepsPerEpoch, Step, LastCheckpoint, cancellation);
    }

    private void CheckWeights(int epoch)
    {
        float weightNorm = _clipper.Norm(Model.Parameters.Values);
        if (!float.IsFinite(weightNorm)) throw new TrainingDivergedException(epoch, Step, "weights' L2 norm", weightNorm, LastCheckpoint);
    }

    /// <summary>Running sums of the epoch in progress (this process's share), fed by <see cref="ReadInterval"/>.</summary>
    private sealed class EpochSums
    {
        public double LossSum, NormSum;
        public int MicroBatches;
    }

    /// <summary>
    /// Reads the logging interval's losses and norms from the device (one transfer), stops the run if one is not finite,
    /// adds them to the epoch's sums in micro-batch order and reports the interval. Nothing to do when nothing is pending.
    /// </summary>
    private void ReadInterval(int epoch, long intervalStart, double lastRate, EpochSums sums)
    {
        if (_meter.MicroBatches == 0 && _meter.Steps == 0) return;
        int k = Options.AccumulationSteps;
        var (lossMemory, normMemory) = _meter.Read();
        var losses = lossMemory.Span;
        var norms = normMemory.Span;
        long lastStep = intervalStart + Math.Max(norms.Length, (losses.Length + k - 1) / k) - 1;
        // The earliest bad step; within a step its loss came first, as it was computed first.
        for (int j = 0; j < Math.Max(losses.Length, norms.Length * k); j++)
        {
            if (j < losses.Length && !float.IsFinite(losses[j]))
                throw new TrainingDivergedException(epoch, intervalStart + j / k, "loss", losses[j], LastCheckpoint, intervalStart, lastStep);
            if ((j + 1) % k == 0 && j / k < norms.Length && !float.IsFinite(norms[j / k]))
                throw new TrainingDivergedException(epoch, intervalStart + j / k, "gradient norm", norms[j / k], LastCheckpoint, intervalStart, lastStep);
        }
        double intervalLoss = 0, intervalNorm = 0;
        foreach (float loss in losses)
        {
            sums.LossSum += loss;
            intervalLoss += loss;
        }
        foreach (float norm in norms)
        {
            sums.NormSum += norm;
            intervalNorm += norm;
        }
        sums.MicroBatches += losses.Length;
        if (norms.Length > 0)
            StepCompleted?.Invoke(new StepProgress(Step, TotalSteps, intervalLoss / losses.Length, lastRate, intervalNorm / norms.Length, norms.Length));
    }

    /// <summary>
    /// Forward, loss and backward of one micro-batch of the current step; gradients accumulate (the step's first
    /// micro-batch zeroes them first: once per step). <paramref name="weight"/> scales the loss's gradient (1/k so the k
    /// micro-batches average). The micro-batch's mean loss goes to the one-element <paramref name="loss"/> on the device;
    /// nothing waits for the device.
    /// </summary>
    private void AccumulateOnDevice(ReadOnlySpan<float> images, ReadOnlySpan<int> labels, int count, float weight, int micro, Tensor loss)
    {
        if (micro == 0) Model.Parameters.ZeroGrads();
        var input = Input(count);
        input.CopyFrom(images[..(count * _train.SampleLength)]);
        Model.DropoutStep = DropoutStepFor(micro);
        var logits = Model.Forward(input);
        _loss.Forward(logits, labels[..count], loss);
        var dLogits = count == MicroBatch ? _dLogits : null;
        using var owned = dLogits is null ? Model.Device.Allocate(count, Model.Config.Classes) : null;
        dLogits ??= owned!;
        _loss.Backward(dLogits, BeforeBackward(weight, micro));
        Model.Backward(dLogits);
    }

    /// <summary>
    /// One micro-batch as <see cref="AccumulateOnDevice"/>, its loss read back at once and guarded (waits for the device):
    /// for drivers that take one step at a time (tests, parity replays). Returns the micro-batch's mean loss.
    /// </summary>
    internal double Accumulate(ReadOnlySpan<float> images, ReadOnlySpan<int> labels, int count, float weight, int epoch, int micro)
    {
        AccumulateOnDevice(images, labels, count, weight, micro, _lossNow);
        float loss = ReadScalar(_lossNow);
        if (!float.IsFinite(loss)) throw new TrainingDivergedException(epoch, Step, "loss", loss, LastCheckpoint);
        return loss;
    }

    /// <summary>Sums the gradients over ranks, measures (and clips) their norm into <paramref name="norm"/> on the device.</summary>
    private void MeasureGradients(Tensor norm)
    {
        Options.DataParallel?.CompleteGradients();
        var store = Model.Parameters;
        if (Options.ClipNorm is float max) _clipper.Clip(store, max, norm);
        else _clipper.Norm(store.Grads, norm);
    }

    private void StepOptimizer()
    {
        _schedule.Apply(Optimizer, Step);
        Optimizer.Step();
        Step++;
    }

    /// <summary>Clips, schedules and applies one optimizer step; the gradient norm goes to <paramref name="norm"/> on the device.</summary>
    private void ApplyStepOnDevice(Tensor norm)
    {
        MeasureGradients(norm);
        StepOptimizer();
    }

    /// <summary>
    /// One optimizer step as <see cref="ApplyStepOnDevice"/>, but the norm is read at once and a non-finite one stops
    /// before the optimizer runs (waits for the device): for step-at-a-time drivers. Returns the gradient norm.
    /// </summary>
    internal float ApplyStep(int epoch)
    {
        MeasureGradients(_normNow);
        float norm = ReadScalar(_normNow);
        if (!float.IsFinite(norm)) throw new TrainingDivergedException(epoch, Step, "gradient norm", norm, LastCheckpoint);
        StepOptimizer();
        return norm;
    }

    private static float ReadScalar(Tensor t)
    {
        Span<float> value = stackalloc float[1];
        t.CopyTo(value);
        return value[0];
    }

    /// <summary>Mean cross-entropy (no smoothing), top-1 and top-5 accuracy over the validation set.</summary>
    public (double Loss, double Top1, double Top5) Evaluate()
    {
        bool training = Model.Training;
        Model.Training = false;
        // Nothing writes the weights during the pass: each layer packs its GEMM weights once, not per batch.
        using var frozen = Model.Parameters.FreezeTemporarily();
        var loader = new DataLoader(_validation, Options.EvalBatchSize, shuffle: false, seed: Options.Seed, workers: Options.Workers);
        double loss = 0;
        long top1 = 0, top5 = 0, rows = 0;
        foreach (var batch in loader.Epoch(0))
        {
            var input = Input(batch.Count);
            input.CopyFrom(batch.ImagesSpan);
            var logits = Model.Forward(input);
            loss += (double)_evalLoss.Forward(logits, batch.LabelsSpan) * batch.Count;
            var counts = TopKAccuracy.Count(logits, batch.LabelsSpan);
            top1 += counts.Top1;
            top5 += counts.Top5;
            rows += batch.Count;
        }
        Model.Training = training;
        return (loss / rows, (double)top1 / rows, (double)top5 / rows);
    }

    /// <summary>The white-box probes on the fixed probe batch (the first validation images).</summary>
    public IReadOnlyList<LayerProbe> Probe()
    {
        int count = Math.Min(Options.ProbeImages, _validation.Count);
        if (count == 0) return [];
        if (_probeImages is null)
        {
            int length = _validation.SampleLength;
            var host = new float[count * length];
            for (int i = 0; i < count; i++)
            {
                var random = SampleRandom.For(Options.Seed, -1, i);
                _validation.Load(i, host.AsSpan(i * length, length), ref random);
            }
            _probeImages = Model.Device.Allocate(count, _validation.Channels, _validation.Height, _validation.Width);
            _probeImages.CopyFrom(host);
        }
        return WhiteBoxProbes.Measure(Model, _probeImages);
    }

    private TrainingState CurrentState() => new()
    {
        EpochsCompleted = EpochsCompleted,
        Step = Step,
        Optimizer = Options.Optimizer.ToString(),
        OptimizerStepCount = Optimizer.StepCount,
        Seed = Options.Seed,
        SchedulePosition = Step,
        LearningRate = Optimizer.LearningRate,
        BestTop1 = double.IsFinite(BestTop1) ? BestTop1 : 0,
        BestEpoch = BestEpoch,
        StepsPerEpoch = StepsPerEpoch,
        AccumulationSteps = Options.AccumulationSteps,
        BatchSize = Options.BatchSize,
    };

    private void RestoreFrom(string path)
    {
        var tensors = Safetensors.Read(path);
        var state = TrainingCheckpoint.Restore(path, tensors, Model, Optimizer);
        if (!string.Equals(state.Optimizer, Options.Optimizer.ToString(), StringComparison.OrdinalIgnoreCase))
            throw new CheckpointFormatException(path, $"the checkpoint was trained with {state.Optimizer}, not {Options.Optimizer}");
        if (state.StepsPerEpoch != StepsPerEpoch)
            throw new CheckpointFormatException(path, $"the checkpoint's run had {state.StepsPerEpoch} steps per epoch; this one has {StepsPerEpoch} (different data or batch size)");
        if (state.StepInEpoch < 0 || state.StepInEpoch > StepsPerEpoch)
            throw new CheckpointFormatException(path, $"step_in_epoch {state.StepInEpoch} is outside the epoch's {StepsPerEpoch} steps");
        if (state.StepInEpoch > 0 && (state.AccumulationSteps != Options.AccumulationSteps || state.BatchSize != Options.BatchSize))
            throw new CheckpointFormatException(path, $"the checkpoint was interrupted mid-epoch with batch {state.BatchSize} × accumulation {state.AccumulationSteps}; this run has {Options.BatchSize} × {Options.AccumulationSteps}, so it cannot continue at the same sample");
        EpochsCompleted = state.EpochsCompleted;
        Step = state.Step;
        _stepInEpoch = state.StepInEpoch;
        _partial = state.StepInEpoch > 0 ? state.Partial : null;
        BestTop1 = state.BestEpoch > 0 ? state.BestTop1 : double.NegativeInfinity;
        BestEpoch = state.BestEpoch;
        LastCheckpoint = Path.GetFullPath(path);
    }

    private Tensor Input(int count)
    {
        if (!_inputs.TryGetValue(count, out var t))
        {
            t = Model.Device.Allocate(count, _train.Channels, _train.Height, _train.Width);
            _inputs[count] = t;
        }
        return t;
    }

    private static void CheckData(CrateConfig c, IDataset data, string what)
    {
        if (data.Channels != c.Channels || data.Height != c.ImageHeight || data.Width != c.ImageWidth)
            throw new ArgumentException($"Trainer: the {what} images are {data.Channels}×{data.Height}×{data.Width}; the model expects {c.Channels}×{c.ImageHeight}×{c.ImageWidth}");
        if (data.ClassCount > c.Classes)
            throw new ArgumentException($"Trainer: the {what} set has {data.ClassCount} classes; the model's head has {c.Classes}");
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var t in _inputs.Values) t.Dispose();
        _inputs.Clear();
        _probeImages?.Dispose();
        _dLogits?.Dispose();
        _meter?.Dispose();
        _lossNow?.Dispose();
        _normNow?.Dispose();
        _loss?.Dispose();
        _evalLoss.Dispose();
        _clipper?.Dispose();
        Optimizer?.Dispose();
        Model?.Dispose();
    }
}
