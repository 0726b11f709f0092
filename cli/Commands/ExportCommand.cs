using System.CommandLine;
using System.Globalization;
using CrateIL.Cli.Images;
using CrateIL.Crate.Checkpoints;
using CrateIL.Crate.Models;
using CrateIL.Crate.Training;

namespace CrateIL.Cli.Commands;

/// <summary>
/// <c>crate export</c>: a model-only safetensors file from a model or training checkpoint. Every parameter keeps its
/// official (PyTorch state_dict) name and shape, in the reference's registration order, so
/// <c>model.load_state_dict(tensors, strict=True)</c> accepts it. The optimizer tensors (<c>optimizer.*</c>) and the
/// training state are dropped; the configuration (<c>crate_config</c>) and the input description
/// (<c>crate_input</c>) are kept, so the file still loads with <c>crate infer</c> and the segmentation commands.
/// </summary>
internal static class ExportCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<FileInfo>("--checkpoint") { Description = "A .safetensors model or training checkpoint (crate train, crate import)", Required = true };
        var output = new Option<FileInfo>("--output", "-o") { Description = "The model-only .safetensors file to write", Required = true };
        var json = new ImageCommandOptions().Json;
        var cmd = new Command("export", "Write a model-only safetensors file with the official key names (optimizer state and training metadata dropped)")
            { checkpoint, output, json };
        cmd.SetAction(parse => CliErrors.Run(() =>
        {
            string source = parse.GetValue(checkpoint)!.FullName, target = parse.GetValue(output)!.FullName;
            var result = Export(source, target);
            if (parse.GetValue(json))
            {
                ImageCommandOptions.WriteJson(result);
                return 0;
            }
            Console.WriteLine($"model: {result.Model}");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{result.Tensors} tensors, {result.Parameters} parameters → {target}"));
            if (result.Dropped.Count > 0) Console.WriteLine($"dropped: {string.Join(", ", result.Dropped)}");
            Console.WriteLine($"metadata kept: {string.Join(", ", result.Metadata)}");
            return 0;
        }));
        return cmd;
    }

    /// <summary>What <see cref="Export"/> wrote (the <c>--json</c> document).</summary>
    internal sealed record ExportResult(string Command, string Checkpoint, string Output, string Model, int Tensors, long Parameters,
        IReadOnlyList<ExportedKey> Keys, IReadOnlyList<string> Dropped, IReadOnlyList<string> Metadata);

    internal sealed record ExportedKey(string Name, int[] Shape);

    /// <summary>
    /// Reads <paramref name="source"/>, checks its weights strictly against the keys of the configuration in its metadata
    /// and writes them (atomically) to <paramref name="target"/>.
    /// </summary>
    internal static ExportResult Export(string source, string target)
    {
        if (string.Equals(Path.GetFullPath(source), Path.GetFullPath(target), StringComparison.Ordinal))
            throw new ArgumentException($"--output {target} is the checkpoint itself; write the export to another file");
        if (!File.Exists(source)) throw new FileNotFoundException($"--checkpoint {source}: no such file");
        var tensors = Safetensors.Read(source);
        var config = CrateCheckpoint.ReadConfig(source);
        var input = tensors.Metadata.ContainsKey(ModelInput.MetadataKey) ? ModelInput.From(tensors.Metadata, config, source) : null;
        var keys = CrateModel.KeysFor(config);

        var weights = new NamedTensors();
        var dropped = new List<string>();
        foreach (var t in tensors)
            if (t.Name.StartsWith(TrainingCheckpoint.OptimizerPrefix, StringComparison.Ordinal)) dropped.Add(t.Name);
            else weights.Add(t);
        // Strict: every official key with its shape, nothing else (a `module.` prefix is stripped).
        var import = StateDictImport.FromTensors(source, weights, keys, strict: true);

        var exported = new NamedTensors();
        exported.Metadata[CrateCheckpoint.ConfigKey] = config.ToJson(indented: false);
        exported.Metadata["format"] = "pt";
        exported.Metadata["source"] = Path.GetFileName(source);
        input?.WriteTo(exported.Metadata);
        foreach (var key in keys) exported.Add(key.Name, key.Shape, import.Tensors[key.Name].Data);
        foreach (var name in tensors.Metadata.Keys)
            if (!exported.Metadata.ContainsKey(name)) dropped.Add("metadata:" + name);
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        Safetensors.Write(target, exported);

        return new ExportResult("export", source, target, config.ToString(), keys.Count, keys.Sum(k => k.Shape.Aggregate(1L, (a, d) => a * d)),
            keys.Select(k => new ExportedKey(k.Name, k.Shape)).ToArray(), dropped, exported.Metadata.Keys.Order(StringComparer.Ordinal).ToArray());
    }
}
