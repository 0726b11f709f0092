namespace CrateIL.Crate.Training;

/// <summary>
/// The seam between the <see cref="Trainer"/> and a data-parallel job of <see cref="Ranks"/> processes (the CLI wires
/// the Open MPI implementation; Crate never sees MPI). Every rank runs the same Trainer on its own device: it reads
/// its shard of every global batch, its backward pass reports finished gradient ranges
/// (<see cref="GradientsFinalFrom"/>) so buckets can be summed while the rest of the backward runs,
/// <see cref="CompleteGradients"/> leaves the sum over all ranks in the gradient buffer before the optimizer step (the
/// trainer weights each rank's loss by 1/ranks, so the sum is the global batch's mean gradient), and only
/// <see cref="IsWriter"/> writes metrics and checkpoints.
/// </summary>
public interface IDataParallel
{
    /// <summary>This process's rank, 0 ≤ Rank &lt; <see cref="Ranks"/>.</summary>
    int Rank { get; }

    /// <summary>Processes in the job.</summary>
    int Ranks { get; }

    /// <summary>Rank 0 alone writes metrics and checkpoints.</summary>
    bool IsWriter => Rank == 0;

    /// <summary>
    /// Called once the model (and any resumed state) exists, before the first step: binds the gradient buffer and the
    /// backward pass's part offsets (descending, ending with 0), and checks that every rank describes the same run —
    /// throws <see cref="DataParallelMismatchException"/> naming the facts that differ.
    /// </summary>
    void Start(Nn.Parameters.ParameterStore parameters, IReadOnlyList<long> backwardPartStarts, IReadOnlyList<RunFact> facts);

    /// <summary>The next backward pass is the last micro-batch of a step: its finished gradients may be reduced.</summary>
    void BeginFinalBackward();

    /// <summary>During a backward pass: every gradient at element offset ≥ <paramref name="offset"/> is final.</summary>
    void GradientsFinalFrom(long offset);

    /// <summary>After the step's last backward pass: the gradient buffer holds the sum over all ranks on return.</summary>
    void CompleteGradients();

    /// <summary>Sums <paramref name="values"/> over all ranks in place (epoch metrics).</summary>
    void Sum(Span<double> values);
}

/// <summary>One named fact every rank must agree on (e.g. "model", "training data", "batch", "weights"), as a hash.</summary>
public readonly record struct RunFact(string Name, long Hash);

/// <summary>The ranks of a data-parallel job disagree on the run (model, data, batch, options or weights).</summary>
public sealed class DataParallelMismatchException(string message) : ArgumentException(message);
