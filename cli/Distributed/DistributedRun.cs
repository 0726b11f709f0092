using CrateIL.Cli.Commands;
using CrateIL.Compute.Devices;
using CrateIL.Distributed;

namespace CrateIL.Cli.Distributed;

/// <summary>
/// How a command runs as one rank of an Open MPI job: MPI is initialised around the command body, only rank 0 prints
/// to stdout, and a rank that fails — an exception or a non-zero exit — prints one line naming itself and calls
/// MPI_Abort, so its peers (possibly blocked in an all-reduce waiting for it) end at once instead of hanging.
/// A rank killed outright (kill -9) is handled by mpirun, which terminates the others.
/// </summary>
internal static class DistributedRun
{
    /// <summary>Whether to run distributed: asked for with --distributed, or started by mpirun.</summary>
    public static bool Wanted(bool requested) => requested || MpiWorld.LaunchedByMpirun;

    /// <summary>Runs <paramref name="body"/> with the job's world (null when not distributed); returns the exit code.</summary>
    public static int Run(bool requested, Func<MpiWorld?, int> body)
    {
        if (!Wanted(requested)) return body(null);
        if (!MpiWorld.IsAvailable)
        {
            Console.Error.WriteLine($"error: --distributed needs Open MPI: {MpiWorld.UnavailableReason}");
            return 2;
        }
        var world = MpiWorld.Initialize();
        var stdout = Console.Out;
        if (world.Rank != 0) Console.SetOut(TextWriter.Null);
        int code;
        try
        {
            code = body(world);
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"error: rank {world.Rank} of {world.Size} failed: {CliErrors.OneLine(e)}; aborting the job");
            if (e is not (ArgumentException or IOException or InvalidOperationException)) Console.Error.WriteLine(e);
            world.Abort(1);
            return 1;
        }
        finally
        {
            Console.SetOut(stdout);
        }
        if (code != 0)
        {
            Console.Error.WriteLine($"error: rank {world.Rank} of {world.Size} stopped with exit code {code}; aborting the job");
            world.Abort(code);
        }
        world.Dispose();
        return 0;
    }

    /// <summary>Ranks of this job on this node (OMPI_COMM_WORLD_LOCAL_SIZE; 1 when not launched by mpirun).</summary>
    private static int LocalRanks =>
        int.TryParse(Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_LOCAL_SIZE"), out int n) && n > 0 ? n : 1;

    /// <summary>
    /// The device of one rank: an explicit "kind:index" as given; a GPU kind without an index, or the default when
    /// GPUs exist, picks GPU (node-local rank mod GPU count); otherwise the CPU with <paramref name="cpuThreads"/>
    /// threads per rank (default: the node's cores divided among its ranks).
    /// </summary>
    public static Device OpenDevice(string? spec, int? cpuThreads)
    {
        // Ranks sharing a node share its cores: by default each CPU rank takes its part, not all of them.
        cpuThreads ??= Math.Max(1, Environment.ProcessorCount / LocalRanks);
        spec ??= Environment.GetEnvironmentVariable(DeviceRegistry.DeviceVariable);
        if (!string.IsNullOrWhiteSpace(spec) && spec.Contains(':')) return DeviceRegistry.Open(spec, cpuThreads);
        DeviceKind[] kinds = string.IsNullOrWhiteSpace(spec) ? [DeviceKind.Cuda] : [DeviceRegistry.ParseSpec(spec).Kind];
        if (kinds[0] == DeviceKind.Cpu) return DeviceRegistry.Open("cpu", cpuThreads);
        // DeviceRegistry.List already turns a failing GPU runtime into a rejected entry with its reason; nothing to catch.
        var usable = DeviceRegistry.List().Where(d => d.Kind == kinds[0] && d.Usable).ToArray();
        if (usable.Length == 0)
            return string.IsNullOrWhiteSpace(spec) ? DeviceRegistry.Open("cpu", cpuThreads) : DeviceRegistry.Open(spec, cpuThreads);
        return DeviceRegistry.Open(usable[MpiWorld.LocalRank % usable.Length].Spec, cpuThreads);
    }
}
