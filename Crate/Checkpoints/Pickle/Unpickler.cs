using System.Buffers.Binary;
using System.Globalization;
using System.Numerics;
using System.Text;

namespace CrateIL.Crate.Checkpoints.Pickle;

/// <summary>
/// A data-only pickle reader for protocols 2–5 (and the simple protocol-0/1 opcodes). It never imports or runs
/// Python code: globals resolve through an <see cref="IPickleHost"/> allow-list (anything else is refused with
/// <see cref="UnsafePickleException"/> at the GLOBAL opcode), and REDUCE / NEWOBJ / BUILD only apply the host's
/// C# implementations. Unknown or unsupported opcodes, truncation and malformed arguments raise
/// <see cref="PickleFormatException"/> naming the opcode and byte offset.
/// </summary>
public sealed class Unpickler
{
    private const int HighestProtocol = 5;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly byte[] _data;
    private readonly string _file;
    private readonly IPickleHost _host;
    private readonly List<object?> _stack = [];
    private readonly Stack<int> _marks = new();
    private readonly Dictionary<long, object?> _memo = [];
    private int _position;
    private int _opcodeStart;
    private int _opcode;

    private Unpickler(byte[] data, string file, IPickleHost host)
    {
        _data = data;
        _file = file;
        _host = host;
    }

    /// <summary>Unpickles one object from <paramref name="data"/>; <paramref name="file"/> names it in errors.</summary>
    public static object? Load(byte[] data, string file, IPickleHost? host = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(file);
        return new Unpickler(data, file, host ?? new SafePickleHost()).Run();
    }

    private object? Run()
    {
        while (true)
        {
            if (_position >= _data.Length)
                throw new PickleFormatException(_file, "stream ended without a STOP opcode (truncated pickle)", _position);
            _opcodeStart = _position;
            _opcode = _data[_position++];
            try
            {
                if (Step()) return Pop();
            }
            catch (InvalidDataException ex)
            {
                throw Error(ex.Message);
            }
            catch (OverflowException ex)
            {
                throw Error($"value out of range ({ex.Message})");
            }
        }
    }

    /// <summary>Executes one opcode; true at STOP.</summary>
    private bool Step()
    {
        switch (_opcode)
        {
            case 0x80: // PROTO
                int protocol = ReadByte();
                if (protocol > HighestProtocol) throw Error($"protocol {protocol} is newer than {HighestProtocol}");
                break;
            case 0x95: // FRAME: a length hint only; frames hold ordinary opcodes.
                long frame = (long)ReadUInt64();
                if (frame > _data.Length - _position) throw Error($"frame of {frame} bytes runs past the end of the data");
                break;
            case '.': // STOP
                return true;

            // Constants and numbers.
            case 'N': Push(null); break;
            case 0x88: Push(true); break;
            case 0x89: Push(false); break;
            case 'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Read(4))); break;
            case 'K': Push((long)ReadByte()); break;
            case 'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Read(2))); break;
            case 0x8a: Push(ReadLong(ReadByte())); break; // LONG1
            case 0x8b: Push(ReadLong(ReadLength(4))); break; // LONG4
            case 'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Read(8))); break; // BINFLOAT
            case 'I': Push(ParseTextInt(ReadLine())); break; // INT (protocol 0; "01"/"00" are True/False)
            case 'L': Push(ParseTextLong(ReadLine())); break; // LONG (protocol 0)
            case 'F': Push(ParseTextFloat(ReadLine())); break; // FLOAT (protocol 0)

            // Strings and bytes.
            case 'X': Push(Utf8(Read(ReadLength(4)))); break; // BINUNICODE
            case 0x8c: Push(Utf8(Read(ReadByte()))); break; // SHORT_BINUNICODE
            case 0x8d: Push(Utf8(Read(ReadLength(8)))); break; // BINUNICODE8
            case 'T': Push(Latin1(Read(ReadLength(4)))); break; // BINSTRING (Python 2 str)
            case 'U': Push(Latin1(Read(ReadByte()))); break; // SHORT_BINSTRING
            case 'B': Push(Read(ReadLength(4)).ToArray()); break; // BINBYTES
            case 'C': Push(Read(ReadByte()).ToArray()); break; // SHORT_BINBYTES
            case 0x8e: Push(Read(ReadLength(8)).ToArray()); break; // BINBYTES8
            case 0x96: Push(Read(ReadLength(8)).ToArray()); break; // BYTEARRAY8

            // Containers.
            case '(': _marks.Push(_stack.Count); break; // MARK
            case ')': Push(Array.Empty<object?>()); break; // EMPTY_TUPLE
            case 't': Push(PopMark().ToArray()); break; // TUPLE
            case 0x85: Push(new[] { Pop() }); break; // TUPLE1
            case 0x86: { var b = Pop(); var a = Pop(); Push(new[] { a, b }); break; } // TUPLE2
            case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); Push(new[] { a, b, c }); break; } // TUPLE3
            case ']': Push(new List<object?>()); break; // EMPTY_LIST
            case 'l': Push(PopMark()); break; // LIST
            case 'a': { var item = Pop(); AsList(Peek()).Add(item); break; } // APPEND
            case 'e': { var items = PopMark(); AsList(Peek()).AddRange(items); break; } // APPENDS
            case '}': Push(new PickleDict()); break; // EMPTY_DICT
            case 'd': { var dict = new PickleDict(); SetItems(dict, PopMark()); Push(dict); break; } // DICT
            case 's': { var value = Pop(); var key = Pop(); AsDict(Peek()).Set(key, value); break; } // SETITEM
            case 'u': { var items = PopMark(); SetItems(AsDict(Peek()), items); break; } // SETITEMS
            case 0x8f: Push(new PickleSet()); break; // EMPTY_SET
            case 0x90: { var items = PopMark(); var set = AsSet(Peek()); foreach (var item in items) set.Add(item); break; } // ADDITEMS
            case 0x91: { var set = new PickleSet(); foreach (var item in PopMark()) set.Add(item); set.Frozen = true; Push(set); break; } // FROZENSET

