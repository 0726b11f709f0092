using System.IO.Compression;
using System.Numerics;
using CrateIL.Crate.Checkpoints;
using CrateIL.Crate.Checkpoints.Pickle;
using Xunit;

namespace CrateIL.Crate.Tests;

public class PickleTests
{
    // pickle.dumps(obj, protocol=p) from CPython 3.11 for
    // obj = {'a': [1, -2, 3.5, None, True, False], 'b': (1, 2, 3), 'c': 'ü€', 'd': b'xy', 'e': 2**70, 'f': -2**63,
    //        'g': {1, 2}, 'h': frozenset({3}), 'i': bytearray(b'z'), 'm1': shared, 'm2': shared, 'n': -(2**100),
    //        't1': (5,), 'k': {(1, 'x'): 'tuplekey'}, 'big': 300, 'big2': 70000}   with shared = [7, 8]
    public static TheoryData<int, string> PythonPickles => new()
    {
        { 2, "80027d71002858010000006171015d7102284b014afeffffff47400c0000000000004e88896558010000006271034b014b024b0387710458010000006371055805000000c3bce282ac71065801000000647107635f636f646563730a656e636f64650a710858020000007879710958060000006c6174696e31710a86710b52710c580100000065710d8a09000000000000000040580100000066710e8a080000000000000080580100000067710f635f5f6275696c74696e5f5f0a7365740a71105d7111284b014b02658571125271135801000000687114635f5f6275696c74696e5f5f0a66726f7a656e7365740a71155d71164b03618571175271185801000000697119635f5f6275696c74696e5f5f0a6279746561727261790a711a680858010000007a711b680a86711c52711d85711e52711f58020000006d3171205d7121284b074b086558020000006d327122682158010000006e71238a0d000000000000000000000000f05802000000743171244b0585712558010000006b71267d71274b01580100000078712886712958080000007475706c656b6579712a735803000000626967712b4d2c01580400000062696732712c4a70110100752e" },
        { 3, "80037d71002858010000006171015d7102284b014afeffffff47400c0000000000004e88896558010000006271034b014b024b0387710458010000006371055805000000c3bce282ac7106580100000064710743027879710858010000006571098a09000000000000000040580100000066710a8a080000000000000080580100000067710b636275696c74696e730a7365740a710c5d710d284b014b026585710e52710f5801000000687110636275696c74696e730a66726f7a656e7365740a71115d71124b03618571135271145801000000697115636275696c74696e730a6279746561727261790a711643017a711785711852711958020000006d31711a5d711b284b074b086558020000006d32711c681b58010000006e711d8a0d000000000000000000000000f058020000007431711e4b0585711f58010000006b71207d71214b01580100000078712286712358080000007475706c656b6579712473580300000062696771254d2c0158040000006269673271264a70110100752e" },
        { 4, "800495f7000000000000007d94288c0161945d94284b014afeffffff47400c0000000000004e8889658c0162944b014b024b0387948c0163948c05c3bce282ac948c01649443027879948c0165948a090000000000000000408c0166948a0800000000000000808c0167948f94284b014b02908c016894284b0391948c0169948c086275696c74696e73948c0962797465617272617994939443017a94859452948c026d31945d94284b074b08658c026d329468178c016e948a0d000000000000000000000000f08c027431944b0585948c016b947d944b018c01789486948c087475706c656b657994738c03626967944d2c018c0462696732944a70110100752e" },
        { 5, "800595e1000000000000007d94288c0161945d94284b014afeffffff47400c0000000000004e8889658c0162944b014b024b0387948c0163948c05c3bce282ac948c01649443027879948c0165948a090000000000000000408c0166948a0800000000000000808c0167948f94284b014b02908c016894284b0391948c0169949601000000000000007a948c026d31945d94284b074b08658c026d329468128c016e948a0d000000000000000000000000f08c027431944b0585948c016b947d944b018c01789486948c087475706c656b657994738c03626967944d2c018c0462696732944a70110100752e" },
    };

    [Theory]
    [MemberData(nameof(PythonPickles))]
    public void DecodesEveryPrimitiveAndContainerOfProtocols2To5(int protocol, string hex)
    {
        var root = Assert.IsType<PickleDict>(Unpickler.Load(Convert.FromHexString(hex), $"protocol{protocol}"));
        Assert.Equal(["a", "b", "c", "d", "e", "f", "g", "h", "i", "m1", "m2", "n", "t1", "k", "big", "big2"], root.Keys.Cast<string>());
        Assert.Equal(new List<object?> { 1L, -2L, 3.5, null, true, false }, root["a"]);
        Assert.Equal(new object?[] { 1L, 2L, 3L }, root["b"]);
        Assert.Equal("ü€", root["c"]);
        Assert.Equal("xy"u8.ToArray(), root["d"]);
        Assert.Equal(BigInteger.Pow(2, 70), root["e"]);
        Assert.Equal(long.MinValue, root["f"]);
        Assert.Equal([1L, 2L], Assert.IsType<PickleSet>(root["g"]));
        var frozen = Assert.IsType<PickleSet>(root["h"]);
        Assert.True(frozen.Frozen);
        Assert.Equal([3L], frozen);
        Assert.Equal("z"u8.ToArray(), root["i"]);
        Assert.Same(root["m1"], root["m2"]); // the memo keeps shared references shared
        Assert.Equal(-BigInteger.Pow(2, 100), root["n"]);
        Assert.Equal(new object?[] { 5L }, root["t1"]);
        Assert.Equal("tuplekey", Assert.IsType<PickleDict>(root["k"])[new object?[] { 1L, "x" }]);
        Assert.Equal(300L, root["big"]);
        Assert.Equal(70000L, root["big2"]);
    }

