using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace CrateIL.Crate.Checkpoints;

/// <summary>One tensor's entry in a safetensors header.</summary>
public sealed record SafetensorsEntry(string Name, TensorDType DType, int[] Shape, long Begin, long End)
{
    public long ByteLength => End - Begin;
}

/// <summary>A validated safetensors header: tensor entries in file order of their data, plus <c>__metadata__</c>.</summary>
public sealed class SafetensorsHeader
{
    internal SafetensorsHeader(IReadOnlyList<SafetensorsEntry> entries, IReadOnlyDictionary<string, string> metadata, long dataStart)
    {
        Entries = entries;
        Metadata = metadata;
        DataStart = dataStart;
    }

    /// <summary>Entries in the order the header lists them.</summary>
    public IReadOnlyList<SafetensorsEntry> Entries { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Absolute file offset of the data section (8 + header length).</summary>
    public long DataStart { get; }
}

/// <summary>
/// The safetensors format (our own reader and writer): an 8-byte little-endian header length, a UTF-8 JSON header
/// <c>{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}</c>, then raw little-endian
/// tensor data with offsets relative to the end of the header. Reads F32, F64, F16 and BF16 into float32; writes F32.
/// </summary>
public static class Safetensors
{
    /// <summary>Largest header accepted (the reference implementation's limit): guards against absurd allocations.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private const string MetadataKey = "__metadata__";
    private const int ChunkBytes = 1 << 20;

    /// <summary>Reads every tensor (converted to float32) and the metadata.</summary>
    public static NamedTensors Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var stream = OpenRead(path);
        var header = ReadHeader(stream, path);
        var result = new NamedTensors();
        foreach (var (key, value) in header.Metadata) result.Metadata[key] = value;
        byte[] chunk = ArrayPool<byte>.Shared.Rent(ChunkBytes);
        try
        {
            foreach (var entry in header.Entries)
            {
                long numel = TensorDTypes.Numel(entry.Shape);
                if (numel > Array.MaxLength)
                    throw new CheckpointFormatException(path, $"tensor '{entry.Name}' has {numel} elements, more than one float array holds");
                var data = new float[numel];
                stream.Position = header.DataStart + entry.Begin;
                int size = TensorDTypes.Size(entry.DType);
                int perChunk = ChunkBytes / size;
                for (long done = 0; done < numel;)
                {
                    int count = (int)Math.Min(perChunk, numel - done);
                    var bytes = chunk.AsSpan(0, count * size);
                    try { stream.ReadExactly(bytes); }
                    catch (EndOfStreamException ex)
                    {
                        throw new CheckpointFormatException(path, $"tensor '{entry.Name}': file ended inside its data", ex);
                    }
                    TensorDTypes.ToFloat(bytes, entry.DType, 0, data.AsSpan((int)done, count));
                    done += count;
                }
                result.Add(entry.Name, entry.Shape, data, entry.DType);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
        return result;
    }

    /// <summary>Reads and validates only the header (names, dtypes, shapes, offsets, metadata).</summary>
    public static SafetensorsHeader ReadHeader(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var stream = OpenRead(path);
        return ReadHeader(stream, path);
    }

    /// <summary>
    /// Writes <paramref name="tensors"/> (F32) and their metadata atomically: the file is written under a temporary
    /// name in the same directory, flushed to disk, then renamed over <paramref name="path"/>. On any error the
    /// temporary file is removed and an existing file at <paramref name="path"/> is left untouched.
    /// </summary>
    public static void Write(string path, NamedTensors tensors)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(tensors);
        byte[] header = BuildHeader(tensors);
        AtomicFile.Write(path, stream =>
        {
            Span<byte> length = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
            stream.Write(length);
            stream.Write(header);
            foreach (var tensor in tensors) WriteFloats(stream, tensor.Data);
        });
    }

    internal static void WriteFloats(Stream stream, ReadOnlySpan<float> data)
    {
        if (BitConverter.IsLittleEndian)
        {
            stream.Write(MemoryMarshal.AsBytes(data));
            return;
        }
        Span<byte> four = stackalloc byte[4];
        foreach (float v in data)
        {
            BinaryPrimitives.WriteSingleLittleEndian(four, v);
            stream.Write(four);
        }
    }

