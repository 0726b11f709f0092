using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using CrateIL.Crate.Checkpoints;

namespace CrateIL.Crate.IO;

/// <summary>An .npy file is malformed or uses a layout this reader does not support.</summary>
public sealed class NpyFormatException(string file, string problem, Exception? inner = null) : Exception($"{file}: {problem}", inner)
{
    public string File { get; } = file;
    public string Problem { get; } = problem;
}

/// <summary>A C-order array read from .npy, converted to float32; <see cref="Descr"/> is the file's dtype.</summary>
public sealed class NpyArray(int[] shape, float[] data, string descr)
{
    public int[] Shape { get; } = shape;
    public float[] Data { get; } = data;

    /// <summary>The numpy dtype string from the header, e.g. <c>&lt;f4</c> or <c>|u1</c>.</summary>
    public string Descr { get; } = descr;
}

/// <summary>
/// NumPy's .npy format (versions 1, 2 and 3): magic <c>\x93NUMPY</c>, version bytes, a 2- or 4-byte little-endian
/// header length, a Python-literal header dict <c>{'descr', 'fortran_order', 'shape'}</c> padded to 64 bytes, then
/// the raw data. Reads little-endian <c>&lt;f4 &lt;f8 &lt;f2 &lt;i8 &lt;i4 |u1 |b1</c> in C order; writes <c>&lt;f4</c>.
/// </summary>
public static class Npy
{
    private static ReadOnlySpan<byte> Magic => [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];
    private const int MaxHeaderBytes = 1 << 20;

