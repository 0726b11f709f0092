using System.CommandLine;
using CrateIL.Distributed;

namespace CrateIL.Cli.Distributed;

/// <summary><c>crate train</c>'s data-parallel options (see README "Data-parallel training").</summary>
internal sealed class DistributedOptions
{
    public Option<bool> Distributed { get; } = new("--distributed")
    {
        Description = "Train data-parallel as one rank of an Open MPI job (implied under mpirun): each rank reads its shard of every global --batch, gradients are averaged with all-reduce, rank 0 writes",
    };

    public Option<double> BucketMb { get; } = new("--bucket-mb")
    {
        Description = "--distributed: all-reduce bucket size in MB, started as the backward pass finishes each bucket",
        DefaultValueFactory = _ => 4.0,
    };

    public Option<bool> Flat { get; } = new("--flat-allreduce")
    {
        Description = "--distributed: one blocking all-reduce of all gradients after the backward pass (no overlap; for comparison)",
    };

    public void AddTo(Command command)
    {
        command.Options.Add(Distributed);
        command.Options.Add(BucketMb);
        command.Options.Add(Flat);
    }

    /// <summary>The data-parallel context of this rank, or null when not distributed.</summary>
    public MpiDataParallel? Create(ParseResult parse, MpiWorld? world)
    {
        if (world is null) return null;
        double mb = parse.GetValue(BucketMb);
        if (!(mb > 0 && mb <= 2048)) throw new ArgumentException($"--bucket-mb {mb} must be in (0, 2048]");
        return new MpiDataParallel(world, Math.Max(1, (long)(mb * 1024 * 1024 / sizeof(float))), overlap: !parse.GetValue(Flat));
    }
}
