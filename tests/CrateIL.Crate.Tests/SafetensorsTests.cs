using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using CrateIL.Crate.Checkpoints;
using Xunit;

namespace CrateIL.Crate.Tests;

public class SafetensorsTests
{
    /// <summary>The tensors behind the committed crateil_written.safetensors (verified by PyTorch).</summary>
    internal static NamedTensors WrittenFixtureTensors()
    {
        var tensors = new NamedTensors();
        tensors.Add("to_patch_embedding.2.weight", [4, 6], Enumerable.Range(0, 24).Select(i => i * 0.25f - 3f).ToArray());
        tensors.Add("cls_token", [1, 1, 4], [1.5f, -0.0f, float.Epsilon, 3.4e38f]);
        tensors.Add("scalar", [], [3.5f]);
        tensors.Add("empty", [0, 5], []);
        tensors.Add("transformer.layers.0.1.weight", [3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]);
        tensors.Metadata["crateil.config"] = """{"dim":4,"depth":1,"heads":1}""";
        tensors.Metadata["crateil.training"] = """{"epoch":3,"step":120}""";
        return tensors;
    }

    [Fact]
    public void RoundTripKeepsNamesOrderShapesValuesAndMetadata()
    {
        using var dir = new CheckpointFixtures.TempDir();
        var tensors = WrittenFixtureTensors();
        string path = dir.File("model.safetensors");
        Safetensors.Write(path, tensors);
        var back = Safetensors.Read(path);
        Assert.Equal(tensors.Names, back.Names);
        foreach (var t in tensors)
        {
            Assert.Equal(t.Shape, back[t.Name].Shape);
            Assert.Equal(t.Data, back[t.Name].Data);
            Assert.Equal(TensorDType.Float32, back[t.Name].SourceDType);
        }
        Assert.Equal(tensors.Metadata, back.Metadata);
        Assert.Single(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void HeaderIsSpacePaddedToEightBytesAndOffsetsAreContiguous()
    {
        using var dir = new CheckpointFixtures.TempDir();
        string path = dir.File("a.safetensors");
        var tensors = new NamedTensors();
        tensors.Add("x", [3], [1, 2, 3]);
        tensors.Add("yy", [2, 1], [4, 5]);
        Safetensors.Write(path, tensors);
        byte[] bytes = File.ReadAllBytes(path);
        long headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0, headerLength % 8);
        Assert.Equal(8 + headerLength + 5 * 4, bytes.Length);
        string header = Encoding.UTF8.GetString(bytes, 8, (int)headerLength);
        string json = header.TrimEnd(' ');
        Assert.StartsWith("{", json);
        Assert.EndsWith("}", json);
        Assert.InRange(header.Length - json.Length, 0, 7);
        var info = Safetensors.ReadHeader(path);
        Assert.Equal([(0L, 12L), (12L, 20L)], info.Entries.Select(e => (e.Begin, e.End)));
        Assert.Equal(BitConverter.SingleToInt32Bits(4f), BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan((int)(8 + headerLength + 12))));
    }

    [Fact]
    public void ReadsPythonWrittenFileWithEveryFloatDType()
    {
        var expected = CheckpointFixtures.Expected("python_written.safetensors");
        var tensors = Safetensors.Read(CheckpointFixtures.PathOf("python_written.safetensors"));
        var names = expected.GetProperty("tensors").EnumerateObject().ToList();
        Assert.Equal(names.Select(p => p.Name), tensors.Names);
        var dtypes = new Dictionary<string, TensorDType>
        {
            ["float32"] = TensorDType.Float32, ["float64"] = TensorDType.Float64,
            ["float16"] = TensorDType.Float16, ["bfloat16"] = TensorDType.BFloat16,
        };
        foreach (var p in names)
        {
            var t = tensors[p.Name];
            Assert.Equal(CheckpointFixtures.Ints(p.Value.GetProperty("shape")), t.Shape);
            Assert.Equal(CheckpointFixtures.Floats(p.Value.GetProperty("values")), t.Data);
            Assert.Equal(dtypes[p.Value.GetProperty("dtype").GetString()!], t.SourceDType);
        }
        foreach (var m in expected.GetProperty("metadata").EnumerateObject())
            Assert.Equal(m.Value.GetString(), tensors.Metadata[m.Name]);
    }

