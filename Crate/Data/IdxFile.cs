using System.Buffers.Binary;
using System.IO.Compression;

namespace CrateIL.Crate.Data;

/// <summary>An unsigned-byte idx array: its dimensions (outermost first) and the data in C order.</summary>
public sealed class IdxArray
{
    public IdxArray(IReadOnlyList<int> dimensions, byte[] data)
    {
        ArgumentNullException.ThrowIfNull(dimensions);
        ArgumentNullException.ThrowIfNull(data);
        if (dimensions.Count is 0 or > 255) throw new ArgumentException($"{dimensions.Count} dimensions: idx holds 1..255", nameof(dimensions));
        long n = 1;
        foreach (int d in dimensions)
        {
            if (d < 0) throw new ArgumentOutOfRangeException(nameof(dimensions), $"dimension {d} is negative");
            n *= d;
        }
        if (n != data.Length) throw new ArgumentException($"dimensions [{string.Join(", ", dimensions)}] need {n} bytes, not {data.Length}", nameof(data));
        Dimensions = [.. dimensions];
        Data = data;
    }

    public IReadOnlyList<int> Dimensions { get; }
    public byte[] Data { get; }
}

/// <summary>
/// The idx format of MNIST and Fashion-MNIST: two zero bytes, an element-type byte (0x08 = unsigned byte, the only one read
/// here), the dimension count, one big-endian int32 per dimension, then the data. Files starting with the gzip magic
/// (1f 8b) are decompressed first, whatever their name.
/// </summary>
public static class IdxFile
{
    private const byte UnsignedByte = 0x08;

