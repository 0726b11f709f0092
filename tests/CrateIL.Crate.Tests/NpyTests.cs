using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using CrateIL.Crate.IO;
using Xunit;

namespace CrateIL.Crate.Tests;

public class NpyTests
{
    [Theory]
    [InlineData("f4_v1.npy")]
    [InlineData("f8_v1.npy")]
    [InlineData("i8_v1.npy")]
    [InlineData("i4_v1.npy")]
    [InlineData("u1_images.npy")]
    [InlineData("f4_v2.npy")]
    [InlineData("f4_v3.npy")]
    [InlineData("f4_scalar.npy")]
    public void ReadsNumpyWrittenArrays(string fixture)
    {
        var expected = CheckpointFixtures.Expected(fixture);
        var array = Npy.Read(CheckpointFixtures.PathOf(fixture));
        Assert.Equal(CheckpointFixtures.Ints(expected.GetProperty("shape")), array.Shape);
        Assert.Equal(expected.GetProperty("descr").GetString(), array.Descr);
        Assert.Equal(CheckpointFixtures.Floats(expected.GetProperty("values")), array.Data);
    }

    [Fact]
    public void WriteThenReadRoundTripsAndAlignsTheHeader()
    {
        using var dir = new CheckpointFixtures.TempDir();
        foreach (var shape in new[] { new[] { 2, 3, 4 }, [5], [], [0, 3] })
        {
            int n = shape.Aggregate(1, (a, b) => a * b);
            var data = Enumerable.Range(0, n).Select(i => i * 0.5f - 1).ToArray();
            string path = dir.File("a.npy");
            Npy.Write(path, shape, data);
            byte[] bytes = File.ReadAllBytes(path);
            int headerLength = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8));
            Assert.Equal(0, (10 + headerLength) % 64);
            Assert.Equal(10 + headerLength + 4 * n, bytes.Length);
            Assert.Equal((byte)'\n', bytes[10 + headerLength - 1]);
            var back = Npy.Read(path);
            Assert.Equal(shape, back.Shape);
            Assert.Equal(data, back.Data);
            Assert.Equal("<f4", back.Descr);
        }
    }

    /// <summary>The committed crateil_written.npy was written by this code and loaded with np.load, which recorded its SHA-256.</summary>
    [Fact]
    public void WrittenFileIsByteIdenticalToTheOneNumpyVerified()
    {
        using var dir = new CheckpointFixtures.TempDir();
        string path = dir.File("crateil_written.npy");
        var data = Enumerable.Range(0, 2 * 3 * 4 * 4).Select(i => MathF.Sin(i) * 100).ToArray();
        Npy.Write(path, [2, 3, 4, 4], data);
        string? exportDir = Environment.GetEnvironmentVariable("CRATEIL_WRITE_FIXTURES");
        if (!string.IsNullOrEmpty(exportDir)) File.Copy(path, Path.Combine(exportDir, "crateil_written.npy"), overwrite: true);

        using var verified = JsonDocument.Parse(File.ReadAllBytes(CheckpointFixtures.PathOf("crateil_written.npy.verified.json")));
        var root = verified.RootElement;
        Assert.Equal(root.GetProperty("sha256").GetString(), CheckpointFixtures.Sha256(path));
        Assert.Equal("<f4", root.GetProperty("descr").GetString());
        Assert.Equal([2, 3, 4, 4], CheckpointFixtures.Ints(root.GetProperty("shape")));
        Assert.Equal(data, CheckpointFixtures.Floats(root.GetProperty("values")));
    }

    private static string WriteRaw(CheckpointFixtures.TempDir dir, byte[] bytes)
    {
        string path = dir.File("bad.npy");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static byte[] Build(string header, int dataBytes, int major = 1, byte[]? magic = null)
    {
        var text = Encoding.Latin1.GetBytes(header);
        var bytes = new List<byte>(magic ?? [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y']) { (byte)major, 0 };
        if (major == 1) bytes.AddRange(BitConverter.GetBytes((ushort)text.Length));
        else bytes.AddRange(BitConverter.GetBytes((uint)text.Length));
        bytes.AddRange(text);
        bytes.AddRange(new byte[dataBytes]);
        return bytes.ToArray();
    }

    public static TheoryData<string, int, string> BadHeaders => new()
    {
        { "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", 8, "fortran_order" },
        { "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8, "big-endian" },
        { "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", 16, "unsupported dtype '<c8'" },
        { "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8, "structured" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 8, "size mismatch" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 8, "size mismatch" },
        { "{'descr': '<f4', 'fortran_order': False, }", 8, "lacks one of" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}", 8, "unexpected header key 'extra'" },
        { "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }", 8, "True or False" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", 8, "non-negative integer" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999,), }", 8, "32 bits" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (2,) ", 8, "expected ','" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } junk", 8, "text after" },
        { "{'descr: '<f4'}", 8, "bad header" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (65536, 65536, 65536), }", 8, "too large" },
    };

    [Theory]
    [MemberData(nameof(BadHeaders))]
    public void MalformedHeadersAreTypedErrors(string header, int dataBytes, string problem)
    {
        using var dir = new CheckpointFixtures.TempDir();
        string path = WriteRaw(dir, Build(header, dataBytes));
        var ex = Assert.Throws<NpyFormatException>(() => Npy.Read(path));
        Assert.Equal(path, ex.File);
        Assert.Contains(problem, ex.Problem);
    }

    [Fact]
    public void BadMagicVersionAndTruncationAreTypedErrors()
    {
        using var dir = new CheckpointFixtures.TempDir();
        const string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
        string Problem(byte[] bytes) => Assert.Throws<NpyFormatException>(() => Npy.Read(WriteRaw(dir, bytes))).Problem;

        Assert.Contains("bad magic", Problem(Build(header, 8, magic: "\u0093NUMPX"u8.ToArray()[..6])));
        Assert.Contains("bad magic", Problem("PK\u0003\u0004 not numpy"u8.ToArray()));
        Assert.Contains("unsupported .npy version 4", Problem(Build(header, 8, major: 4)));
        Assert.Contains("truncated", Problem([0x93, (byte)'N', (byte)'U']));
        byte[] good = Build(header, 8);
        Assert.Contains("truncated", Problem(good[..12]));
        Assert.Contains("size mismatch", Problem(good[..^3]));
        Assert.Equal([2], Npy.Read(WriteRaw(dir, good)).Shape);
        Assert.Equal([2], Npy.Read(WriteRaw(dir, Build(header, 8, major: 2))).Shape);
        Assert.Contains("not found", Assert.Throws<NpyFormatException>(() => Npy.Read(dir.File("absent.npy"))).Problem);
    }

    [Fact]
    public void NumpyFortranAndBigEndianFilesAreRefused()
    {
        Assert.Contains("fortran_order", Assert.Throws<NpyFormatException>(() => Npy.Read(CheckpointFixtures.PathOf("fortran_order.npy"))).Problem);
        Assert.Contains("big-endian", Assert.Throws<NpyFormatException>(() => Npy.Read(CheckpointFixtures.PathOf("big_endian.npy"))).Problem);
    }

    [Fact]
    public void ForwardOnlyStreamsAreReadToo()
    {
        byte[] bytes = File.ReadAllBytes(CheckpointFixtures.PathOf("f4_v1.npy"));
        using var stream = new ForwardOnly(new MemoryStream(bytes));
        Assert.Equal(Npy.Read(CheckpointFixtures.PathOf("f4_v1.npy")).Data, Npy.Read(stream, "stdin").Data);
        using var cut = new ForwardOnly(new MemoryStream(bytes[..^2]));
        Assert.Contains("truncated", Assert.Throws<NpyFormatException>(() => Npy.Read(cut, "stdin")).Problem);
    }

    [Fact]
    public void WriteRejectsShapeDataMismatchWithoutCreatingAFile()
    {
        using var dir = new CheckpointFixtures.TempDir();
        Assert.Throws<ArgumentException>(() => Npy.Write(dir.File("x.npy"), [2, 2], new float[3]));
        Assert.Empty(Directory.GetFiles(dir.Path));
    }

    private sealed class ForwardOnly(Stream inner) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }
    }
}
