using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using CrateIL.Crate.Data;
using CrateIL.Crate.Models;

namespace CrateIL.Crate.Training;

/// <summary>
/// The trainer's data-parallel side (<see cref="TrainerOptions.DataParallel"/>): with R ranks and k micro-batches,
/// every rank trains on micro-batches of B/(k·R) images taken from its shard of the single-process order
/// (<see cref="DataShard"/>), weights each micro-batch's loss by 1/(k·R), and sums the gradients over the ranks before
/// the optimizer step, so the step sees the mean gradient of the same B images one process would use. The embedding
/// dropout of rank r's micro-batch j in step s is keyed by s·k·R + r·k + j: the key one process with k·R
/// micro-batches would use for the same images. Without a data-parallel context every hook is the single-process
/// identity.
/// </summary>
public sealed partial class Trainer
{
    /// <summary>Ranks of the data-parallel job (1 without one).</summary>
    public int Ranks => Options.DataParallel?.Ranks ?? 1;

    /// <summary>Whether this process writes metrics and checkpoints (rank 0, or the only process).</summary>
    public bool IsWriter => Options.DataParallel?.IsWriter ?? true;

    private static int LocalMicroBatch(TrainerOptions options)
    {
        int ranks = options.DataParallel?.Ranks ?? 1;
        if (options.BatchSize % (options.AccumulationSteps * ranks) != 0)
            throw new ArgumentException($"Trainer: the batch of {options.BatchSize} images does not split into {ranks} ranks × {options.AccumulationSteps} micro-batches", nameof(options));
        return options.BatchSize / (options.AccumulationSteps * ranks);
    }

    private static DataShard? ShardOf(TrainerOptions options) =>
        options.DataParallel is { } p ? new DataShard(p.Rank, p.Ranks, options.AccumulationSteps) : null;

    private long DropoutStepFor(int micro)
    {
        int k = Options.AccumulationSteps;
        return Options.DataParallel is { } p ? (Step * p.Ranks + p.Rank) * k + micro : Step * k + micro;
    }

    /// <summary>Before a micro-batch's backward: the loss weight for this rank; arms the reduction on the step's last one.</summary>
    private float BeforeBackward(float weight, int micro)
    {
        if (Options.DataParallel is not { } p) return weight;
        if (micro == Options.AccumulationSteps - 1) p.BeginFinalBackward();
        return weight / p.Ranks;
    }

    /// <summary>Binds the gradient buffer and checks, collectively, that every rank describes the same run.</summary>
    private void StartDataParallel(CrateConfig config)
    {
        if (Options.DataParallel is not { } p) return;
        p.Start(Model.Parameters, Model.BackwardPartStarts, RunFacts(config));
        Model.GradientsFinal = p.GradientsFinalFrom;
    }

    /// <summary>The epoch's training loss sum, micro-batch and image counts over all ranks.</summary>
    private (double LossSum, int MicroBatches, int Images) SumOverRanks(double lossSum, int microBatches, int images)
    {
        if (Options.DataParallel is not { } p) return (lossSum, microBatches, images);
        Span<double> totals = [lossSum, microBatches, images];
        p.Sum(totals);
        return (totals[0], (int)totals[1], (int)totals[2]);
    }

    /// <summary>What every rank must agree on, each as a hash: a mismatch names the fact.</summary>
    private List<RunFact> RunFacts(CrateConfig config)
    {
        var o = Options;
        var facts = new List<RunFact>
        {
            Fact("model configuration", config.ToJson(indented: false)),
            Fact("training data (size, shape, classes, first sample)", DataSignature(_train, o.Seed)),
            Fact("validation data (size, shape, classes, first sample)", DataSignature(_validation, o.Seed)),
            Fact("batch (--batch, --accumulate)", $"{o.BatchSize} {o.AccumulationSteps}"),
            Fact("optimizer and schedule", string.Create(CultureInfo.InvariantCulture,
                $"{o.Optimizer} {o.LearningRate:R} {o.MinLearningRate:R} {o.WeightDecay:R} {o.Beta1:R} {o.Beta2:R} {o.WarmupSteps} {o.LabelSmoothing:R} {o.ClipNorm?.ToString("R", CultureInfo.InvariantCulture) ?? "-"} {o.Epochs}")),
            Fact("seed", o.Seed.ToString(CultureInfo.InvariantCulture)),
            Fact("position (epochs, step, optimizer steps)", $"{EpochsCompleted} {Step} {Optimizer.StepCount}"),
        };
        var values = Model.Parameters.Values.ToArray();
        facts.Add(new RunFact("initial weights", Hash(MemoryMarshal.AsBytes(values.AsSpan()))));
        return facts;
    }

    private static string DataSignature(IDataset data, int seed)
    {
        var first = new float[data.SampleLength];
        var random = SampleRandom.For(seed, 0, 0);
        int label = data.Load(0, first, ref random);
        return string.Create(CultureInfo.InvariantCulture,
            $"{data.Count} {data.Channels}×{data.Height}×{data.Width} {data.ClassCount} {label} {Hash(MemoryMarshal.AsBytes(first.AsSpan()))}");
    }

    private static RunFact Fact(string name, string value) => new(name, Hash(Encoding.UTF8.GetBytes(value)));

    private static long Hash(ReadOnlySpan<byte> bytes)
    {
        Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(bytes, digest);
        return BitConverter.ToInt64(digest);
    }
}
