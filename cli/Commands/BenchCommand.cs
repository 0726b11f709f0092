using System.CommandLine;

namespace CrateIL.Cli.Commands;

/// <summary><c>crate bench ...</c>: quick, JSON-printing benchmarks (BenchmarkDotNet suites live in benchmarks/).</summary>
internal static partial class BenchCommand
{
    public static Command Create()
    {
        var cmd = new Command("bench", "Time kernels and models; --json prints machine-readable results");
        foreach (var sub in SubCommands()) cmd.Subcommands.Add(sub);
        return cmd;
    }

    private static IEnumerable<Command> SubCommands()
    {
        yield return BenchGemm.Create();
        yield return BenchMaskCut.Create();
        yield return BenchCrf.Create();
        yield return BenchMssa.Create();
        yield return BenchIsta.Create();
        yield return BenchModel.Create();
        yield return BenchAllreduce.Create();
        yield return BenchDataParallel.Create();
    }
}
