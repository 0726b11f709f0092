using System.IO.Compression;
using System.Text.Json;
using CrateIL.Crate.Checkpoints;
using CrateIL.Crate.Checkpoints.Pickle;
using Xunit;

namespace CrateIL.Crate.Tests;

public class PthImportTests
{
    private static readonly Dictionary<string, TensorDType> DTypes = new()
    {
        ["float32"] = TensorDType.Float32, ["float64"] = TensorDType.Float64, ["float16"] = TensorDType.Float16,
        ["bfloat16"] = TensorDType.BFloat16, ["int64"] = TensorDType.Int64, ["int32"] = TensorDType.Int32,
        ["uint8"] = TensorDType.UInt8, ["bool"] = TensorDType.Bool,
    };

    private static void AssertMatchesPython(string fixture, NamedTensors tensors, Func<string, string>? rename = null)
    {
        var expected = CheckpointFixtures.Expected(fixture).GetProperty("tensors").EnumerateObject().ToList();
        Assert.Equal(expected.Select(p => (rename ?? (n => n))(p.Name)), tensors.Names);
        foreach (var p in expected)
        {
            var t = tensors[(rename ?? (n => n))(p.Name)];
            Assert.Equal(CheckpointFixtures.Ints(p.Value.GetProperty("shape")), t.Shape);
            Assert.Equal(CheckpointFixtures.Floats(p.Value.GetProperty("values")), t.Data);
            Assert.Equal(DTypes[p.Value.GetProperty("dtype").GetString()!], t.SourceDType);
        }
    }

    private static List<TensorKey> ExpectedKeys(string fixture, Func<string, string>? rename = null) =>
        CheckpointFixtures.Expected(fixture).GetProperty("tensors").EnumerateObject()
            .Select(p => new TensorKey((rename ?? (n => n))(p.Name), CheckpointFixtures.Ints(p.Value.GetProperty("shape")))).ToList();

    private static string Unprefixed(string name) => name["module.".Length..];

    [Theory]
    [InlineData("bare_state_dict.pth")]
    [InlineData("dtypes.pth")]
    [InlineData("views.pth")]
    public void BareStateDictsLoadWithPythonValues(string fixture)
    {
        var result = StateDictImport.LoadPth(CheckpointFixtures.PathOf(fixture), ExpectedKeys(fixture));
        Assert.Null(result.Wrapper);
        Assert.Empty(result.Missing);
        Assert.Empty(result.Unexpected);
        Assert.Empty(result.Extras);
        AssertMatchesPython(fixture, result.Tensors);
    }

    [Fact]
    public void RealModuleStateDictCarriesItsMetadataAsAttributes()
    {
        var root = Assert.IsType<PickleDict>(PthCheckpoint.Load(CheckpointFixtures.PathOf("bare_state_dict.pth")).Root);
        var metadata = Assert.IsType<PickleDict>(root.Attributes["_metadata"]);
        Assert.True(metadata.ContainsKey("to_patch_embedding.1"));
    }

    [Fact]
    public void CrateMainCheckpointLayoutStripsModulePrefixAndKeepsTrainingState()
    {
        const string fixture = "wrapped_state_dict.pth.tar";
        var result = StateDictImport.LoadPth(CheckpointFixtures.PathOf(fixture), ExpectedKeys(fixture, Unprefixed));
        Assert.Equal("state_dict", result.Wrapper);
        AssertMatchesPython(fixture, result.Tensors, Unprefixed);
        Assert.Equal(3L, result.Extras["epoch"]);
        Assert.Equal("CRATE_tiny", result.Extras["arch"]);
        Assert.True(result.TryGetNumber("best_acc1", out double best));
        Assert.Equal(12.5, best);
        Assert.True(result.TryGetNumber("epoch", out double epoch));
        Assert.Equal(3, epoch);
        Assert.False(result.TryGetNumber("arch", out _));
        Assert.False(result.TryGetNumber("absent", out _));

        // The optimizer state is plain data too: momentum buffers are tensors, param_groups hold Python values.
        var optimizer = Assert.IsType<PickleDict>(result.Extras["optimizer"]);
        var state = Assert.IsType<PickleDict>(optimizer["state"]);
        Assert.NotEmpty(state);
        var group = Assert.IsType<PickleDict>(Assert.IsType<List<object?>>(optimizer["param_groups"])[0]);
        Assert.Equal(0.1, group["lr"]);
        Assert.Equal(0.9, group["momentum"]);
        Assert.All(state, kv => Assert.IsType<TorchTensor>(Assert.IsType<PickleDict>(kv.Value)["momentum_buffer"]));
    }