    public static TheoryData<string, string, string> HostileGlobals => new()
    {
        // GLOBAL 'os system' ; BINUNICODE command ; TUPLE1 ; REDUCE ; STOP
        { "os", "system", "GLOBAL" },
        { "posix", "system", "GLOBAL" },
        { "nt", "system", "GLOBAL" },
        { "builtins", "eval", "GLOBAL" },
        { "builtins", "exec", "STACK_GLOBAL" },
        { "__builtin__", "getattr", "GLOBAL" },
        { "subprocess", "Popen", "STACK_GLOBAL" },
        { "torch.serialization", "load", "GLOBAL" },
        { "torch._utils", "_rebuild_tensor_v3", "GLOBAL" },
        { "collections", "namedtuple", "STACK_GLOBAL" },
        { "numpy.core.multiarray", "_reconstruct", "GLOBAL" },
        { "torch", "FloatStorage\nos", "STACK_GLOBAL" },
    };

    private static byte[] HostilePickle(string module, string name, string opcode)
    {
        var bytes = new List<byte> { 0x80, 0x02 };
        void Unicode(string s)
        {
            var utf8 = System.Text.Encoding.UTF8.GetBytes(s);
            bytes.Add((byte)'X');
            bytes.AddRange(BitConverter.GetBytes(utf8.Length));
            bytes.AddRange(utf8);
        }
        if (opcode == "GLOBAL")
        {
            bytes.Add((byte)'c');
            bytes.AddRange(System.Text.Encoding.ASCII.GetBytes($"{module}\n{name}\n"));
        }
        else
        {
            Unicode(module);
            Unicode(name);
            bytes.Add(0x93);
        }
        Unicode("touch /tmp/crateil-pwned");
        bytes.AddRange([0x85, (byte)'R', (byte)'.']);
        return bytes.ToArray();
    }

    [Theory]
    [MemberData(nameof(HostileGlobals))]
    public void DisallowedGlobalsAreRefusedAndNeverCalled(string module, string name, string opcode)
    {
        foreach (var host in new IPickleHost[] { new SafePickleHost(), new TorchPickleHost((_, _, _) => [], bigEndian: false) })
        {
            var ex = Assert.Throws<UnsafePickleException>(() => Unpickler.Load(HostilePickle(module, name, opcode), "evil.pkl", host));
            Assert.Equal(module, ex.Module);
            Assert.Equal(name, ex.Name);
            Assert.Equal("evil.pkl", ex.File);
            Assert.Contains($"'{module}.{name}'", ex.Message);
        }
    }

    [Fact]
    public void TorchGlobalsAreNotAllowedWithoutTheTorchHost()
    {
        var ex = Assert.Throws<UnsafePickleException>(() =>
            Unpickler.Load(HostilePickle("torch._utils", "_rebuild_tensor_v2", "GLOBAL"), "plain.pkl"));
        Assert.Equal("_rebuild_tensor_v2", ex.Name);
    }

    public static TheoryData<string, int, long, string> BrokenPickles => new()
    {
        { "8002ff2e", 0xFF, 2, "unknown opcode" },
        { "80067d2e", 0x80, 0, "protocol 6" },
        { "80027d", -1, 3, "without a STOP" },
        { "", -1, 0, "without a STOP" },
        { "80025805000000616263", 0x58, 2, "truncated" },
        { "80028a0a0102", 0x8A, 2, "truncated" },
        { "8002632e6f73", 0x63, 2, "newline" },
        { "800273", 0x73, 2, "underflow" },
        { "80022e", 0x2E, 2, "underflow" },
        { "80024b014b01612e", 0x61, 6, "not a list" },
        { "80024b014b014b02732e", 0x73, 8, "not a dict" },
        { "8002680a2e", 0x68, 2, "never stored" },
        { "80027d28284b0174752e", 0x75, 8, "odd number" },
        { "80027d5d4b01732e", 0x73, 6, "unhashable" },
        { "80024b0152", 0x52, 4, "underflow" },
        { "80024b014b01522e", 0x52, 6, "must be a tuple" },
        { "80024b012952", 0x52, 5, "not callable" },
        { "800269", 0x69, 2, "INST/OBJ" },
        { "800282", 0x82, 2, "EXT" },
        { "800297", 0x97, 2, "out-of-band" },
        { "4b01512e", 0x51, 2, "no persistent objects" },
        { "8002580200000061ff2e", 0x58, 2, "UTF-8" },
        { "8002752e", 0x75, 2, "no MARK" },
    };

