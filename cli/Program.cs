using System.CommandLine;
using CrateIL.Cli.Commands;

namespace CrateIL.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        var root = new RootCommand("crate: train, run and inspect white-box CRATE vision transformers on CPU (SIMD), CUDA and OpenCL");
        root.Subcommands.Add(DevicesCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(CocoEvalCommand.Create());
        root.Subcommands.Add(InfoCommand.Create());
        root.Subcommands.Add(ImportCommand.Create());
        root.Subcommands.Add(InferCommand.Create());
        root.Subcommands.Add(TrainCommand.Create());
        root.Subcommands.Add(EmergeCommand.Create());
        root.Subcommands.Add(SelftestCommand.Create());
        return root.Parse(args).Invoke();
    }
}