    [Fact]
    public void ModelWrapperWithNumpyScalarLoads()
    {
        const string fixture = "model_wrapper.pth";
        var result = StateDictImport.LoadPth(CheckpointFixtures.PathOf(fixture), ExpectedKeys(fixture));
        Assert.Equal("model", result.Wrapper);
        AssertMatchesPython(fixture, result.Tensors);
        Assert.True(result.TryGetNumber("best_acc1", out double best));
        Assert.Equal(71.25, best);
        var args = Assert.IsType<PickleDict>(result.Extras["args"]);
        Assert.Equal("demo", args["name"]);
    }

    [Theory]
    [InlineData("protocol4.pth")]
    [InlineData("protocol5.pth")]
    public void NewerPickleProtocolsLoad(string fixture)
    {
        var result = StateDictImport.LoadPth(CheckpointFixtures.PathOf(fixture), ExpectedKeys(fixture));
        Assert.Equal("model", result.Wrapper);
        AssertMatchesPython(fixture, result.Tensors);
        Assert.Equal("\0\u0001crate"u8.ToArray(), result.Extras["blob"]);
        Assert.Equal(["a", "b"], Assert.IsType<PickleSet>(result.Extras["tags"]).Cast<string>().Order());
        Assert.Equal(new object?[] { 1L, "two" }, result.Extras["pair"]);
    }

    [Fact]
    public void ViewsHonourStorageOffsetSizeAndStride()
    {
        var tensors = StateDictImport.LoadPth(CheckpointFixtures.PathOf("views.pth")).Tensors;
        // x = arange(24) * 0.5 - 3, viewed as 4×6.
        float X(int i) => i * 0.5f - 3f;
        Assert.Equal(Enumerable.Range(5, 6).Select(X), tensors["slice"].Data);
        Assert.Equal(Enumerable.Range(12, 6).Select(X), tensors["row"].Data);
        Assert.Equal(new[] { 1, 7, 13, 19 }.Select(X), tensors["column"].Data);
        Assert.Equal([6, 4], tensors["transposed"].Shape);
        Assert.Equal(Enumerable.Range(0, 24).Select(k => X(k % 4 * 6 + k / 4)), tensors["transposed"].Data);
        Assert.Equal(new[] { 8, 9, 10, 14, 15, 16 }.Select(X), tensors["block"].Data);
        Assert.Equal(Enumerable.Repeat(1f, 12), tensors["expanded"].Data);
    }

    [Fact]
    public void DTypesConvertToFloat32()
    {
        var tensors = StateDictImport.LoadPth(CheckpointFixtures.PathOf("dtypes.pth")).Tensors;
        Assert.Equal([-3f, 0f, 7f, 1 << 20], tensors["i64"].Data);
        Assert.Equal([0f, 255f, 17f], tensors["u8"].Data);
        Assert.Equal([1f, 0f], tensors["flag"].Data);
        Assert.Empty(tensors["scalar"].Shape);
        Assert.Equal([2.5f], tensors["scalar"].Data);
        Assert.Equal([0, 3], tensors["empty"].Shape);
        Assert.Equal(TensorDType.BFloat16, tensors["bf16"].SourceDType);
    }