    public static NpyArray Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        FileStream stream;
        try { stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16); }
        catch (FileNotFoundException ex) { throw new NpyFormatException(path, "file not found", ex); }
        catch (DirectoryNotFoundException ex) { throw new NpyFormatException(path, "directory not found", ex); }
        using (stream) return Read(stream, path);
    }

    /// <summary>Reads one array from a seekable or forward-only stream; <paramref name="file"/> names it in errors.</summary>
    public static NpyArray Read(Stream stream, string file)
    {
        ArgumentNullException.ThrowIfNull(stream);
        Span<byte> prefix = stackalloc byte[8];
        ReadExactly(stream, prefix, file, "the magic and version");
        if (!prefix[..6].SequenceEqual(Magic))
            throw new NpyFormatException(file, "bad magic: not a .npy file (expected \\x93NUMPY)");
        int major = prefix[6];
        if (major is < 1 or > 3)
            throw new NpyFormatException(file, $"unsupported .npy version {major}.{prefix[7]} (readable: 1.x, 2.x, 3.x)");
        Span<byte> lengthBytes = stackalloc byte[4];
        int lengthWidth = major == 1 ? 2 : 4;
        ReadExactly(stream, lengthBytes[..lengthWidth], file, "the header length");
        long headerLength = major == 1 ? BinaryPrimitives.ReadUInt16LittleEndian(lengthBytes) : BinaryPrimitives.ReadUInt32LittleEndian(lengthBytes);
        if (headerLength > MaxHeaderBytes)
            throw new NpyFormatException(file, $"header length {headerLength} exceeds the {MaxHeaderBytes}-byte limit");
        var headerBytes = new byte[headerLength];
        ReadExactly(stream, headerBytes, file, "the header");
        string header;
        try
        {
            header = major == 3
                ? new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(headerBytes)
                : Encoding.Latin1.GetString(headerBytes);
        }
        catch (DecoderFallbackException ex) { throw new NpyFormatException(file, "header is not valid UTF-8", ex); }

        var (descr, fortranOrder, shape) = ParseHeader(header, file);
        if (fortranOrder)
            throw new NpyFormatException(file, "fortran_order arrays are not supported (save with np.ascontiguousarray)");
        if (descr.Length > 0 && descr[0] == '>')
            throw new NpyFormatException(file, $"big-endian dtype '{descr}' is not supported");
        TensorDType? dtype = descr switch
        {
            "<f4" => TensorDType.Float32,
            "<f8" => TensorDType.Float64,
            "<f2" => TensorDType.Float16,
            "<i8" => TensorDType.Int64,
            "<i4" => TensorDType.Int32,
            "|u1" or "<u1" => TensorDType.UInt8,
            "|b1" => TensorDType.Bool,
            _ => null,
        };
        if (dtype is null)
            throw new NpyFormatException(file, $"unsupported dtype '{descr}' (readable: <f4, <f8, <f2, <i8, <i4, |u1, |b1)");
        long numel = TensorDTypes.Numel(shape);
        if (numel < 0 || numel > Array.MaxLength)
            throw new NpyFormatException(file, $"shape {FormatShape(shape)} is too large");
        int size = TensorDTypes.Size(dtype.Value);
        long byteCount = numel * size;
        if (stream.CanSeek)
        {
            long remaining = stream.Length - stream.Position;
            if (remaining != byteCount)
                throw new NpyFormatException(file,
                    $"size mismatch: {descr} shape {FormatShape(shape)} needs {byteCount} data bytes but the file holds {remaining}");
        }
        var data = new float[numel];
        int perChunk = (int)Math.Max(1, Math.Min(numel, (1 << 20) / size));
        var chunk = new byte[perChunk * size];
        for (long done = 0; done < numel;)
        {
            int count = (int)Math.Min(perChunk, numel - done);
            var bytes = chunk.AsSpan(0, count * size);
            ReadExactly(stream, bytes, file, "the data (size mismatch)");
            TensorDTypes.ToFloat(bytes, dtype.Value, 0, data.AsSpan((int)done, count));
            done += count;
        }
        return new NpyArray(shape, data, descr);
    }

    /// <summary>Writes a C-order float32 array as .npy version 1 (2 if the header needs it), atomically.</summary>
    public static void Write(string path, int[] shape, ReadOnlySpan<float> data)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(shape);
        long numel = TensorDTypes.Numel(shape);
        if (numel < 0) throw new ArgumentException($"invalid shape {FormatShape(shape)}", nameof(shape));
        if (numel != data.Length)
            throw new ArgumentException($"shape {FormatShape(shape)} holds {numel} elements but {data.Length} were given", nameof(data));
        string dims = shape.Length == 1
            ? $"({shape[0]},)"
            : "(" + string.Join(", ", shape.Select(d => d.ToString(CultureInfo.InvariantCulture))) + ")";
        string dict = $"{{'descr': '<f4', 'fortran_order': False, 'shape': {dims}, }}";
        int major = dict.Length + 1 + 10 > ushort.MaxValue ? 2 : 1;
        int prefixLength = major == 1 ? 10 : 12;
        // Pad with spaces and a final newline so the data starts on a 64-byte boundary, as numpy does.
        int total = (prefixLength + dict.Length + 1 + 63) / 64 * 64;
        string header = dict.PadRight(total - prefixLength - 1) + "\n";
        var headerBytes = Encoding.Latin1.GetBytes(header);
        float[] copy = data.ToArray();
        AtomicFile.Write(path, stream =>
        {
            stream.Write(Magic);
            stream.WriteByte((byte)major);
            stream.WriteByte(0);
            Span<byte> length = stackalloc byte[4];
            if (major == 1)
            {
                BinaryPrimitives.WriteUInt16LittleEndian(length, (ushort)headerBytes.Length);
                stream.Write(length[..2]);
            }
            else
            {
                BinaryPrimitives.WriteUInt32LittleEndian(length, (uint)headerBytes.Length);
                stream.Write(length);
            }
            stream.Write(headerBytes);
            Safetensors.WriteFloats(stream, copy);
        });
    }

    private static void ReadExactly(Stream stream, Span<byte> buffer, string file, string what)
    {
        try { stream.ReadExactly(buffer); }
        catch (EndOfStreamException ex) { throw new NpyFormatException(file, $"file ended inside {what} (truncated)", ex); }
    }

    private static string FormatShape(int[] shape) => "(" + string.Join(", ", shape) + ")";

    /// <summary>Parses the header's Python dict literal (strings, True/False, tuples of ints), nothing else.</summary>
    private static (string Descr, bool FortranOrder, int[] Shape) ParseHeader(string header, string file)
    {
        var parser = new HeaderParser(header, file);
        string? descr = null;
        bool? fortran = null;
        int[]? shape = null;
        parser.Expect('{');
        while (true)
        {
            parser.SkipSpace();
            if (parser.TryTake('}')) break;
            string key = parser.ParseString();
            parser.SkipSpace();
            parser.Expect(':');
            parser.SkipSpace();
            switch (key)
            {
                case "descr":
                    if (parser.Peek() is not ('\'' or '"'))
                        throw parser.Fail("'descr' must be a simple dtype string (structured dtypes are not supported)");
                    descr = parser.ParseString();
                    break;
                case "fortran_order": fortran = parser.ParseBool(); break;
                case "shape": shape = parser.ParseIntTuple(); break;
                default: throw parser.Fail($"unexpected header key '{key}'");
            }
            parser.SkipSpace();
            if (parser.TryTake('}')) break;
            parser.Expect(',');
        }
        parser.SkipSpace();
        if (!parser.AtEnd) throw parser.Fail("text after the header dict");
        if (descr is null || fortran is null || shape is null)
            throw new NpyFormatException(file, "header lacks one of 'descr', 'fortran_order', 'shape'");
        return (descr, fortran.Value, shape);
    }

    private sealed class HeaderParser(string text, string file)
    {
        private int _at;

        public bool AtEnd => _at >= text.Length;
        public char Peek() => _at < text.Length ? text[_at] : '\0';

        public NpyFormatException Fail(string problem) => new(file, $"bad header at character {_at}: {problem} (header: {text.TrimEnd()})");

        public void SkipSpace()
        {
            while (_at < text.Length && char.IsWhiteSpace(text[_at])) _at++;
        }

        public bool TryTake(char c)
        {
            if (Peek() != c) return false;
            _at++;
            return true;
        }

        public void Expect(char c)
        {
            SkipSpace();
            if (!TryTake(c)) throw Fail($"expected '{c}'");
        }

        public string ParseString()
        {
            char quote = Peek();
            if (quote is not ('\'' or '"')) throw Fail("expected a quoted string");
            int end = text.IndexOf(quote, _at + 1);
            if (end < 0) throw Fail("unterminated string");
            string value = text[(_at + 1)..end];
            if (value.Contains('\\')) throw Fail("escaped strings are not supported");
            _at = end + 1;
            return value;
        }

        public bool ParseBool()
        {
            if (text.AsSpan(_at).StartsWith("True")) { _at += 4; return true; }
            if (text.AsSpan(_at).StartsWith("False")) { _at += 5; return false; }
            throw Fail("expected True or False");
        }

        public int[] ParseIntTuple()
        {
            Expect('(');
            var dims = new List<int>();
            while (true)
            {
                SkipSpace();
                if (TryTake(')')) break;
                int start = _at;
                while (_at < text.Length && char.IsAsciiDigit(text[_at])) _at++;
                if (_at == start) throw Fail("expected a non-negative integer in the shape");
                if (!int.TryParse(text.AsSpan(start, _at - start), NumberStyles.None, CultureInfo.InvariantCulture, out int dim))
                    throw Fail("shape dimension does not fit 32 bits");
                TryTake('L'); // Python 2 long suffix
                dims.Add(dim);
                SkipSpace();
                if (TryTake(')')) break;
                Expect(',');
            }
            return dims.ToArray();
        }
    }
}