    [Theory]
    [MemberData(nameof(BrokenPickles))]
    public void MalformedPicklesAreTypedErrorsNamingOpcodeAndOffset(string hex, int opcode, long offset, string problem)
    {
        var ex = Assert.Throws<PickleFormatException>(() => Unpickler.Load(Convert.FromHexString(hex), "broken.pkl"));
        Assert.StartsWith("broken.pkl: ", ex.Message);
        Assert.Equal("broken.pkl", ex.File);
        Assert.Equal(opcode, ex.Opcode);
        Assert.Equal(offset, ex.Offset);
        if (opcode >= 0) Assert.Contains($"opcode 0x{opcode:X2} at byte {offset}", ex.Message);
        Assert.Contains(problem, ex.Message);
    }

    [Fact]
    public void DeeplyNestedTupleKeysAreRefusedWithoutRecursing()
    {
        var bytes = new List<byte> { 0x80, 0x02, (byte)'}', (byte)'N' };
        for (int i = 0; i < 100_000; i++) bytes.Add(0x85); // TUPLE1
        bytes.AddRange([(byte)'N', (byte)'s', (byte)'.']);
        var ex = Assert.Throws<PickleFormatException>(() => Unpickler.Load(bytes.ToArray(), "deep.pkl"));
        Assert.Contains("nested deeper", ex.Message);
    }

    private static (byte[] Pickle, Func<string, long, TensorDType, byte[]> Storages) TorchPickle(string fixture)
    {
        using var zip = ZipFile.OpenRead(CheckpointFixtures.PathOf(fixture));
        var entries = zip.Entries.ToDictionary(e => e.FullName, e =>
        {
            using var s = e.Open();
            var buffer = new MemoryStream();
            s.CopyTo(buffer);
            return buffer.ToArray();
        });
        var pickle = entries.Single(kv => kv.Key.EndsWith("/data.pkl")).Value;
        string prefix = entries.Keys.Single(k => k.EndsWith("/data.pkl"))[..^"data.pkl".Length];
        return (pickle, (key, _, _) => entries[prefix + "data/" + key]);
    }

    /// <summary>Every prefix of a real torch pickle is a typed error, never a crash or a half-built result.</summary>
    [Theory]
    [InlineData("bare_state_dict.pth")]
    [InlineData("model_wrapper.pth")]
    [InlineData("protocol5.pth")]
    public void EveryTruncationOfARealPickleIsATypedError(string fixture)
    {
        var (pickle, storages) = TorchPickle(fixture);
        Assert.IsType<PickleDict>(Unpickler.Load(pickle, fixture, new TorchPickleHost(storages, false)));
        for (int length = 0; length < pickle.Length; length++)
        {
            var cut = pickle[..length];
            var ex = Assert.ThrowsAny<CheckpointFormatException>(() => Unpickler.Load(cut, fixture, new TorchPickleHost(storages, false)));
            Assert.StartsWith(fixture + ": ", ex.Message);
        }
    }

    /// <summary>Random byte corruption either still decodes or raises a typed error; nothing else escapes.</summary>
    [Fact]
    public void RandomCorruptionOfARealPickleNeverEscapesAsAnotherException()
    {
        var (pickle, storages) = TorchPickle("wrapped_state_dict.pth.tar");
        var random = new Random(20240607);
        int typed = 0;
        for (int trial = 0; trial < 3000; trial++)
        {
            var bytes = (byte[])pickle.Clone();
            int flips = 1 + random.Next(3);
            for (int f = 0; f < flips; f++) bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
            try
            {
                Unpickler.Load(bytes, "fuzz.pkl", new TorchPickleHost((k, n, d) => Storage(storages, k, n, d), false));
            }
            catch (CheckpointFormatException)
            {
                typed++;
            }
        }
        Assert.True(typed > 0);
    }

    private static byte[] Storage(Func<string, long, TensorDType, byte[]> storages, string key, long numel, TensorDType dtype)
    {
        // Mirrors PthCheckpoint's storage checks for the fuzz: a corrupted key or size is a typed error there too.
        byte[] bytes;
        try { bytes = storages(key, numel, dtype); }
        catch (KeyNotFoundException) { throw new CheckpointFormatException("fuzz.pkl", $"no storage '{key}'"); }
        if (bytes.Length != numel * TensorDTypes.Size(dtype))
            throw new CheckpointFormatException("fuzz.pkl", $"storage '{key}' size mismatch");
        return bytes;
    }
}