    /// <summary>
    /// The committed crateil_written.safetensors was written by this code and loaded by PyTorch (handwritten header
    /// parser + torch.frombuffer in make_pth_fixtures.py), which recorded its SHA-256 and values. Writing the same
    /// tensors again must give the identical bytes.
    /// </summary>
    [Fact]
    public void WrittenFileIsByteIdenticalToTheOnePyTorchVerified()
    {
        using var dir = new CheckpointFixtures.TempDir();
        string path = dir.File("crateil_written.safetensors");
        var tensors = WrittenFixtureTensors();
        Safetensors.Write(path, tensors);
        string? exportDir = Environment.GetEnvironmentVariable("CRATEIL_WRITE_FIXTURES");
        if (!string.IsNullOrEmpty(exportDir)) File.Copy(path, Path.Combine(exportDir, "crateil_written.safetensors"), overwrite: true);

        using var verified = JsonDocument.Parse(File.ReadAllBytes(CheckpointFixtures.PathOf("crateil_written.safetensors.verified.json")));
        var root = verified.RootElement;
        Assert.Equal(root.GetProperty("sha256").GetString(), CheckpointFixtures.Sha256(path));
        Assert.Equal(CheckpointFixtures.Sha256(CheckpointFixtures.PathOf("crateil_written.safetensors")), CheckpointFixtures.Sha256(path));
        foreach (var p in root.GetProperty("tensors").EnumerateObject())
        {
            Assert.Equal("torch.float32", p.Value.GetProperty("dtype").GetString());
            Assert.Equal(tensors[p.Name].Shape, CheckpointFixtures.Ints(p.Value.GetProperty("shape")));
            Assert.Equal(tensors[p.Name].Data, CheckpointFixtures.Floats(p.Value.GetProperty("values")));
        }
        Assert.Equal(tensors.Count, root.GetProperty("tensors").EnumerateObject().Count());
        foreach (var m in root.GetProperty("metadata").EnumerateObject())
            Assert.Equal(tensors.Metadata[m.Name], m.Value.GetString());
    }

