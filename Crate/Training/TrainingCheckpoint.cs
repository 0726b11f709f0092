using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using CrateIL.Compute.Devices;
using CrateIL.Crate.Checkpoints;
using CrateIL.Crate.Models;
using CrateIL.Nn.Optim;

namespace CrateIL.Crate.Training;

/// <summary>Where a run stood when a checkpoint was written (the safetensors metadata <see cref="TrainingCheckpoint.StateKey"/>).</summary>
public sealed record TrainingState
{
    [JsonPropertyName("epochs_completed")] public int EpochsCompleted { get; init; }
    [JsonPropertyName("step")] public long Step { get; init; }
    [JsonPropertyName("optimizer")] public string Optimizer { get; init; } = "";
    [JsonPropertyName("optimizer_step_count")] public long OptimizerStepCount { get; init; }
    /// <summary>The run's seed: data order comes from (seed, epoch), dropout masks from (seed, step).</summary>
    [JsonPropertyName("seed")] public int Seed { get; init; }
    /// <summary>The schedule's t for the next optimizer step (= optimizer steps taken).</summary>
    [JsonPropertyName("schedule_position")] public long SchedulePosition { get; init; }
    [JsonPropertyName("learning_rate")] public double LearningRate { get; init; }
    [JsonPropertyName("best_top1")] public double BestTop1 { get; init; }
    [JsonPropertyName("best_epoch")] public int BestEpoch { get; init; }
    [JsonPropertyName("steps_per_epoch")] public int StepsPerEpoch { get; init; }
    [JsonPropertyName("accumulation_steps")] public int AccumulationSteps { get; init; }
    [JsonPropertyName("batch_size")] public int BatchSize { get; init; }

    /// <summary>
    /// Optimizer steps of epoch <see cref="EpochsCompleted"/> (0-based: the epoch in progress) already taken: 0 at an
    /// epoch boundary, more in a checkpoint written on interrupt. The epoch's data order comes from (seed, epoch), so a
    /// resumed run skips this many steps' batches and continues with the next.
    /// </summary>
    [JsonPropertyName("step_in_epoch")] public int StepInEpoch { get; init; }

    /// <summary>The running sums of the epoch in progress, so its metrics come out as if it had not been interrupted.</summary>
    [JsonPropertyName("partial_epoch")] public PartialEpoch? Partial { get; init; }
}

/// <summary>Sums over the steps an interrupted epoch already took (<see cref="TrainingState.Partial"/>).</summary>
public sealed record PartialEpoch
{
    [JsonPropertyName("loss_sum")] public double LossSum { get; init; }
    [JsonPropertyName("grad_norm_sum")] public double GradNormSum { get; init; }
    [JsonPropertyName("micro_batches")] public int MicroBatches { get; init; }
    [JsonPropertyName("images")] public int Images { get; init; }
}

/// <summary>
/// Training checkpoints: ONE safetensors file per checkpoint (see <see cref="CheckpointRotation"/>) holding the model's parameters under their official names,
/// every optimizer state buffer as a flat tensor <c>optimizer.&lt;state&gt;</c> (e.g. <c>optimizer.exp_avg</c>) laid out
/// exactly like the parameter store's contiguous value buffer, the configuration (<see cref="CrateCheckpoint.ConfigKey"/>)
/// and the <see cref="TrainingState"/> JSON in the metadata. One file rather than two because the weights and the
/// optimizer moments must always come from the same step: a single atomic rename (temporary file, flush, rename)
/// can never leave a new model beside an old optimizer state. Flat buffers rather than one tensor per parameter
/// because that is the optimizer's own layout (one copy each way, no per-parameter bookkeeping); the parameter
/// offsets are those of the model built from the stored configuration. <see cref="LoadModel"/> reads such a file as a
/// plain model checkpoint.
/// </summary>
public static class TrainingCheckpoint
{
    /// <summary>The metadata key of the <see cref="TrainingState"/> JSON.</summary>
    public const string StateKey = "training_state";

    /// <summary>Prefix of the optimizer state tensors.</summary>
    public const string OptimizerPrefix = "optimizer.";

    public static void Save(string path, CrateModel model, Optimizer optimizer, TrainingState state, ModelInput? input = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(state);
        var tensors = CrateCheckpoint.StateDict(model);
        tensors.Metadata[StateKey] = JsonSerializer.Serialize(state);
        input?.WriteTo(tensors.Metadata);
        foreach (var s in optimizer.State)
            tensors.Add(OptimizerPrefix + s.Name, [(int)s.Tensor.Shape.Length], s.Tensor.ToArray());
        Safetensors.Write(path, tensors);
    }

    /// <summary>The training state in a checkpoint's metadata; <see cref="CheckpointFormatException"/> if absent or malformed.</summary>
    public static TrainingState ReadState(string path) => StateFrom(Safetensors.ReadHeader(path).Metadata, path);

    /// <summary>The model of a training (or plain) checkpoint, optimizer tensors ignored.</summary>
    public static CrateModel LoadModel(string path, Device device, int seed = 0)
    {
        var tensors = Safetensors.Read(path);
        var config = CrateCheckpoint.ReadConfig(path);
        var model = new CrateModel(config, device, seed);
        try
        {
            CrateCheckpoint.LoadState(model, WeightsOnly(tensors), path);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        return model;
    }

    /// <summary>Copies a checkpoint's weights into the model and its optimizer buffers and step count into the optimizer.</summary>
    internal static TrainingState Restore(string path, NamedTensors tensors, CrateModel model, Optimizer optimizer)
    {
        var state = StateFrom(tensors.Metadata, path);
        CrateCheckpoint.LoadState(model, WeightsOnly(tensors), path);
        foreach (var s in optimizer.State)
        {
            string name = OptimizerPrefix + s.Name;
            if (!tensors.TryGet(name, out var t))
                throw new CheckpointFormatException(path, $"the checkpoint has no optimizer state '{name}' (written by another optimizer than {optimizer.GetType().Name}?)");
            if (t.Data.Length != s.Tensor.Shape.Length)
                throw new CheckpointFormatException(path, $"optimizer state '{name}' holds {t.Data.Length} values; the model has {s.Tensor.Shape.Length} parameters");
            s.Tensor.CopyFrom(t.Data);
        }
        optimizer.StepCount = state.OptimizerStepCount;
        return state;
    }

    private static NamedTensors WeightsOnly(NamedTensors tensors)
    {
        var weights = new NamedTensors();
        foreach (var pair in tensors.Metadata) weights.Metadata[pair.Key] = pair.Value;
        foreach (var t in tensors)
            if (!t.Name.StartsWith(OptimizerPrefix, StringComparison.Ordinal)) weights.Add(t);
        return weights;
    }

    private static TrainingState StateFrom(IReadOnlyDictionary<string, string> metadata, string path)
    {
        if (!metadata.TryGetValue(StateKey, out var json))
            throw new CheckpointFormatException(path, $"the checkpoint has no '{StateKey}' metadata: it is a model checkpoint, not a training checkpoint");
        try
        {
            return JsonSerializer.Deserialize<TrainingState>(json)
                   ?? throw new CheckpointFormatException(path, $"metadata '{StateKey}' is null");
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException(path, string.Create(CultureInfo.InvariantCulture, $"metadata '{StateKey}' is not valid JSON: {e.Message}"));
        }
    }
}