            // Stack manipulation.
            case '0': Pop(); break; // POP
            case '1': PopMark(); break; // POP_MARK
            case '2': Push(Peek()); break; // DUP

            // Memo.
            case 'q': _memo[ReadByte()] = Peek(); break; // BINPUT
            case 'r': _memo[BinaryPrimitives.ReadUInt32LittleEndian(Read(4))] = Peek(); break; // LONG_BINPUT
            case 0x94: _memo[_memo.Count] = Peek(); break; // MEMOIZE
            case 'p': _memo[ParseMemoIndex(ReadLine())] = Peek(); break; // PUT
            case 'h': Push(MemoGet(ReadByte())); break; // BINGET
            case 'j': Push(MemoGet(BinaryPrimitives.ReadUInt32LittleEndian(Read(4)))); break; // LONG_BINGET
            case 'g': Push(MemoGet(ParseMemoIndex(ReadLine()))); break; // GET

            // Globals and object construction: only what the host allows.
            case 'c': // GLOBAL "module\nname\n"
            {
                string module = Latin1(ReadLine());
                string name = Latin1(ReadLine());
                Push(ResolveGlobal(module, name));
                break;
            }
            case 0x93: // STACK_GLOBAL
            {
                var name = Pop();
                var module = Pop();
                if (module is not string m || name is not string n)
                    throw Error($"STACK_GLOBAL needs two strings, got {PickleText.TypeName(module)} and {PickleText.TypeName(name)}");
                Push(ResolveGlobal(m, n));
                break;
            }
            case 'R': // REDUCE
            {
                var args = Pop();
                var callable = Pop();
                if (args is not object?[] tuple) throw Error($"REDUCE arguments must be a tuple, got {PickleText.TypeName(args)}");
                Push(_host.Call(callable ?? throw Error("REDUCE on None"), tuple));
                break;
            }
            case 0x81: // NEWOBJ
            {
                var args = Pop();
                var cls = Pop();
                if (args is not object?[] tuple) throw Error($"NEWOBJ arguments must be a tuple, got {PickleText.TypeName(args)}");
                Push(_host.NewObject(cls ?? throw Error("NEWOBJ on None"), tuple));
                break;
            }
            case 0x92: // NEWOBJ_EX
            {
                var kwargs = Pop();
                var args = Pop();
                var cls = Pop();
                if (args is not object?[] tuple) throw Error($"NEWOBJ_EX arguments must be a tuple, got {PickleText.TypeName(args)}");
                if (kwargs is not PickleDict { Count: 0 }) throw Error("NEWOBJ_EX with keyword arguments is not supported");
                Push(_host.NewObject(cls ?? throw Error("NEWOBJ_EX on None"), tuple));
                break;
            }
            case 'b': // BUILD
            {
                var state = Pop();
                _host.Build(Peek(), state);
                break;
            }
            case 'Q': Push(_host.PersistentLoad(Pop())); break; // BINPERSID
            case 'P': Push(_host.PersistentLoad(Latin1(ReadLine()))); break; // PERSID

