using System.Collections;
using System.Numerics;

namespace CrateIL.Crate.Checkpoints.Pickle;

// Unpickled values are plain C# data: null (None), bool, long, BigInteger (ints beyond 64 bits), double, string,
// byte[] (bytes, bytearray), object?[] (tuple), List<object?> (list), PickleDict (dict, OrderedDict), PickleSet,
// plus whatever an allow-listed callable builds (e.g. TorchTensor).

/// <summary>A Python dict (or OrderedDict): insertion-ordered; keys compared by value (tuples structurally).</summary>
public sealed class PickleDict : IEnumerable<KeyValuePair<object?, object?>>
{
    private readonly List<KeyValuePair<object?, object?>> _items = [];
    private readonly Dictionary<object, int> _index = new(PickleKeyComparer.Instance);
    private int _nullIndex = -1;

    /// <summary>Instance attributes set by BUILD (e.g. a state_dict's <c>_metadata</c>); not dict items.</summary>
    public PickleDict Attributes => _attributes ??= new PickleDict();
    private PickleDict? _attributes;

    public int Count => _items.Count;
    public IEnumerable<object?> Keys => _items.Select(kv => kv.Key);

    public object? this[object? key]
    {
        get => TryGetValue(key, out var value) ? value : throw new KeyNotFoundException($"no key {PickleText.Describe(key)}");
        set => Set(key, value);
    }

    public void Set(object? key, object? value)
    {
        PickleKeyComparer.CheckHashable(key);
        int i = key is null ? _nullIndex : _index.GetValueOrDefault(key, -1);
        if (i >= 0)
        {
            _items[i] = new(_items[i].Key, value);
            return;
        }
        if (key is null) _nullIndex = _items.Count;
        else _index[key] = _items.Count;
        _items.Add(new(key, value));
    }

    public bool ContainsKey(object? key) => TryGetValue(key, out _);

    public bool TryGetValue(object? key, out object? value)
    {
        PickleKeyComparer.CheckHashable(key);
        int i = key is null ? _nullIndex : _index.GetValueOrDefault(key, -1);
        value = i >= 0 ? _items[i].Value : null;
        return i >= 0;
    }

    public IEnumerator<KeyValuePair<object?, object?>> GetEnumerator() => _items.GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>A Python set or frozenset (kept as an insertion-ordered list of distinct items).</summary>
public sealed class PickleSet : IEnumerable<object?>
{
    private readonly List<object?> _items = [];
    private readonly HashSet<object> _seen = new(PickleKeyComparer.Instance);
    private bool _hasNull;

    public bool Frozen { get; internal set; }
    public int Count => _items.Count;

    public void Add(object? item)
    {
        PickleKeyComparer.CheckHashable(item);
        if (item is null ? !_hasNull : _seen.Add(item))
        {
            if (item is null) _hasNull = true;
            _items.Add(item);
        }
    }

    public IEnumerator<object?> GetEnumerator() => _items.GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>Key equality as Python sees it for the key types pickles carry: numbers by value, tuples structurally.</summary>
internal sealed class PickleKeyComparer : IEqualityComparer<object>
{
    public static readonly PickleKeyComparer Instance = new();

    /// <summary>Keys nested deeper than this are refused: hashing and comparing them recurses.</summary>
    public const int MaxKeyDepth = 64;

    public static void CheckHashable(object? key, int depth = 0)
    {
        switch (key)
        {
            case List<object?> or PickleDict or PickleSet { Frozen: false }:
                throw new InvalidDataException($"unhashable key of type {PickleText.TypeName(key)}");
            case object?[] tuple:
                if (depth >= MaxKeyDepth) throw new InvalidDataException($"key tuple nested deeper than {MaxKeyDepth}");
                foreach (var item in tuple) CheckHashable(item, depth + 1);
                break;
        }
    }

    public new bool Equals(object? x, object? y)
    {
        if (ReferenceEquals(x, y)) return true;
        if (x is null || y is null) return false;
        if (x is object?[] a && y is object?[] b)
        {
            if (a.Length != b.Length) return false;
            for (int i = 0; i < a.Length; i++)
                if (!Equals(a[i], b[i])) return false;
            return true;
        }
        if (x is byte[] xb && y is byte[] yb) return xb.AsSpan().SequenceEqual(yb);
        if (IsNumber(x) && IsNumber(y)) return Number(x) == Number(y);
        return x.Equals(y);
    }

    public int GetHashCode(object obj)
    {
        switch (obj)
        {
            case object?[] tuple:
                var hash = new HashCode();
                foreach (var item in tuple) hash.Add(item is null ? 0 : GetHashCode(item));
                return hash.ToHashCode();
            case byte[] bytes:
                var bytesHash = new HashCode();
                bytesHash.AddBytes(bytes);
                return bytesHash.ToHashCode();
            default:
                return IsNumber(obj) ? Number(obj).GetHashCode() : obj.GetHashCode();
        }
    }

    private static bool IsNumber(object value) => value is bool or long or BigInteger or double;

    // Python: True == 1 == 1.0 hash alike. Exact for the integers checkpoints use as keys.
    private static double Number(object value) => value switch
    {
        bool b => b ? 1 : 0,
        long l => l,
        BigInteger big => (double)big,
        double d => d,
        _ => double.NaN,
    };
}

internal static class PickleText
{
    public static string TypeName(object? value) => value switch
    {
        null => "None",
        bool => "bool",
        long or BigInteger => "int",
        double => "float",
        string => "str",
        byte[] => "bytes",
        object?[] => "tuple",
        List<object?> => "list",
        PickleDict => "dict",
        PickleSet => "set",
        _ => value.GetType().Name,
    };

    /// <summary>A short Python-like rendering for error messages (nested tuples cut off).</summary>
    public static string Describe(object? value) => Describe(value, 0);

    private static string Describe(object? value, int depth) => value switch
    {
        null => "None",
        string s => s.Length <= 80 ? $"'{s}'" : $"'{s[..80]}…'",
        bool b => b ? "True" : "False",
        object?[] when depth >= 3 => "(…)",
        object?[] t => "(" + string.Join(", ", t.Take(8).Select(item => Describe(item, depth + 1))) + (t.Length > 8 ? ", …)" : t.Length == 1 ? ",)" : ")"),
        long or BigInteger or double => Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture)!,
        _ => TypeName(value),
    };
}
