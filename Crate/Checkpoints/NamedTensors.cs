using System.Collections;

namespace CrateIL.Crate.Checkpoints;

/// <summary>One named tensor from a checkpoint: row-major float32 values, its shape and the file's element type.</summary>
public sealed class NamedTensor
{
    public NamedTensor(string name, int[] shape, float[] data, TensorDType sourceDType = TensorDType.Float32)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(data);
        long numel = TensorDTypes.Numel(shape);
        if (numel < 0)
            throw new ArgumentException($"tensor '{name}': invalid shape {ShapeText.Format(shape)}", nameof(shape));
        if (numel != data.Length)
            throw new ArgumentException(
                $"tensor '{name}': shape {ShapeText.Format(shape)} holds {numel} elements but {data.Length} were given", nameof(data));
        Name = name;
        Shape = shape;
        Data = data;
        SourceDType = sourceDType;
    }

    public string Name { get; }

    /// <summary>Dimensions, outermost first; empty for a scalar.</summary>
    public int[] Shape { get; }

    /// <summary>Row-major (C order) values.</summary>
    public float[] Data { get; }

    /// <summary>The element type stored in the file the tensor came from (float32 for tensors made in C#).</summary>
    public TensorDType SourceDType { get; }

    public override string ToString() => $"{Name} {ShapeText.Format(Shape)} {SourceDType}";
}

/// <summary>
/// An ordered name → tensor map plus string metadata: what a checkpoint file holds once decoded. Insertion order
/// is kept (it is the order tensors are written in).
/// </summary>
public sealed class NamedTensors : IReadOnlyList<NamedTensor>
{
    private readonly List<NamedTensor> _tensors = [];
    private readonly Dictionary<string, int> _index = new(StringComparer.Ordinal);

    /// <summary>Free-form string metadata (safetensors <c>__metadata__</c>): CrateIL stores its config and training state here as JSON.</summary>
    public Dictionary<string, string> Metadata { get; } = new(StringComparer.Ordinal);

    public int Count => _tensors.Count;
    public NamedTensor this[int index] => _tensors[index];

    public NamedTensor this[string name] => _index.TryGetValue(name, out int i)
        ? _tensors[i]
        : throw new KeyNotFoundException($"no tensor named '{name}'");

    public IEnumerable<string> Names => _tensors.Select(t => t.Name);

    public bool Contains(string name) => _index.ContainsKey(name);

    public bool TryGet(string name, out NamedTensor tensor)
    {
        if (_index.TryGetValue(name, out int i)) { tensor = _tensors[i]; return true; }
        tensor = null!;
        return false;
    }

    /// <summary>Adds a tensor; a second tensor with the same name is an error.</summary>
    public NamedTensor Add(NamedTensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (!_index.TryAdd(tensor.Name, _tensors.Count))
            throw new ArgumentException($"duplicate tensor name '{tensor.Name}'", nameof(tensor));
        _tensors.Add(tensor);
        return tensor;
    }

    public NamedTensor Add(string name, int[] shape, float[] data, TensorDType sourceDType = TensorDType.Float32) =>
        Add(new NamedTensor(name, shape, data, sourceDType));

    public IEnumerator<NamedTensor> GetEnumerator() => _tensors.GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
