using CrateIL.Compute.Devices;
using CrateIL.Crate.Checkpoints;

namespace CrateIL.Crate.Models;

/// <summary>
/// Model checkpoints: safetensors files holding every parameter under its official name, with the configuration
/// JSON (<see cref="CrateConfig.ToJson"/>) in the metadata under <see cref="ConfigKey"/>; and import of PyTorch
/// <c>.pth</c> checkpoints (bare state_dicts or CRATE's <c>{'state_dict': ...}</c> / <c>{'model': ...}</c> wrappers,
/// <c>module.</c> prefixes stripped).
/// </summary>
public static class CrateCheckpoint
{
    /// <summary>The safetensors metadata key of the configuration JSON.</summary>
    public const string ConfigKey = "crate_config";

    /// <summary>Every parameter copied to the host, with the configuration in the metadata.</summary>
    public static NamedTensors StateDict(CrateModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var tensors = new NamedTensors();
        tensors.Metadata[ConfigKey] = model.Config.ToJson(indented: false);
        tensors.Metadata["format"] = "pt";
        foreach (var p in model.Parameters.Parameters)
            tensors.Add(p.Name, p.Shape.Dims.ToArray(), p.Value.ToArray());
        return tensors;
    }

    /// <summary>Writes the model's parameters and configuration (and, when given, its <see cref="ModelInput"/>) to a safetensors file (atomically).</summary>
    public static void Save(CrateModel model, string path, ModelInput? input = null)
    {
        var tensors = StateDict(model);
        input?.WriteTo(tensors.Metadata);
        Safetensors.Write(path, tensors);
    }

    /// <summary>The configuration stored in a checkpoint's metadata; <see cref="CrateConfigException"/> if absent or malformed.</summary>
    public static CrateConfig ReadConfig(string path)
    {
        var header = Safetensors.ReadHeader(path);
        return ConfigFrom(header.Metadata, path);
    }

    /// <summary>
    /// Builds the model a safetensors checkpoint describes on <paramref name="device"/> and loads its parameters
    /// (strict: every key present with its shape, no extras).
    /// </summary>
    public static CrateModel Load(string path, Device device)
    {
        var tensors = Safetensors.Read(path);
        var config = ConfigFrom(tensors.Metadata, path);
        var model = new CrateModel(config, device);
        try
        {
            LoadState(model, tensors, path);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        return model;
    }

    /// <summary>
    /// Copies named tensors into the model's parameters after matching them with the model's (name, shape) list
    /// (<see cref="StateDictImport.FromTensors"/>; <c>module.</c> stripped). Non-strict mode loads what matches and
    /// reports the rest in the returned import.
    /// </summary>
    public static CheckpointImport LoadState(CrateModel model, NamedTensors tensors, string file, bool strict = true)
    {
        ArgumentNullException.ThrowIfNull(model);
        var import = StateDictImport.FromTensors(file, tensors, model.ExpectedKeys, strict);
        Copy(model, import);
        return import;
    }

    /// <summary>Loads a PyTorch checkpoint into the model (see <see cref="StateDictImport.LoadPth"/>).</summary>
    public static CheckpointImport ImportPth(CrateModel model, string pthPath, bool strict = true)
    {
        ArgumentNullException.ThrowIfNull(model);
        var import = StateDictImport.LoadPth(pthPath, model.ExpectedKeys, strict);
        Copy(model, import);
        return import;
    }

    /// <summary>
    /// Converts a PyTorch checkpoint for <paramref name="config"/> into a safetensors checkpoint with the
    /// configuration in its metadata, without building the model. Returns the import report.
    /// </summary>
    public static CheckpointImport ConvertPth(string pthPath, CrateConfig config, string outputPath, bool strict = true)
    {
        ArgumentNullException.ThrowIfNull(config);
        var keys = CrateModel.KeysFor(config);
        var import = StateDictImport.LoadPth(pthPath, keys, strict);
        var output = new NamedTensors();
        output.Metadata[ConfigKey] = config.ToJson(indented: false);
        output.Metadata["format"] = "pt";
        output.Metadata["source"] = Path.GetFileName(pthPath);
        foreach (var key in keys)
            if (import.Tensors.TryGet(key.Name, out var tensor)) output.Add(key.Name, key.Shape, tensor.Data);
        Safetensors.Write(outputPath, output);
        return import;
    }

    private static void Copy(CrateModel model, CheckpointImport import)
    {
        foreach (var p in model.Parameters.Parameters)
            if (import.Tensors.TryGet(p.Name, out var tensor)) p.Value.CopyFrom(tensor.Data);
        // New values: a frozen model's layers must re-derive what they keep from the old ones.
        if (model.Parameters.IsFrozen) model.Parameters.Freeze();
    }

    private static CrateConfig ConfigFrom(IReadOnlyDictionary<string, string> metadata, string path)
    {
        if (!metadata.TryGetValue(ConfigKey, out var json))
            throw new CrateConfigException(path, $"the checkpoint has no '{ConfigKey}' metadata (write it with `crate import` or CrateCheckpoint.Save)");
        return CrateConfig.FromJson(json, $"{path} (metadata '{ConfigKey}')");
    }
}
