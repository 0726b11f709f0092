namespace CrateIL.Compute.Tensors;

/// <summary>A row-major shape of 1 to 5 dimensions (4-D plus batch). Immutable.</summary>
public readonly struct TensorShape : IEquatable<TensorShape>
{
    public const int MaxRank = 5;
    private readonly int[] _dims;

    public TensorShape(params int[] dims)
    {
        ArgumentNullException.ThrowIfNull(dims);
        if (dims.Length is < 1 or > MaxRank)
            throw new ArgumentException($"A tensor has 1 to {MaxRank} dimensions, got {dims.Length}", nameof(dims));
        long n = 1;
        foreach (var d in dims)
        {
            if (d < 0) throw new ArgumentException($"Negative dimension in shape [{string.Join(", ", dims)}]", nameof(dims));
            n *= d;
        }
        _dims = (int[])dims.Clone();
        Length = n;
    }

    public int Rank => _dims?.Length ?? 0;
    public long Length { get; }
    public int this[int axis] => _dims[axis < 0 ? _dims.Length + axis : axis];
    public ReadOnlySpan<int> Dims => _dims;

    /// <summary>Product of all dimensions but the last: the number of rows of a row-wise op.</summary>
    public long Rows
    {
        get
        {
            long r = 1;
            for (int i = 0; i < _dims.Length - 1; i++) r *= _dims[i];
            return r;
        }
    }

    public int LastDim => this[-1];

    public bool Equals(TensorShape other) => Dims.SequenceEqual(other.Dims);
    public override bool Equals(object? obj) => obj is TensorShape s && Equals(s);
    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (var d in Dims) h.Add(d);
        return h.ToHashCode();
    }
    public static bool operator ==(TensorShape a, TensorShape b) => a.Equals(b);
    public static bool operator !=(TensorShape a, TensorShape b) => !a.Equals(b);
    public override string ToString() => $"[{string.Join(", ", _dims ?? [])}]";
}