            case 'i' or 'o':
                throw Error("INST/OBJ (protocol 0/1 class instantiation) is not supported");
            case 0x82 or 0x83 or 0x84:
                throw Error("extension registry codes (EXT1/2/4) are not supported");
            case 0x97 or 0x98:
                throw Error("out-of-band buffers (protocol 5 NEXT_BUFFER/READONLY_BUFFER) are not supported");
            case 'S' or 'V':
                throw Error("protocol-0 quoted strings (STRING/UNICODE) are not supported");
            default:
                throw Error("unknown opcode");
        }
        return false;
    }

    private object ResolveGlobal(string module, string name) =>
        _host.ResolveGlobal(module, name) ?? throw new UnsafePickleException(_file, module, name, _opcodeStart);

    private PickleFormatException Error(string problem) => new(_file, problem, _opcodeStart, _opcode);

    private void Push(object? value) => _stack.Add(value);

    private object? Pop()
    {
        int floor = _marks.Count > 0 ? _marks.Peek() : 0;
        if (_stack.Count <= floor) throw Error("stack underflow");
        var value = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return value;
    }

    private object? Peek()
    {
        int floor = _marks.Count > 0 ? _marks.Peek() : 0;
        if (_stack.Count <= floor) throw Error("stack underflow");
        return _stack[^1];
    }

    private List<object?> PopMark()
    {
        if (_marks.Count == 0) throw Error("no MARK on the stack");
        int mark = _marks.Pop();
        var items = _stack.GetRange(mark, _stack.Count - mark);
        _stack.RemoveRange(mark, _stack.Count - mark);
        return items;
    }

    private object? MemoGet(long index) =>
        _memo.TryGetValue(index, out var value) ? value : throw Error($"memo index {index} was never stored");

    private List<object?> AsList(object? value) =>
        value as List<object?> ?? throw Error($"APPEND to a {PickleText.TypeName(value)}, not a list");

    private PickleDict AsDict(object? value) =>
        value as PickleDict ?? throw Error($"SETITEM on a {PickleText.TypeName(value)}, not a dict");

    private PickleSet AsSet(object? value) =>
        value as PickleSet ?? throw Error($"ADDITEMS on a {PickleText.TypeName(value)}, not a set");

    private void SetItems(PickleDict dict, List<object?> items)
    {
        if (items.Count % 2 != 0) throw Error($"odd number of items ({items.Count}) for key/value pairs");
        for (int i = 0; i < items.Count; i += 2) dict.Set(items[i], items[i + 1]);
    }

    private byte ReadByte()
    {
        if (_position >= _data.Length) throw Truncated(1);
        return _data[_position++];
    }

    private ReadOnlySpan<byte> Read(long count)
    {
        if (count > _data.Length - _position) throw Truncated(count);
        var span = _data.AsSpan(_position, (int)count);
        _position += (int)count;
        return span;
    }

    private ulong ReadUInt64() => BinaryPrimitives.ReadUInt64LittleEndian(Read(8));

    /// <summary>A little-endian length of 4 or 8 bytes, checked against the bytes that remain.</summary>
    private long ReadLength(int width)
    {
        ulong length = width == 4 ? BinaryPrimitives.ReadUInt32LittleEndian(Read(4)) : ReadUInt64();
        if (length > (ulong)(_data.Length - _position)) throw Truncated((long)Math.Min(length, long.MaxValue));
        return (long)length;
    }

    private ReadOnlySpan<byte> ReadLine()
    {
        int end = Array.IndexOf(_data, (byte)'\n', _position);
        if (end < 0) throw Error("line argument has no terminating newline (truncated pickle)");
        var line = _data.AsSpan(_position, end - _position);
        _position = end + 1;
        return line;
    }

    private PickleFormatException Truncated(long needed) =>
        Error($"needs {needed} more bytes but only {_data.Length - _position} remain (truncated pickle)");

    /// <summary>Little-endian two's complement integer of any width; a long when it fits.</summary>
    private object ReadLong(long width)
    {
        var value = new BigInteger(Read(width), isUnsigned: false, isBigEndian: false);
        return value >= long.MinValue && value <= long.MaxValue ? (object)(long)value : value;
    }

    private string Utf8(ReadOnlySpan<byte> bytes)
    {
        try { return StrictUtf8.GetString(bytes); }
        catch (DecoderFallbackException) { throw Error("string is not valid UTF-8"); }
    }

    private static string Latin1(ReadOnlySpan<byte> bytes) => Encoding.Latin1.GetString(bytes);

    private object ParseTextInt(ReadOnlySpan<byte> line)
    {
        string text = Latin1(line);
        if (text == "00") return false;
        if (text == "01") return true;
        return ParseInteger(text);
    }

    private object ParseTextLong(ReadOnlySpan<byte> line)
    {
        string text = Latin1(line);
        return ParseInteger(text.EndsWith('L') ? text[..^1] : text);
    }

    private object ParseInteger(string text)
    {
        if (!BigInteger.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
            throw Error($"'{text}' is not an integer");
        return value >= long.MinValue && value <= long.MaxValue ? (object)(long)value : value;
    }

    private double ParseTextFloat(ReadOnlySpan<byte> line)
    {
        string text = Latin1(line);
        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value)
            ? value
            : throw Error($"'{text}' is not a float");
    }

    private long ParseMemoIndex(ReadOnlySpan<byte> line)
    {
        string text = Latin1(line);
        return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long value)
            ? value
            : throw Error($"'{text}' is not a memo index");
    }
}
