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
        root.Subcommands.Add(EvalCommand.Create());
        root.Subcommands.Add(AttentionCommand.Create());
        root.Subcommands.Add(PcaCommand.Create());
        root.Subcommands.Add(TrainCommand.Create());
        root.Subcommands.Add(EmergeCommand.Create());
        root.Subcommands.Add(SelftestCommand.Create());
        root.Subcommands.Add(CrfCommand.Create());
        root.Subcommands.Add(ExportCommand.Create());
        root.Subcommands.Add(MaskCutCommand.Create());
        root.Subcommands.Add(SegEvalCommand.Create());
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0 && args.Length > 0)
        {
            // One line and exit code 2 for a mistyped command line, like every other user error (no usage dump).
            // The whole path of a nested command ("crate bench model"), not only its last word.
            var names = new List<string>();
            for (var r = parse.CommandResult; r is not null && r.Command != root; r = r.Parent as System.CommandLine.Parsing.CommandResult)
                names.Insert(0, r.Command.Name);
            string command = string.Join(' ', names.Prepend("crate"));
            Console.Error.WriteLine($"error: {string.Join("; ", parse.Errors.Select(e => string.Join(' ', e.Message.Split(['\r', '\n', '\t'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))))} (see '{command} --help')");
            return 2;
        }
        return parse.Invoke();
    }
}