    [Fact]
    public void FailedWriteLeavesTheOldFileAndNoTemporaryFile()
    {
        using var dir = new CheckpointFixtures.TempDir();
        string path = dir.File("model.safetensors");
        var good = new NamedTensors();
        good.Add("w", [2], [1, 2]);
        Safetensors.Write(path, good);
        byte[] before = File.ReadAllBytes(path);

        var bad = new NamedTensors();
        bad.Add("__metadata__", [1], [1]);
        Assert.Throws<ArgumentException>(() => Safetensors.Write(path, bad));
        Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(path, stream =>
        {
            stream.Write(new byte[1000]);
            throw new InvalidOperationException("disk went away");
        }));

        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal([path], Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void WriteReplacesAnExistingFile()
    {
        using var dir = new CheckpointFixtures.TempDir();
        string path = dir.File("model.safetensors");
        File.WriteAllText(path, "old contents");
        var tensors = new NamedTensors();
        tensors.Add("w", [1], [7]);
        Safetensors.Write(path, tensors);
        Assert.Equal([7f], Safetensors.Read(path)["w"].Data);
        Assert.Equal([path], Directory.GetFiles(dir.Path));
    }

    private static string WriteRaw(CheckpointFixtures.TempDir dir, string header, int dataBytes, ulong? declaredLength = null)
    {
        byte[] json = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, declaredLength ?? (ulong)json.Length);
        json.CopyTo(bytes, 8);
        string path = dir.File("bad.safetensors");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static CheckpointFormatException ReadFails(string path)
    {
        var ex = Assert.ThrowsAny<CheckpointFormatException>(() => Safetensors.Read(path));
        Assert.Equal(path, ex.File);
        Assert.StartsWith(path + ": ", ex.Message);
        return ex;
    }

    public static TheoryData<string, int, string> BadHeaders => new()
    {
        { """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 4, "run past the end of the data" },
        { """{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}""", 8, "begin after end" },
        { """{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", 8, "needs 12 bytes" },
        { """{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,8]}}""", 8, "needs 4 bytes" },
        { """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 12, "overlap" },
        { """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}""", 12, "gap" },
        { """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", 8, "tensors cover 4" },
        { """{"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}""", 8, "unsupported dtype 'I64'" },
        { """{"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,8]}}""", 8, "unsupported dtype 'Q7'" },
        { """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", 8, "names 'a' twice" },
        { """{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}""", 4, "not a non-negative" },
        { """{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}""", 4, "not a non-negative" },
        { """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}""", 4, "[begin, end]" },
        { """{"a":{"dtype":"F32","data_offsets":[0,4]}}""", 4, "missing array 'shape'" },
        { """{"a":{"shape":[1],"data_offsets":[0,4]}}""", 4, "missing string 'dtype'" },
        { """{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}""", 4, "not a non-negative integer" },
        { """{"a":{"dtype":"F32","shape":[2147483647,2147483647,2147483647],"data_offsets":[0,4]}}""", 4, "impossible number" },
        { """{"__metadata__":{"epoch":3}}""", 0, "must be a string" },
        { """{"__metadata__":"x"}""", 0, "must be an object of strings" },
        { """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]""", 4, "not well-formed JSON" },
        { """[1,2]""", 0, "must be a JSON object" },
        { """{"a":5}""", 0, "entry must be an object" },
    };

    [Theory]
    [MemberData(nameof(BadHeaders))]
    public void MalformedHeadersAreTypedErrors(string header, int dataBytes, string problem)
    {
        using var dir = new CheckpointFixtures.TempDir();
        var ex = ReadFails(WriteRaw(dir, header, dataBytes));
        Assert.Contains(problem, ex.Problem);
    }

    [Fact]
    public void HeaderLengthPastTheEndOrAboveTheLimitIsRefusedBeforeAllocating()
    {
        using var dir = new CheckpointFixtures.TempDir();
        Assert.Contains("runs past the end", ReadFails(WriteRaw(dir, "{}", 0, declaredLength: 3)).Problem);
        Assert.Contains("exceeds the 100000000-byte limit", ReadFails(WriteRaw(dir, "{}", 0, declaredLength: 100_000_001)).Problem);
        Assert.Contains("exceeds", ReadFails(WriteRaw(dir, "{}", 0, declaredLength: ulong.MaxValue)).Problem);
    }

    [Fact]
    public void TruncatedFilesAreTypedErrors()
    {
        using var dir = new CheckpointFixtures.TempDir();
        string good = dir.File("good.safetensors");
        Safetensors.Write(good, WrittenFixtureTensors());
        byte[] bytes = File.ReadAllBytes(good);
        string path = dir.File("cut.safetensors");
        foreach (int length in new[] { 0, 3, 8, 9, 40, bytes.Length - 1 })
        {
            File.WriteAllBytes(path, bytes[..length]);
            ReadFails(path);
        }
    }

    [Fact]
    public void InvalidUtf8HeaderIsATypedError()
    {
        using var dir = new CheckpointFixtures.TempDir();
        string path = dir.File("utf.safetensors");
        var bytes = new byte[8 + 8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, 8);
        new byte[] { (byte)'{', (byte)'"', 0xFF, 0xFE, (byte)'"', (byte)':', (byte)'1', (byte)'}' }.CopyTo(bytes, 8);
        File.WriteAllBytes(path, bytes);
        Assert.Contains("JSON", ReadFails(path).Problem);
    }

    [Fact]
    public void MissingFileIsATypedError()
    {
        using var dir = new CheckpointFixtures.TempDir();
        Assert.Contains("not found", ReadFails(dir.File("nope.safetensors")).Problem);
    }

    [Fact]
    public void NamedTensorsRejectsDuplicatesAndWrongLengths()
    {
        var tensors = new NamedTensors();
        tensors.Add("a", [2], [1, 2]);
        Assert.Throws<ArgumentException>(() => tensors.Add("a", [1], [1]));
        Assert.Throws<ArgumentException>(() => tensors.Add("b", [2, 2], [1, 2, 3]));
        Assert.Throws<ArgumentException>(() => tensors.Add("c", [-1], []));
        Assert.Throws<KeyNotFoundException>(() => tensors["zz"]);
    }
}
