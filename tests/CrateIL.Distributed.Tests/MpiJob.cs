using System.Diagnostics;
using Xunit;
using Xunit.Sdk;

namespace CrateIL.Distributed.Tests;

/// <summary>
/// Launches the built <c>crate</c> under Open MPI's mpirun on this machine: loopback only, oversubscribed (more ranks
/// than free cores is fine), root allowed (CI runs as root). Without mpirun or libmpi the job tests skip visibly, or
/// fail when CRATEIL_REQUIRE_MPI=1 (.ci/run sets it, as it requires OpenCL).
/// </summary>
internal static class MpiJob
{
    public static bool Required => Environment.GetEnvironmentVariable("CRATEIL_REQUIRE_MPI") == "1";

    public static string? Mpirun { get; } = (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin")
        .Split(':', StringSplitOptions.RemoveEmptyEntries).Select(d => Path.Combine(d, "mpirun")).FirstOrDefault(File.Exists);

    /// <summary>crate.dll, copied beside the tests by the project reference.</summary>
    public static string Crate { get; } = typeof(CrateIL.Cli.Program).Assembly.Location;

    /// <summary>Skips (or, when required, fails) unless Open MPI can run here.</summary>
    public static void RequireOpenMpi()
    {
        string? reason = Mpirun is null ? "mpirun not on PATH (apt-get install openmpi-bin libopenmpi-dev)"
            : !MpiWorld.IsAvailable ? MpiWorld.UnavailableReason : null;
        if (reason is null) return;
        if (Required) throw new XunitException($"Open MPI is required (CRATEIL_REQUIRE_MPI=1) but unavailable: {reason}");
        Skip.If(true, $"Open MPI unavailable: {reason}");
    }

    public sealed record Result(int Exit, string Output, TimeSpan Elapsed);

    /// <summary>mpirun -np <paramref name="ranks"/> crate <paramref name="args"/>.</summary>
    public static Result Run(int ranks, string[] args, TimeSpan timeout, IReadOnlyDictionary<string, string>? env = null, Action<Process>? whileRunning = null) =>
        Launch([.. MpirunArguments(ranks, env), "dotnet", Crate, .. args], timeout, whileRunning);

    /// <summary>mpirun with one app context per rank (MPMD: "-np 1 crate a : -np 1 crate b"), for mismatched commands.</summary>
    public static Result RunPerRank(IReadOnlyList<string[]> perRank, TimeSpan timeout)
    {
        var argv = new List<string>(MpirunArguments(1, null));
        argv.AddRange(["dotnet", Crate, .. perRank[0]]);
        foreach (var a in perRank.Skip(1)) argv.AddRange([":", "-np", "1", "dotnet", Crate, .. a]);
        return Launch(argv, timeout, null);
    }

    /// <summary>A single process (no mpirun): crate <paramref name="args"/>.</summary>
    public static Result RunAlone(string[] args, TimeSpan timeout, IReadOnlyDictionary<string, string>? env = null) =>
        Launch(["dotnet", Crate, .. args], timeout, null, direct: true, env);

    private static List<string> MpirunArguments(int ranks, IReadOnlyDictionary<string, string>? env)
    {
        var a = new List<string> { "--oversubscribe", "--bind-to", "none", "--mca", "btl", "self,vader", "--mca", "oob_tcp_if_include", "lo", "-np", ranks.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) a.AddRange(["-x", $"{k}={v}"]);
        return a;
    }

    private static Result Launch(IReadOnlyList<string> argv, TimeSpan timeout, Action<Process>? whileRunning, bool direct = false,
        IReadOnlyDictionary<string, string>? env = null)
    {
        var info = new ProcessStartInfo(direct ? argv[0] : Mpirun!) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in direct ? argv.Skip(1) : argv) info.ArgumentList.Add(a);
        info.Environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1";
        info.Environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1";
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) info.Environment[k] = v;
        // A test run's own mpirun environment (if any) must not leak into the job.
        foreach (var k in info.Environment.Keys.Where(k => k.StartsWith("OMPI_COMM_WORLD", StringComparison.Ordinal)).ToList()) info.Environment.Remove(k);
        var clock = Stopwatch.StartNew();
        using var p = Process.Start(info)!;
        var output = new System.Text.StringBuilder();
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        whileRunning?.Invoke(p);
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            throw new XunitException($"the job did not end within {timeout.TotalSeconds:F0} s (hang?): {string.Join(' ', argv)}\n{output}");
        }
        p.WaitForExit();
        lock (output) return new Result(p.ExitCode, output.ToString(), clock.Elapsed);
    }

    /// <summary>The pid of rank <paramref name="rank"/> among mpirun's children (by their OMPI_COMM_WORLD_RANK), or null.</summary>
    public static int? RankPid(Process mpirun, int rank)
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid)) continue;
            try
            {
                string stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                if (fields[1] != mpirun.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)) continue;
                if (File.ReadAllText(Path.Combine(dir, "environ")).Split('\0').Contains($"OMPI_COMM_WORLD_RANK={rank}")) return pid;
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return null;
    }
}
