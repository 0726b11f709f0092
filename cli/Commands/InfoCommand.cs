using System.CommandLine;
using System.Globalization;
using CrateIL.Compute.Devices;
using CrateIL.Crate.Checkpoints;
using CrateIL.Crate.Data;
using CrateIL.Crate.Training;
using CrateIL.Crate.IO;
using CrateIL.Crate.Models;
using CrateIL.Nn.Layers;
using CrateIL.Segmentation.Imaging;

namespace CrateIL.Cli.Commands;

/// <summary><c>crate info</c>: a model configuration (preset or config.json) and its exact parameter count.</summary>
internal static class InfoCommand
{
    public static Command Create()
    {
        var model = ModelOptions.Model(required: true);
        var overrides = new ModelOptions();
        var json = new Option<bool>("--json") { Description = "Print only the configuration JSON (with reference argument names)" };
        var cmd = new Command("info", "Show a model configuration and its parameter count (no weights are allocated)") { model, json };
        overrides.AddTo(cmd);
        cmd.SetAction(parse =>
        {
            string spec = parse.GetValue(model)!;
            return CliErrors.Run(() =>
            {
                var config = overrides.Resolve(parse, spec);
                if (parse.GetValue(json))
                {
                    Console.WriteLine(config.ToJson());
                    return 0;
                }
                Console.WriteLine($"model: {spec}");
                Console.WriteLine($"config: {config}");
                Console.WriteLine($"patch tokens: {config.Patches} ({config.GridRows}×{config.GridCols}) + CLS");
                Console.WriteLine(config.ToJson());
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"parameters: {config.ParameterCount()}"));
                return 0;
            });
        });
        return cmd;
    }
}

/// <summary>
/// <c>--model</c> (a preset name or a config.json path) and the overrides <c>--patch</c>, <c>--image-size</c>
/// (N or HxW), <c>--classes</c>, <c>--pool</c> shared by the model commands.
/// </summary>
internal sealed class ModelOptions
{
    private readonly Option<int?> _patch = new("--patch") { Description = "Patch size (8, 16, 32, ...; the image must be a multiple)" };
    private readonly Option<string?> _imageSize = new("--image-size") { Description = "Training image size: N or HxW (e.g. 224 or 224x160)" };
    private readonly Option<int?> _classes = new("--classes") { Description = "Number of classes of the head" };
    private readonly Option<string?> _pool = new("--pool") { Description = "cls or mean" };

    public static Option<string> Model(bool required) => new("--model")
    {
        Description = $"A preset ({string.Join(", ", CrateConfig.PresetNames)}) or a config.json with the reference constructor's argument names",
        Required = required,
    };

    public ModelOptions() => _pool.AcceptOnlyFromAmong("cls", "mean");

    public void AddTo(Command command)
    {
        command.Options.Add(_patch);
        command.Options.Add(_imageSize);
        command.Options.Add(_classes);
        command.Options.Add(_pool);
    }

    /// <summary>The configuration of <paramref name="spec"/> with the command line's overrides applied and validated.</summary>
    public CrateConfig Resolve(ParseResult parse, string spec)
    {
        bool isFile = File.Exists(spec) || spec.EndsWith(".json", StringComparison.OrdinalIgnoreCase);
        var config = isFile ? CrateConfig.Load(spec) : CrateConfig.Preset(spec, parse.GetValue(_classes), parse.GetValue(_patch));
        if (parse.GetValue(_patch) is int patch) config = config with { PatchSize = patch };
        if (parse.GetValue(_classes) is int classes) config = config with { Classes = classes };
        if (parse.GetValue(_pool) is string pool) config = config with { Pool = pool == "mean" ? Pooling.Mean : Pooling.Cls };
        if (parse.GetValue(_imageSize) is string size)
        {
            var (h, w) = ParseImageSize(size);
            config = config with { ImageHeight = h, ImageWidth = w };
        }
        try
        {
            return config.Validate();
        }
        catch (ArgumentException e)
        {
            throw new CrateConfigException(spec, e.Message, e);
        }
    }

    internal static (int Height, int Width) ParseImageSize(string text, string option = "--image-size")
    {
        var parts = text.Split('x', 'X', '×');
        if (parts.Length is 1 or 2 && parts.All(p => int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out _)))
        {
            int h = int.Parse(parts[0], CultureInfo.InvariantCulture);
            return (h, parts.Length == 2 ? int.Parse(parts[1], CultureInfo.InvariantCulture) : h);
        }
        throw new ArgumentException($"{option} '{text}' is not N or HxW");
    }
}

/// <summary>Turns the typed errors of the model commands into one message on stderr and exit code 2.</summary>
internal static class CliErrors
{
    /// <summary>
    /// Runs a command body: the errors a user can cause (bad arguments, files, devices, data) become one line on stderr
    /// and exit code 2; a diverged training run exits 3. Anything else is a bug and keeps its stack trace.
    /// </summary>
    public static int Run(Func<int> action)
    {
        try
        {
            return action();
        }
        catch (TrainingDivergedException e)
        {
            Console.Error.WriteLine($"error: {OneLine(e)}");
            return 3;
        }
        catch (Exception e) when (e is CrateConfigException or CheckpointFormatException or NpyFormatException or DeviceNotFoundException
                                      or DatasetException or ImageFormatException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            Console.Error.WriteLine($"error: {OneLine(e)}");
            return 2;
        }
    }

    /// <summary>The message as one line, without .NET's "(Parameter 'name')" suffix.</summary>
    public static string OneLine(Exception e)
    {
        string message = e is ArgumentException a && a.ParamName is { } name
            ? a.Message.Replace($" (Parameter '{name}')", "", StringComparison.Ordinal)
            : e.Message;
        return string.Join(' ', message.Split(['\r', '\n', '\t'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
    }
}
