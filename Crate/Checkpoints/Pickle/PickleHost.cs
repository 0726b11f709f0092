namespace CrateIL.Crate.Checkpoints.Pickle;

/// <summary>
/// What the unpickler may build beyond plain data. Every global a pickle names is passed through
/// <see cref="ResolveGlobal"/>; an unlisted one is refused before anything else happens, and REDUCE / NEWOBJ / BUILD
/// only ever apply the C# implementations returned from it. Hosts report bad arguments with
/// <see cref="InvalidDataException"/>; the unpickler adds the file, opcode and offset.
/// </summary>
public interface IPickleHost
{
    /// <summary>A token standing for an allowed global, or null to refuse it.</summary>
    object? ResolveGlobal(string module, string name);

    /// <summary>REDUCE: applies an allowed callable to its argument tuple.</summary>
    object? Call(object callable, object?[] args);

    /// <summary>NEWOBJ: <c>cls.__new__(cls, *args)</c> for an allowed class.</summary>
    object? NewObject(object cls, object?[] args);

    /// <summary>BUILD: sets <paramref name="state"/> on <paramref name="target"/> in place.</summary>
    void Build(object? target, object? state);

    /// <summary>BINPERSID / PERSID: resolves a persistent id (PyTorch storages).</summary>
    object? PersistentLoad(object? pid);
}

/// <summary>A global the allow-list accepted; hosts compare <see cref="Kind"/>.</summary>
public sealed class PickleGlobal(string module, string name, int kind)
{
    public string Module { get; } = module;
    public string Name { get; } = name;
    public int Kind { get; } = kind;
    public override string ToString() => $"{Module}.{Name}";
}

/// <summary>
/// The base allow-list: <c>collections.OrderedDict</c>, <c>_codecs.encode</c> (protocol 2 writes bytes with it),
/// <c>builtins.set/frozenset/bytearray</c>. No persistent ids. Subclasses add globals (see the PyTorch host).
/// </summary>
public class SafePickleHost : IPickleHost
{
    private const int OrderedDict = 1, CodecsEncode = 2, Set = 3, FrozenSet = 4, ByteArray = 5;

    public virtual object? ResolveGlobal(string module, string name)
    {
        int kind = (module, name) switch
        {
            ("collections", "OrderedDict") => OrderedDict,
            ("_codecs", "encode") => CodecsEncode,
            ("builtins" or "__builtin__", "set") => Set,
            ("builtins" or "__builtin__", "frozenset") => FrozenSet,
            ("builtins" or "__builtin__", "bytearray") => ByteArray,
            _ => 0,
        };
        return kind == 0 ? null : new PickleGlobal(module, name, kind);
    }

    public virtual object? Call(object callable, object?[] args)
    {
        var global = callable as PickleGlobal ?? throw new InvalidDataException($"REDUCE on a {PickleText.TypeName(callable)}, which is not callable");
        switch (global.Kind)
        {
            case OrderedDict:
                var dict = new PickleDict();
                if (args.Length == 1)
                {
                    if (args[0] is not List<object?> pairs)
                        throw new InvalidDataException($"OrderedDict argument must be a list of pairs, got {PickleText.TypeName(args[0])}");
                    foreach (var pair in pairs)
                    {
                        if (pair is not object?[] { Length: 2 } kv)
                            throw new InvalidDataException("OrderedDict item is not a (key, value) pair");
                        dict.Set(kv[0], kv[1]);
                    }
                }
                else if (args.Length != 0)
                    throw new InvalidDataException($"OrderedDict takes at most 1 argument, got {args.Length}");
                return dict;
            case CodecsEncode:
                if (args is not [string text, string encoding] || encoding is not ("latin1" or "latin-1"))
                    throw new InvalidDataException("_codecs.encode accepted only as encode(str, 'latin1')");
                return Latin1(text);
            case Set:
            case FrozenSet:
                var set = new PickleSet();
                if (args.Length == 1)
                {
                    if (args[0] is not List<object?> items)
                        throw new InvalidDataException($"{global.Name} argument must be a list, got {PickleText.TypeName(args[0])}");
                    foreach (var item in items) set.Add(item);
                }
                else if (args.Length != 0)
                    throw new InvalidDataException($"{global.Name} takes at most 1 argument, got {args.Length}");
                set.Frozen = global.Kind == FrozenSet;
                return set;
            case ByteArray:
                return args switch
                {
                    [] => Array.Empty<byte>(),
                    [byte[] bytes] => bytes.ToArray(),
                    [string chars, string charsEncoding] when charsEncoding is "latin1" or "latin-1" => Latin1(chars),
                    _ => throw new InvalidDataException("bytearray accepted only as bytearray(), bytearray(bytes) or bytearray(str, 'latin-1')"),
                };
            default:
                throw new InvalidDataException($"{global} is not callable here");
        }
    }

    public virtual object? NewObject(object cls, object?[] args)
    {
        if (cls is PickleGlobal { Kind: OrderedDict or Set or FrozenSet } && args.Length == 0) return Call(cls, args);
        throw new InvalidDataException($"NEWOBJ of {Describe(cls)} is not supported");
    }

    public virtual void Build(object? target, object? state)
    {
        // An OrderedDict subclass instance (e.g. a state_dict) carries its __dict__ (such as _metadata) as BUILD state.
        if (target is PickleDict dict)
        {
            object? attributes = state is object?[] { Length: 2 } pair ? pair[0] : state;
            if (attributes is PickleDict values)
            {
                foreach (var (key, value) in values) dict.Attributes.Set(key, value);
                return;
            }
            if (attributes is null) return;
        }
        throw new InvalidDataException($"BUILD with {PickleText.TypeName(state)} state on {Describe(target)} is not supported");
    }

    public virtual object? PersistentLoad(object? pid) =>
        throw new InvalidDataException($"persistent id {PickleText.Describe(pid)} but this file type has no persistent objects");

    protected static string Describe(object? value) => value is PickleGlobal g ? g.ToString() : PickleText.TypeName(value);

    private static byte[] Latin1(string text)
    {
        var bytes = new byte[text.Length];
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] > 0xFF) throw new InvalidDataException("latin-1 text holds a character above U+00FF");
            bytes[i] = (byte)text[i];
        }
        return bytes;
    }
}
