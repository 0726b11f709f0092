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
        if (bytes.Length >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b) bytes = Gunzip(bytes, source);
        if (bytes.Length < 4) throw new DatasetException(source, $"truncated idx header: {bytes.Length} bytes, at least 4 are needed");
        if (bytes[0] != 0 || bytes[1] != 0)
            throw new DatasetException(source, $"bad magic 0x{bytes[0]:x2}{bytes[1]:x2}{bytes[2]:x2}{bytes[3]:x2}: an idx file starts with two zero bytes");
        if (bytes[2] != UnsignedByte)
            throw new DatasetException(source, $"element type 0x{bytes[2]:x2} ({TypeName(bytes[2])}) is not supported; only unsigned bytes (0x08) are read");
        int rank = bytes[3];
        if (rank == 0) throw new DatasetException(source, "the idx header declares 0 dimensions");
        int headerLength = 4 + 4 * rank;
        if (bytes.Length < headerLength)
            throw new DatasetException(source, $"truncated idx header: {rank} dimensions need {headerLength} bytes, the file has {bytes.Length}");
        var dims = new int[rank];
        long count = 1;
        for (int d = 0; d < rank; d++)
        {
            int v = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(4 + 4 * d));
            if (v < 0) throw new DatasetException(source, $"dimension {d} is {(uint)v}, beyond what a file can hold");
            dims[d] = v;
            count *= v;
            if (count > int.MaxValue) throw new DatasetException(source, $"dimensions [{string.Join(", ", dims[..(d + 1)])}] exceed 2^31 elements");
        }
        long available = bytes.Length - headerLength;
        if (available < count)
            throw new DatasetException(source, $"truncated: dimensions [{string.Join(", ", dims)}] need {count} data bytes, the file has {available}");
        if (available > count)
            throw new DatasetException(source, $"{available - count} unexpected bytes after the {count} data bytes of [{string.Join(", ", dims)}]");
        return new IdxArray(dims, bytes.AsSpan(headerLength).ToArray());
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

    /// <summary>
    /// Decompresses a single-member gzip file. GZipStream returns what it has from a cut-off stream without an error, so
    /// the trailer's length (ISIZE, the uncompressed size mod 2^32) is checked against what came out.
    /// </summary>
    private static byte[] Gunzip(byte[] bytes, string source)
    {
        const int MinimumGzip = 18; // 10-byte header + 8-byte trailer
        if (bytes.Length < MinimumGzip) throw new DatasetException(source, $"truncated gzip data: {bytes.Length} bytes");
        byte[] output;
        try
        {
            using var input = new MemoryStream(bytes, writable: false);
            using var gz = new GZipStream(input, CompressionMode.Decompress);
            using var buffer = new MemoryStream();
            gz.CopyTo(buffer);
            output = buffer.ToArray();
        }
        catch (InvalidDataException ex)
        {
            throw new DatasetException(source, $"corrupt gzip data: {ex.Message}", ex);
        }
        uint recorded = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(bytes.Length - 4));
        if (recorded != (uint)output.Length)
            throw new DatasetException(source, $"truncated or corrupt gzip data: the trailer records {recorded} bytes, {output.Length} were decompressed");
        return output;
    }

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
