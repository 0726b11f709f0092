using System.CommandLine;
using CrateIL.Crate.Models;

namespace CrateIL.Cli.Commands;

/// <summary><c>crate import</c>: a PyTorch CRATE checkpoint (.pth) to safetensors with the configuration in its metadata.</summary>
internal static class ImportCommand
{
    public static Command Create()
    {
        var input = new Argument<FileInfo>("checkpoint") { Description = "PyTorch checkpoint (.pth): a state_dict, or {'state_dict': ...} / {'model': ...}; 'module.' prefixes are stripped" };
        var model = ModelOptions.Model(required: true);
        var overrides = new ModelOptions();
        var output = new Option<FileInfo>("--output", "-o") { Description = "Output .safetensors file", Required = true };
        var nonStrict = new Option<bool>("--non-strict") { Description = "Load the keys that match and report missing / unexpected ones instead of failing" };
        var cmd = new Command("import", "Convert a PyTorch CRATE checkpoint to safetensors (the config JSON goes into the metadata)") { input, model, output, nonStrict };
        overrides.AddTo(cmd);
        cmd.SetAction(parse => CliErrors.Run(() =>
        {
            var config = overrides.Resolve(parse, parse.GetValue(model)!);
            string source = parse.GetValue(input)!.FullName, target = parse.GetValue(output)!.FullName;
            var import = CrateCheckpoint.ConvertPth(source, config, target, strict: !parse.GetValue(nonStrict));
            Console.WriteLine($"imported {import.Tensors.Count - import.Unexpected.Count} tensors ({config.ParameterCount()} parameters) from {source}" +
                (import.Wrapper is null ? "" : $" (under '{import.Wrapper}')"));
            foreach (var key in import.Missing) Console.WriteLine($"  missing (left out of the output): {key}");
            foreach (var key in import.Unexpected) Console.WriteLine($"  unexpected (ignored): {key}");
            foreach (var name in import.Skipped) Console.WriteLine($"  not a tensor (ignored): {name}");
            Console.WriteLine($"config: {config}");
            Console.WriteLine($"wrote {target}");
            return 0;
        }));
        return cmd;
    }
}
