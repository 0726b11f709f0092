namespace CrateIL.Crate.Checkpoints;

/// <summary>A checkpoint file is malformed, truncated, or uses something this reader does not support.</summary>
public class CheckpointFormatException(string file, string problem, Exception? inner = null)
    : Exception($"{file}: {problem}", inner)
{
    public string File { get; } = file;
    public string Problem { get; } = problem;
}

/// <summary>
/// A pickle names a global outside the allow-list (e.g. <c>os.system</c>). The global was never looked up or
/// called: the reader only builds data, and refuses at the GLOBAL/STACK_GLOBAL opcode itself.
/// </summary>
public sealed class UnsafePickleException(string file, string module, string name, long offset)
    : CheckpointFormatException(file,
        $"pickle global '{module}.{name}' at byte {offset} is not on the allow-list (only tensor rebuilds, storages, " +
        "OrderedDict and a few primitives are accepted); refusing to load")
{
    public string Module { get; } = module;
    public string Name { get; } = name;
    public long Offset { get; } = offset;
}

/// <summary>The pickle stream is malformed: unknown opcode, truncated data, stack underflow, bad argument.</summary>
public sealed class PickleFormatException(string file, string problem, long offset, int opcode = -1)
    : CheckpointFormatException(file, opcode >= 0
        ? $"pickle opcode 0x{opcode:X2} at byte {offset}: {problem}"
        : $"pickle byte {offset}: {problem}")
{
    public long Offset { get; } = offset;

    /// <summary>The opcode byte involved, or -1.</summary>
    public int Opcode { get; } = opcode;
}

/// <summary>One state-dict entry named with its shape, as reported by a key comparison.</summary>
public readonly record struct TensorKey(string Name, int[] Shape)
{
    public override string ToString() => $"{Name} {ShapeText.Format(Shape)}";
}

/// <summary>Checkpoint keys differ from the model's (strict import).</summary>
public sealed class CheckpointKeyMismatchException(string file, IReadOnlyList<TensorKey> missing, IReadOnlyList<TensorKey> unexpected)
    : CheckpointFormatException(file, Describe(missing, unexpected))
{
    public IReadOnlyList<TensorKey> Missing { get; } = missing;
    public IReadOnlyList<TensorKey> Unexpected { get; } = unexpected;

    private static string Describe(IReadOnlyList<TensorKey> missing, IReadOnlyList<TensorKey> unexpected)
    {
        var parts = new List<string>();
        if (missing.Count > 0) parts.Add($"missing keys ({missing.Count}): " + string.Join(", ", missing));
        if (unexpected.Count > 0) parts.Add($"unexpected keys ({unexpected.Count}): " + string.Join(", ", unexpected));
        return "state_dict does not match the model: " + string.Join("; ", parts);
    }
}

/// <summary>A checkpoint tensor has a different shape from the model parameter of the same name.</summary>
public sealed class CheckpointShapeMismatchException(string file, string key, int[] expected, int[] actual)
    : CheckpointFormatException(file,
        $"shape mismatch for '{key}': model expects {ShapeText.Format(expected)}, checkpoint has {ShapeText.Format(actual)}")
{
    public string Key { get; } = key;
    public int[] Expected { get; } = expected;
    public int[] Actual { get; } = actual;
}

internal static class ShapeText
{
    public static string Format(ReadOnlySpan<int> shape) => "[" + string.Join(", ", shape.ToArray()) + "]";
}