    private static byte[] BuildHeader(NamedTensors tensors)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (tensors.Metadata.Count > 0)
            {
                json.WriteStartObject(MetadataKey);
                foreach (var (key, value) in tensors.Metadata) json.WriteString(key, value);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var tensor in tensors)
            {
                if (tensor.Name == MetadataKey)
                    throw new ArgumentException($"a tensor may not be named '{MetadataKey}'", nameof(tensors));
                json.WriteStartObject(tensor.Name);
                json.WriteString("dtype", "F32");
                json.WriteStartArray("shape");
                foreach (int d in tensor.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                long end = offset + 4L * tensor.Data.Length;
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(end);
                json.WriteEndArray();
                json.WriteEndObject();
                offset = end;
            }
            json.WriteEndObject();
        }
        // Pad with spaces so the data section starts 8-byte aligned (as the reference writer does).
        int padded = (buffer.WrittenCount + 7) / 8 * 8;
        var header = new byte[padded];
        buffer.WrittenSpan.CopyTo(header);
        header.AsSpan(buffer.WrittenCount).Fill((byte)' ');
        return header;
    }

    private static FileStream OpenRead(string path)
    {
        try { return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16); }
        catch (FileNotFoundException ex) { throw new CheckpointFormatException(path, "file not found", ex); }
        catch (DirectoryNotFoundException ex) { throw new CheckpointFormatException(path, "directory not found", ex); }
    }

    private static SafetensorsHeader ReadHeader(FileStream stream, string path)
    {
        long fileLength = stream.Length;
        if (fileLength < 8)
            throw new CheckpointFormatException(path, $"file is {fileLength} bytes, shorter than the 8-byte safetensors header length");
        Span<byte> lengthBytes = stackalloc byte[8];
        stream.ReadExactly(lengthBytes);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
        if (headerLength > MaxHeaderBytes)
            throw new CheckpointFormatException(path, $"header length {headerLength} exceeds the {MaxHeaderBytes}-byte limit");
        if ((long)headerLength > fileLength - 8)
            throw new CheckpointFormatException(path,
                $"header length {headerLength} runs past the end of the file ({fileLength - 8} bytes follow the length)");
        if (headerLength < 2)
            throw new CheckpointFormatException(path, $"header length {headerLength} is too short for a JSON object");
        var headerBytes = new byte[headerLength];
        stream.ReadExactly(headerBytes);
        long dataStart = 8 + (long)headerLength;
        long dataLength = fileLength - dataStart;

        if (!System.Text.Unicode.Utf8.IsValid(headerBytes))
            throw new CheckpointFormatException(path, "header is not valid UTF-8 JSON");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(headerBytes, new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (JsonException ex)
        {
            throw new CheckpointFormatException(path, $"header is not well-formed JSON: {ex.Message}", ex);
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw new CheckpointFormatException(path, $"header must be a JSON object, found {document.RootElement.ValueKind}");
            var seen = new HashSet<string>(StringComparer.Ordinal);
            var entries = new List<SafetensorsEntry>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (!seen.Add(property.Name))
                    throw new CheckpointFormatException(path, $"header names '{property.Name}' twice");
                if (property.Name == MetadataKey)
                    ReadMetadata(property.Value, metadata, path);
                else
                    entries.Add(ReadEntry(property.Name, property.Value, path));
            }
            CheckLayout(entries, dataLength, path);
            return new SafetensorsHeader(entries, metadata, dataStart);
        }
    }

    private static void ReadMetadata(JsonElement element, Dictionary<string, string> metadata, string path)
    {
        if (element.ValueKind != JsonValueKind.Object)
            throw new CheckpointFormatException(path, $"'{MetadataKey}' must be an object of strings, found {element.ValueKind}");
        foreach (var item in element.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
                throw new CheckpointFormatException(path, $"'{MetadataKey}' entry '{item.Name}' must be a string, found {item.Value.ValueKind}");
            if (!metadata.TryAdd(item.Name, item.Value.GetString()!))
                throw new CheckpointFormatException(path, $"'{MetadataKey}' names '{item.Name}' twice");
        }
    }

    private static SafetensorsEntry ReadEntry(string name, JsonElement element, string path)
    {
        if (element.ValueKind != JsonValueKind.Object)
            throw new CheckpointFormatException(path, $"tensor '{name}': entry must be an object, found {element.ValueKind}");
        if (!element.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw new CheckpointFormatException(path, $"tensor '{name}': missing string 'dtype'");
        string dtypeName = dtypeElement.GetString()!;
        TensorDType dtype = dtypeName switch
        {
            "F32" => TensorDType.Float32,
            "F64" => TensorDType.Float64,
            "F16" => TensorDType.Float16,
            "BF16" => TensorDType.BFloat16,
            _ => throw new CheckpointFormatException(path, $"tensor '{name}': unsupported dtype '{dtypeName}' (readable: F32, F64, F16, BF16)"),
        };
        if (!element.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            throw new CheckpointFormatException(path, $"tensor '{name}': missing array 'shape'");
        var shape = new int[shapeElement.GetArrayLength()];
        int axis = 0;
        foreach (var d in shapeElement.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt32(out int dim) || dim < 0)
                throw new CheckpointFormatException(path, $"tensor '{name}': shape entry {axis} ({d.GetRawText()}) is not a non-negative 32-bit integer");
            shape[axis++] = dim;
        }
        if (!element.TryGetProperty("data_offsets", out var offsetsElement) || offsetsElement.ValueKind != JsonValueKind.Array
            || offsetsElement.GetArrayLength() != 2)
            throw new CheckpointFormatException(path, $"tensor '{name}': 'data_offsets' must be an array [begin, end]");
        long begin = ReadOffset(offsetsElement[0], name, path);
        long end = ReadOffset(offsetsElement[1], name, path);
        if (begin > end)
            throw new CheckpointFormatException(path, $"tensor '{name}': data_offsets [{begin}, {end}] has begin after end");
        long numel = TensorDTypes.Numel(shape);
        long expectedBytes = numel < 0 || numel > long.MaxValue / 8 ? -1 : numel * TensorDTypes.Size(dtype);
        if (expectedBytes != end - begin)
            throw new CheckpointFormatException(path,
                $"tensor '{name}': {dtypeName} shape {ShapeText.Format(shape)} needs {(expectedBytes < 0 ? "an impossible number of" : expectedBytes.ToString())} bytes " +
                $"but data_offsets [{begin}, {end}] span {end - begin}");
        return new SafetensorsEntry(name, dtype, shape, begin, end);
    }

    private static long ReadOffset(JsonElement element, string name, string path)
    {
        if (element.ValueKind != JsonValueKind.Number || !element.TryGetInt64(out long value) || value < 0)
            throw new CheckpointFormatException(path, $"tensor '{name}': data offset {element.GetRawText()} is not a non-negative integer");
        return value;
    }

    /// <summary>
    /// Data ranges must tile the data section exactly (sorted by offset: no overlap, no gap, nothing past the end,
    /// nothing left over), as the reference implementation requires.
    /// </summary>
    private static void CheckLayout(List<SafetensorsEntry> entries, long dataLength, string path)
    {
        var sorted = entries.OrderBy(e => e.Begin).ThenBy(e => e.End).ToList();
        long expected = 0;
        foreach (var entry in sorted)
        {
            if (entry.End > dataLength)
                throw new CheckpointFormatException(path,
                    $"tensor '{entry.Name}': data_offsets [{entry.Begin}, {entry.End}] run past the end of the data ({dataLength} bytes)");
            if (entry.Begin < expected)
                throw new CheckpointFormatException(path, $"tensor '{entry.Name}': data_offsets [{entry.Begin}, {entry.End}] overlap the previous tensor (which ends at {expected})");
            if (entry.Begin > expected)
                throw new CheckpointFormatException(path, $"tensor '{entry.Name}': data_offsets begin at {entry.Begin}, leaving a gap after byte {expected}");
            expected = entry.End;
        }
        if (expected != dataLength)
            throw new CheckpointFormatException(path, $"data section is {dataLength} bytes but the tensors cover {expected}");
    }
}