    public static IdxArray Read(string path)
    {
        byte[] raw;
        try
        {
            raw = File.ReadAllBytes(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new DatasetException(path, $"cannot read the idx file: {ex.Message}", ex);
        }
        return Parse(raw, path);
    }

    /// <summary>Parses idx bytes (gzip-compressed or not); <paramref name="source"/> names them in errors.</summary>
    public static IdxArray Parse(byte[] bytes, string source)
    {
        if (bytes.Length >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b) return ParseGzip(bytes, source);
        var (dims, count, headerLength) = ReadHeader(bytes, bytes.Length, source);
        long available = bytes.Length - headerLength;
        if (available < count)
            throw new DatasetException(source, $"truncated: dimensions [{string.Join(", ", dims)}] need {count} data bytes, the file has {available}");
        if (available > count)
            throw new DatasetException(source, $"{available - count} unexpected bytes after the {count} data bytes of [{string.Join(", ", dims)}]");
        return new IdxArray(dims, bytes.AsSpan(headerLength).ToArray());
    }

    /// <summary>
    /// The dimensions and element count declared by the header at the start of <paramref name="header"/>, checked;
    /// <paramref name="length"/> is how many bytes the whole (uncompressed) content has, as far as is known.
    /// </summary>
    private static (int[] Dims, long Count, int HeaderLength) ReadHeader(ReadOnlySpan<byte> header, long length, string source)
    {
        if (length < 4) throw new DatasetException(source, $"truncated idx header: {length} bytes, at least 4 are needed");
        if (header[0] != 0 || header[1] != 0)
            throw new DatasetException(source, $"bad magic 0x{header[0]:x2}{header[1]:x2}{header[2]:x2}{header[3]:x2}: an idx file starts with two zero bytes");
        if (header[2] != UnsignedByte)
            throw new DatasetException(source, $"element type 0x{header[2]:x2} ({TypeName(header[2])}) is not supported; only unsigned bytes (0x08) are read");
        int rank = header[3];
        if (rank == 0) throw new DatasetException(source, "the idx header declares 0 dimensions");
        int headerLength = 4 + 4 * rank;
        if (length < headerLength)
            throw new DatasetException(source, $"truncated idx header: {rank} dimensions need {headerLength} bytes, the file has {length}");
        var dims = new int[rank];
        long count = 1;
        for (int d = 0; d < rank; d++)
        {
            int v = BinaryPrimitives.ReadInt32BigEndian(header[(4 + 4 * d)..]);
            if (v < 0) throw new DatasetException(source, $"dimension {d} is {(uint)v}, beyond what a file can hold");
            dims[d] = v;
            count *= v;
            if (count > int.MaxValue) throw new DatasetException(source, $"dimensions [{string.Join(", ", dims[..(d + 1)])}] exceed 2^31 elements");
        }
        return (dims, count, headerLength);
    }

    /// <summary>Deflate's best case is about 1032:1 (258-byte matches at 2 bits each), so no gzip file expands further.</summary>
    private const long MaxDeflateRatio = 1032;

    /// <summary>
    /// Reads a gzip-compressed idx file by streaming: the header first, then exactly the data it declares — refused
    /// before anything is allocated when the compressed file could not hold it — and then one byte more, to refuse
    /// trailing data without inflating it (a small file can decompress to gigabytes). GZipStream returns what it has
    /// from a cut-off stream without an error, so the trailer's length (ISIZE, the uncompressed size mod 2^32) is
    /// checked against what came out.
    /// </summary>
    private static IdxArray ParseGzip(byte[] bytes, string source)
    {
        const int MinimumGzip = 18; // 10-byte header + 8-byte trailer
        if (bytes.Length < MinimumGzip) throw new DatasetException(source, $"truncated gzip data: {bytes.Length} bytes");
        try
        {
            using var gz = new GZipStream(new MemoryStream(bytes, writable: false), CompressionMode.Decompress);
            Span<byte> header = stackalloc byte[4 + 4 * 255];
            int got = gz.ReadAtLeast(header[..4], 4, throwOnEndOfStream: false);
            if (got == 4) got += gz.ReadAtLeast(header.Slice(4, 4 * header[3]), 4 * header[3], throwOnEndOfStream: false);
            var (dims, count, headerLength) = ReadHeader(header, got, source);
            long limit = bytes.Length * MaxDeflateRatio;
            if (headerLength + count > limit)
                throw new DatasetException(source, $"dimensions [{string.Join(", ", dims)}] need {count} data bytes; {bytes.Length} bytes of gzip data hold at most {limit}");
            var data = new byte[count];
            int read = gz.ReadAtLeast(data, data.Length, throwOnEndOfStream: false);
            if (read < count)
                throw new DatasetException(source, $"truncated: dimensions [{string.Join(", ", dims)}] need {count} data bytes, the gzip data holds {read}");
            if (gz.ReadAtLeast(header[..1], 1, throwOnEndOfStream: false) != 0)
                throw new DatasetException(source, $"unexpected bytes after the {count} data bytes of [{string.Join(", ", dims)}]");
            uint recorded = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(bytes.Length - 4));
            if (recorded != (uint)(headerLength + count))
                throw new DatasetException(source, $"truncated or corrupt gzip data: the trailer records {recorded} bytes, {headerLength + count} were decompressed");
            return new IdxArray(dims, data);
        }
        catch (InvalidDataException ex)
        {
            throw new DatasetException(source, $"corrupt gzip data: {ex.Message}", ex);
        }
    }

    private static string TypeName(byte t) => t switch
    {
        0x08 => "uint8",
        0x09 => "int8",
        0x0B => "int16",
        0x0C => "int32",
        0x0D => "float32",
        0x0E => "float64",
        _ => "unknown",
    };

    /// <summary>Serialises an array as idx bytes, gzip-compressed when asked.</summary>
    public static byte[] ToBytes(IdxArray array, bool gzip = false)
    {
        ArgumentNullException.ThrowIfNull(array);
        int rank = array.Dimensions.Count;
        var raw = new byte[4 + 4 * rank + array.Data.Length];
        raw[2] = UnsignedByte;
        raw[3] = (byte)rank;
        for (int d = 0; d < rank; d++) BinaryPrimitives.WriteInt32BigEndian(raw.AsSpan(4 + 4 * d), array.Dimensions[d]);
        array.Data.CopyTo(raw, 4 + 4 * rank);
        if (!gzip) return raw;
        using var output = new MemoryStream();
        using (var gz = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true)) gz.Write(raw);
        return output.ToArray();
    }

    public static void Write(string path, IdxArray array, bool gzip = false) => File.WriteAllBytes(path, ToBytes(array, gzip));
}