    [Fact]
    public void StrictImportReportsMissingAndUnexpectedKeysWithShapes()
    {
        string path = CheckpointFixtures.PathOf("bare_state_dict.pth");
        var expected = ExpectedKeys("bare_state_dict.pth");
        var model = expected.Where(k => k.Name != "cls_token").Append(new TensorKey("head.weight", [3, 4])).ToList();
        var ex = Assert.Throws<CheckpointKeyMismatchException>(() => StateDictImport.LoadPth(path, model));
        Assert.Equal(path, ex.File);
        Assert.Equal("head.weight", Assert.Single(ex.Missing).Name);
        var unexpected = Assert.Single(ex.Unexpected);
        Assert.Equal("cls_token", unexpected.Name);
        Assert.Equal([1, 1, 4], unexpected.Shape);
        Assert.Contains("missing keys (1): head.weight [3, 4]", ex.Message);
        Assert.Contains("unexpected keys (1): cls_token [1, 1, 4]", ex.Message);

        var lenient = StateDictImport.LoadPth(path, model, strict: false);
        Assert.Equal("head.weight", Assert.Single(lenient.Missing).Name);
        Assert.Equal("cls_token", Assert.Single(lenient.Unexpected).Name);
        Assert.True(lenient.Tensors.Contains("cls_token"));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ShapeMismatchIsATypedErrorInBothModes(bool strict)
    {
        string path = CheckpointFixtures.PathOf("wrapped_state_dict.pth.tar");
        var model = ExpectedKeys("wrapped_state_dict.pth.tar", Unprefixed)
            .Select(k => k.Name == "mlp_head.1.weight" ? new TensorKey(k.Name, [4, 3]) : k).ToList();
        var ex = Assert.Throws<CheckpointShapeMismatchException>(() => StateDictImport.LoadPth(path, model, strict));
        Assert.Equal("mlp_head.1.weight", ex.Key);
        Assert.Equal([4, 3], ex.Expected);
        Assert.Equal([3, 4], ex.Actual);
        Assert.Contains("'mlp_head.1.weight': model expects [4, 3], checkpoint has [3, 4]", ex.Message);
    }

    [Fact]
    public void NonTensorStateDictEntriesFailStrictAndAreSkippedOtherwise()
    {
        string path = CheckpointFixtures.PathOf("mixed_state_dict.pth");
        var ex = Assert.ThrowsAny<CheckpointFormatException>(() => StateDictImport.LoadPth(path));
        Assert.Contains("'note' is a str, not a tensor", ex.Message);
        var result = StateDictImport.LoadPth(path, ExpectedKeys("mixed_state_dict.pth"), strict: false);
        Assert.Equal(["note"], result.Skipped);
        AssertMatchesPython("mixed_state_dict.pth", result.Tensors);
    }

    [Fact]
    public void SafetensorsGoThroughTheSameMatching()
    {
        var tensors = new NamedTensors();
        tensors.Add("module.w", [2], [1, 2]);
        var result = StateDictImport.FromTensors("x.safetensors", tensors, [new TensorKey("w", [2])]);
        Assert.Equal(["w"], result.Tensors.Names);
        Assert.Throws<CheckpointShapeMismatchException>(() => StateDictImport.FromTensors("x.safetensors", tensors, [new TensorKey("w", [1, 2])]));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void MaliciousCheckpointIsRefusedAndItsCommandNeverRuns(bool strict)
    {
        const string marker = "/tmp/crateil-pwned";
        if (File.Exists(marker)) File.Delete(marker);
        string path = CheckpointFixtures.PathOf("malicious_os_system.pth");
        var ex = Assert.Throws<UnsafePickleException>(() => StateDictImport.LoadPth(path, strict: strict));
        Assert.Equal("os", ex.Module);
        Assert.Equal("system", ex.Name);
        Assert.StartsWith(path, ex.File);
        Assert.Contains("'os.system'", ex.Message);
        Assert.False(File.Exists(marker));
    }

    [Fact]
    public void UnknownOpcodeIsATypedErrorNamingByteAndOffset()
    {
        string path = CheckpointFixtures.PathOf("unknown_opcode.pth");
        var ex = Assert.Throws<PickleFormatException>(() => PthCheckpoint.Load(path));
        Assert.Equal(0xFF, ex.Opcode);
        Assert.Equal(5, ex.Offset);
        Assert.Contains("unknown_opcode/data.pkl", ex.File);
        Assert.Contains("opcode 0xFF at byte 5: unknown opcode", ex.Message);
    }

    [Fact]
    public void CorruptOrForeignFilesAreTypedErrors()
    {
        string corrupt = CheckpointFixtures.PathOf("corrupt_zip.pth");
        Assert.Contains("not a valid zip", Assert.ThrowsAny<CheckpointFormatException>(() => PthCheckpoint.Load(corrupt)).Problem);

        using var dir = new CheckpointFixtures.TempDir();
        string text = dir.File("notes.pth");
        File.WriteAllText(text, "just some text, not a checkpoint");
        Assert.Contains("not a valid zip", Assert.ThrowsAny<CheckpointFormatException>(() => PthCheckpoint.Load(text)).Problem);

        string legacy = dir.File("legacy.pth");
        File.WriteAllBytes(legacy, [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]);
        Assert.Contains("legacy", Assert.ThrowsAny<CheckpointFormatException>(() => PthCheckpoint.Load(legacy)).Problem);

        Assert.Contains("not found", Assert.ThrowsAny<CheckpointFormatException>(() => PthCheckpoint.Load(dir.File("absent.pth"))).Problem);
    }

    /// <summary>Copies a fixture's zip, letting <paramref name="edit"/> drop or replace entries.</summary>
    private static string Rezip(CheckpointFixtures.TempDir dir, string fixture, Func<string, byte[], byte[]?> edit, params (string Name, byte[] Bytes)[] extra)
    {
        string path = dir.File($"edited-{Guid.NewGuid():N}.pth");
        using (var source = ZipFile.OpenRead(CheckpointFixtures.PathOf(fixture)))
        using (var target = ZipFile.Open(path, ZipArchiveMode.Create))
        {
            foreach (var entry in source.Entries)
            {
                using var input = entry.Open();
                var buffer = new MemoryStream();
                input.CopyTo(buffer);
                var bytes = edit(entry.FullName, buffer.ToArray());
                if (bytes is null) continue;
                using var output = target.CreateEntry(entry.FullName, CompressionLevel.NoCompression).Open();
                output.Write(bytes);
            }
            foreach (var (name, bytes) in extra)
            {
                using var output = target.CreateEntry(name).Open();
                output.Write(bytes);
            }
        }
        return path;
    }

    [Fact]
    public void BrokenArchivesAreTypedErrors()
    {
        using var dir = new CheckpointFixtures.TempDir();
        const string fixture = "bare_state_dict.pth";
        string Problem(string path) => Assert.ThrowsAny<CheckpointFormatException>(() => StateDictImport.LoadPth(path)).Message;

        Assert.Contains("no '<archive>/data.pkl'", Problem(Rezip(dir, fixture, (n, b) => n.EndsWith("data.pkl") ? null : b)));
        Assert.Contains("has no 'bare_state_dict/data/0' entry", Problem(Rezip(dir, fixture, (n, b) => n.EndsWith("/data/0") ? null : b)));
        Assert.Contains("needs 16 bytes but its zip entry holds 15", Problem(Rezip(dir, fixture, (n, b) => n.EndsWith("/data/0") ? b[..^1] : b)));
        Assert.Contains("truncated", Problem(Rezip(dir, fixture, (n, b) => n.EndsWith("data.pkl") ? b[..(b.Length / 2)] : b)));
        Assert.Contains("byteorder entry says 'middle'", Problem(Rezip(dir, fixture, (_, b) => b, ("bare_state_dict/byteorder", "middle"u8.ToArray()))));
        Assert.Contains("checkpoint holds a list", Problem(Rezip(dir, fixture, (n, b) => n.EndsWith("data.pkl") ? [0x80, 0x02, 0x5d, 0x2e] : b)));
    }

    [Fact]
    public void BigEndianByteOrderEntryIsHonoured()
    {
        using var dir = new CheckpointFixtures.TempDir();
        string path = Rezip(dir, "bare_state_dict.pth",
            (n, b) => n.Contains("/data/") ? SwapFloat32(b) : b, ("bare_state_dict/byteorder", "big"u8.ToArray()));
        AssertMatchesPython("bare_state_dict.pth", StateDictImport.LoadPth(path).Tensors);
    }

    private static byte[] SwapFloat32(byte[] bytes)
    {
        var swapped = (byte[])bytes.Clone();
        for (int i = 0; i + 3 < swapped.Length; i += 4) Array.Reverse(swapped, i, 4);
        return swapped;
    }

    [Fact]
    public void TensorsReachingPastTheirStorageAreTypedErrors()
    {
        // A pickle whose tensor claims 3 elements from a 2-element storage.
        var pickle = new List<byte> { 0x80, 0x02 };
        pickle.AddRange("ctorch._utils\n_rebuild_tensor_v2\n"u8.ToArray());
        pickle.Add((byte)'(');
        pickle.AddRange([(byte)'(', (byte)'X', 7, 0, 0, 0]);
        pickle.AddRange("storage"u8.ToArray());
        pickle.AddRange("ctorch\nFloatStorage\n"u8.ToArray());
        pickle.AddRange([(byte)'X', 1, 0, 0, 0, (byte)'0', (byte)'X', 3, 0, 0, 0]);
        pickle.AddRange("cpu"u8.ToArray());
        pickle.AddRange([(byte)'K', 2, (byte)'t', (byte)'Q']);
        pickle.AddRange([(byte)'K', 0, (byte)'K', 3, 0x85, (byte)'K', 1, 0x85, 0x89, (byte)'N', (byte)'t', (byte)'R', (byte)'.']);
        using var dir = new CheckpointFixtures.TempDir();
        string path = Rezip(dir, "bare_state_dict.pth", (n, b) => n.EndsWith("data.pkl") ? pickle.ToArray() : n.EndsWith("/data/0") ? new byte[8] : b);
        var ex = Assert.Throws<PickleFormatException>(() => PthCheckpoint.Load(path));
        Assert.Contains("reaches element 2 of storage '0' which holds 2", ex.Message);
    }
}
