using System.Globalization;
using CrateIL.Crate.Training;
using CrateIL.Distributed;
using CrateIL.Nn.Parameters;

namespace CrateIL.Cli.Distributed;

/// <summary>
/// <see cref="IDataParallel"/> over Open MPI: gradients summed by <see cref="GradientAllreduce"/> (buckets during the
/// backward pass, or one flat all-reduce), start-up agreement checked with MIN/MAX all-reduces of each fact's hash.
/// </summary>
internal sealed class MpiDataParallel(MpiWorld world, long bucketElements, bool overlap) : IDataParallel, IDisposable
{
    /// <summary>
    /// Fault injection for the failure tests: rank CRATEIL_FAULT_RANK throws after CRATEIL_FAULT_STEP reduced steps
    /// (as a real error in one rank would), which must end the whole job with MPI_Abort, not hang it.
    /// </summary>
    public const string FaultRankVariable = "CRATEIL_FAULT_RANK", FaultStepVariable = "CRATEIL_FAULT_STEP";

    private readonly int? _faultStep = int.TryParse(Environment.GetEnvironmentVariable(FaultRankVariable), out int r) && r == world.Rank
        && int.TryParse(Environment.GetEnvironmentVariable(FaultStepVariable), out int s) ? s : null;
    private GradientAllreduce? _reduce;

    public int Rank => world.Rank;
    public int Ranks => world.Size;

    /// <summary>The gradient reduction (after <see cref="Start"/>): buckets and timings.</summary>
    public GradientAllreduce? Reduction => _reduce;

    public void Start(ParameterStore parameters, IReadOnlyList<long> backwardPartStarts, IReadOnlyList<RunFact> facts)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(facts);
        CheckAgreement(facts);
        _reduce?.Dispose();
        _reduce = new GradientAllreduce(world, parameters.Grads, backwardPartStarts, bucketElements, overlap);
    }

    private void CheckAgreement(IReadOnlyList<RunFact> facts)
    {
        Span<long> count = [facts.Count, -facts.Count];
        world.Allreduce(count, ReduceOperation.Max);
        if (count[0] != -count[1])
            throw new DataParallelMismatchException($"ranks disagree on the run: they describe {-count[1]} to {count[0]} facts (different CrateIL builds?)");
        var low = facts.Select(f => f.Hash).ToArray();
        var high = (long[])low.Clone();
        world.Allreduce(low, ReduceOperation.Min);
        world.Allreduce(high, ReduceOperation.Max);
        var differ = facts.Where((f, i) => low[i] != high[i]).Select(f => f.Name).ToArray();
        if (differ.Length > 0)
            throw new DataParallelMismatchException(string.Create(CultureInfo.InvariantCulture,
                $"the {world.Size} ranks disagree on {string.Join("; ", differ)}: every rank must run the same train command (model, data, --batch/--accumulate, options, seed, --resume checkpoint)"));
    }

    public void BeginFinalBackward() => Reduction!.Arm();

    public void GradientsFinalFrom(long offset) => _reduce?.GradientsFinalFrom(offset);

    public void CompleteGradients()
    {
        _reduce!.Complete();
        if (_faultStep is int step && _reduce.Stats.Steps >= step)
            throw new InvalidOperationException($"injected fault on rank {Rank} after step {step} ({FaultRankVariable}/{FaultStepVariable})");
    }

    public void Sum(Span<double> values) => world.Allreduce(values, ReduceOperation.Sum);

    /// <summary>One line for the train log: ranks, the library, the buckets.</summary>
    public string Describe(Compute.Devices.Device device)
    {
        var buckets = _reduce?.Buckets ?? [];
        string how = overlap
            ? string.Create(CultureInfo.InvariantCulture, $"{buckets.Count} bucket(s) of ≥ {bucketElements * sizeof(float) / 1048576.0:G3} MB, all-reduced during the backward pass")
            : "one flat all-reduce after the backward pass";
        return $"distributed: {Ranks} rank{(Ranks == 1 ? "" : "s")} ({MpiWorld.LibraryVersion}); rank 0 on {world.ProcessorName} uses {device.Spec}; gradients: {how}";
    }

    public void Dispose() => _reduce?.Dispose();
}
