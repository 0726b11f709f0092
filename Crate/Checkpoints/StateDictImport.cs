using System.Numerics;
using CrateIL.Crate.Checkpoints.Pickle;

namespace CrateIL.Crate.Checkpoints;

/// <summary>The outcome of importing a state_dict: tensors under model names, and how they matched the model.</summary>
public sealed class CheckpointImport
{
    internal CheckpointImport(string file, NamedTensors tensors, string? wrapper, IReadOnlyList<TensorKey> missing,
        IReadOnlyList<TensorKey> unexpected, IReadOnlyList<string> skipped, IReadOnlyDictionary<string, object?> extras)
    {
        File = file;
        Tensors = tensors;
        Wrapper = wrapper;
        Missing = missing;
        Unexpected = unexpected;
        Skipped = skipped;
        Extras = extras;
    }

    public string File { get; }

    /// <summary>State-dict tensors with any <c>module.</c> prefix removed, in file order.</summary>
    public NamedTensors Tensors { get; }

    /// <summary>The top-level key the state_dict came from (<c>state_dict</c> or <c>model</c>), or null for a bare one.</summary>
    public string? Wrapper { get; }

    /// <summary>Expected keys the checkpoint lacks (empty when no expectation was given).</summary>
    public IReadOnlyList<TensorKey> Missing { get; }

    /// <summary>Checkpoint tensors the model does not have (empty when no expectation was given).</summary>
    public IReadOnlyList<TensorKey> Unexpected { get; }

    /// <summary>State-dict entries that are not tensors, skipped in non-strict mode (e.g. a saved Python scalar).</summary>
    public IReadOnlyList<string> Skipped { get; }

    /// <summary>
    /// Other top-level entries of a wrapper dict (<c>epoch</c>, <c>arch</c>, <c>best_acc1</c>, <c>optimizer</c>, …)
    /// as unpickled values (see <see cref="PthCheckpoint.Root"/>).
    /// </summary>
    public IReadOnlyDictionary<string, object?> Extras { get; }

    /// <summary>An extra entry as a number: Python int/float/bool, a numpy scalar, or a one-element tensor.</summary>
    public bool TryGetNumber(string key, out double value)
    {
        value = double.NaN;
        if (!Extras.TryGetValue(key, out var raw)) return false;
        switch (raw)
        {
            case long l: value = l; return true;
            case double d: value = d; return true;
            case bool b: value = b ? 1 : 0; return true;
            case BigInteger big: value = (double)big; return true;
            case TorchTensor { Data.Length: 1 } t: value = t.Data[0]; return true;
            default: return false;
        }
    }
}

/// <summary>
/// Imports a state_dict: accepts a bare state_dict or a dict wrapping it under <c>state_dict</c> (CRATE's main.py
/// checkpoints) or <c>model</c> (the demo checkpoint), strips the <c>module.</c> prefix that DataParallel/DDP add,
/// and compares the tensors with the model's expected (name, shape) list.
/// </summary>
public static class StateDictImport
{
    public const string DataParallelPrefix = "module.";

    /// <summary>
    /// Loads a PyTorch checkpoint. With <paramref name="expected"/>, strict mode throws
    /// <see cref="CheckpointKeyMismatchException"/> on any missing or unexpected key and on non-tensor state-dict
    /// entries; non-strict mode reports them. A shape mismatch always throws
    /// <see cref="CheckpointShapeMismatchException"/>.
    /// </summary>
    public static CheckpointImport LoadPth(string path, IReadOnlyList<TensorKey>? expected = null, bool strict = true)
    {
        var checkpoint = PthCheckpoint.Load(path);
        if (checkpoint.Root is not PickleDict root)
            throw new CheckpointFormatException(path, $"checkpoint holds a {PickleText.TypeName(checkpoint.Root)}, expected a dict (a state_dict or a wrapper of one)");

        string? wrapper = null;
        PickleDict stateDict = root;
        foreach (string key in new[] { "state_dict", "model" })
        {
            if (root.TryGetValue(key, out var inner) && inner is PickleDict dict)
            {
                wrapper = key;
                stateDict = dict;
                break;
            }
        }
        var extras = new Dictionary<string, object?>(StringComparer.Ordinal);
        if (wrapper is not null)
            foreach (var (key, value) in root)
                if (key is string name && name != wrapper) extras[name] = value;

        var tensors = new NamedTensors();
        var skipped = new List<string>();
        foreach (var (key, value) in stateDict)
        {
            if (key is not string name)
                throw new CheckpointFormatException(path, $"state_dict key {PickleText.Describe(key)} is not a string");
            if (value is not TorchTensor tensor)
            {
                if (strict)
                    throw new CheckpointFormatException(path, $"state_dict entry '{name}' is a {PickleText.TypeName(value)}, not a tensor");
                skipped.Add(name);
                continue;
            }
            string stripped = StripPrefix(name);
            if (tensors.Contains(stripped))
                throw new CheckpointFormatException(path, $"state_dict has '{stripped}' both with and without the '{DataParallelPrefix}' prefix");
            tensors.Add(stripped, tensor.Shape, tensor.Data, tensor.DType);
        }
        return Match(path, tensors, expected, strict, wrapper, skipped, extras);
    }

    /// <summary>Compares already-loaded tensors (e.g. from safetensors) with the model, after stripping <c>module.</c>.</summary>
    public static CheckpointImport FromTensors(string file, NamedTensors tensors, IReadOnlyList<TensorKey>? expected = null, bool strict = true)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var renamed = new NamedTensors();
        foreach (var (key, value) in tensors.Metadata) renamed.Metadata[key] = value;
        foreach (var tensor in tensors)
        {
            string stripped = StripPrefix(tensor.Name);
            if (renamed.Contains(stripped))
                throw new CheckpointFormatException(file, $"'{stripped}' appears both with and without the '{DataParallelPrefix}' prefix");
            renamed.Add(stripped, tensor.Shape, tensor.Data, tensor.SourceDType);
        }
        return Match(file, renamed, expected, strict, null, [], new Dictionary<string, object?>());
    }

    private static string StripPrefix(string name) =>
        name.StartsWith(DataParallelPrefix, StringComparison.Ordinal) ? name[DataParallelPrefix.Length..] : name;

    private static CheckpointImport Match(string file, NamedTensors tensors, IReadOnlyList<TensorKey>? expected, bool strict,
        string? wrapper, IReadOnlyList<string> skipped, IReadOnlyDictionary<string, object?> extras)
    {
        var missing = new List<TensorKey>();
        var unexpected = new List<TensorKey>();
        if (expected is not null)
        {
            var expectedNames = new HashSet<string>(StringComparer.Ordinal);
            foreach (var key in expected)
            {
                if (!expectedNames.Add(key.Name))
                    throw new ArgumentException($"expected key '{key.Name}' is listed twice", nameof(expected));
                if (!tensors.TryGet(key.Name, out var tensor))
                {
                    missing.Add(key);
                    continue;
                }
                if (!tensor.Shape.AsSpan().SequenceEqual(key.Shape))
                    throw new CheckpointShapeMismatchException(file, key.Name, key.Shape, tensor.Shape);
            }
            foreach (var tensor in tensors)
                if (!expectedNames.Contains(tensor.Name)) unexpected.Add(new TensorKey(tensor.Name, tensor.Shape));
            if (strict && (missing.Count > 0 || unexpected.Count > 0))
                throw new CheckpointKeyMismatchException(file, missing, unexpected);
        }
        return new CheckpointImport(file, tensors, wrapper, missing, unexpected, skipped, extras);
    }
}
