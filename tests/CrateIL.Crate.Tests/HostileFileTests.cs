using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using CrateIL.Crate.Checkpoints;
using CrateIL.Crate.Data;
using CrateIL.Crate.IO;
using Xunit;
using Xunit.Abstractions;

namespace CrateIL.Crate.Tests;

/// <summary>
/// Files whose headers lie about their size: the claim is checked against what the file can hold before anything is
/// allocated, so a small hostile file costs little memory and time and ends in the format's typed error.
/// </summary>
public class HostileFileTests(ITestOutputHelper output)
{
    private const long AllocationBound = 64L << 20;

    /// <summary>Runs <paramref name="read"/>, which must throw <typeparamref name="T"/>, and bounds what it allocated.</summary>
    private T Refused<T>(Action read, string what) where T : Exception
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var ex = Assert.Throws<T>(read);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        output.WriteLine($"{what}: {allocated / 1024.0:F0} KiB allocated; {ex.Message}");
        Assert.True(allocated < AllocationBound, $"{what}: {allocated} bytes allocated before refusing");
        return ex;
    }

    private static byte[] IdxHeader(params int[] dims)
    {
        var h = new byte[4 + 4 * dims.Length];
        h[2] = 0x08;
        h[3] = (byte)dims.Length;
        for (int d = 0; d < dims.Length; d++) BinaryPrimitives.WriteInt32BigEndian(h.AsSpan(4 + 4 * d), dims[d]);
        return h;
    }

    [Fact]
    public void Gzip_bomb_behind_a_small_idx_header_is_not_inflated()
    {
        // A 10-byte array followed by 512 MiB of zeros: about 0.5 MB compressed.
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true))
        {
            gz.Write(IdxHeader(10));
            gz.Write(new byte[10]);
            var zeros = new byte[1 << 20];
            for (int i = 0; i < 512; i++) gz.Write(zeros);
        }
        byte[] bomb = ms.ToArray();
        var ex = Refused<DatasetException>(() => IdxFile.Parse(bomb, "bomb-idx1-ubyte.gz"), $"idx.gz bomb ({bomb.Length} bytes)");
        Assert.Equal("bomb-idx1-ubyte.gz", ex.File);
        Assert.Contains("unexpected bytes after the 10 data bytes", ex.Problem);
    }

    [Fact]
    public void Idx_gz_header_claiming_more_than_the_file_can_hold_is_refused_before_allocating()
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true)) gz.Write([.. IdxHeader(60000, 100, 100), 1, 2, 3]);
        byte[] small = ms.ToArray();
        var ex = Refused<DatasetException>(() => IdxFile.Parse(small, "liar-idx3-ubyte.gz"), "idx.gz claiming 600 MB");
        Assert.Contains($"{small.Length} bytes of gzip data hold at most", ex.Problem);
    }

    [Fact]
    public void Pth_storage_whose_pickle_and_zip_entry_both_claim_2_GB_is_refused_before_allocating()
    {
        // bare_state_dict.pth with storage 0 (4 floats) claimed as 500 M floats both in the pickle's persistent id and in
        // the zip directory's uncompressed size: the claims agree with each other, only the file's real size refutes them.
        using var source = ZipFile.OpenRead(CheckpointFixtures.PathOf("bare_state_dict.pth"));
        using var rewritten = new MemoryStream();
        using (var zip = new ZipArchive(rewritten, ZipArchiveMode.Create, leaveOpen: true))
            foreach (var entry in source.Entries)
            {
                using var input = entry.Open();
                using var buffer = new MemoryStream();
                input.CopyTo(buffer);
                byte[] content = buffer.ToArray();
                if (entry.FullName.EndsWith("/data.pkl", StringComparison.Ordinal))
                {
                    byte[] small = [.. Encoding.ASCII.GetBytes("cpuq\x07"), (byte)'K', 4];
                    int at = content.AsSpan().IndexOf(small);
                    Assert.True(at > 0, "storage 0's persistent id not found in the fixture's pickle");
                    byte[] huge = new byte[5];
                    huge[0] = (byte)'J';
                    BinaryPrimitives.WriteInt32LittleEndian(huge.AsSpan(1), 500_000_000);
                    content = [.. content[..(at + small.Length - 2)], .. huge, .. content[(at + small.Length)..]];
                }
                var copy = zip.CreateEntry(entry.FullName, CompressionLevel.NoCompression);
                using var output = copy.Open();
                output.Write(content);
            }
        byte[] bytes = rewritten.ToArray();
        PatchUncompressedSize(bytes, "bare_state_dict/data/0", 2_000_000_000);
        using var tmp = new TempFolder();
        string path = tmp.Combine("liar.pth");
        File.WriteAllBytes(path, bytes);
        var ex = Refused<CheckpointFormatException>(() => PthCheckpoint.Load(path), $"pth claiming 2 GB ({bytes.Length} bytes)");
        Assert.Contains("bare_state_dict/data/0", ex.Message);
    }

    /// <summary>Rewrites a stored zip entry's uncompressed size in its local header and its central directory record.</summary>
    private static void PatchUncompressedSize(byte[] zip, string name, uint size)
    {
        byte[] nameBytes = Encoding.ASCII.GetBytes(name);
        int patched = 0;
        for (int i = 0; i + 46 < zip.Length; i++)
        {
            uint signature = BinaryPrimitives.ReadUInt32LittleEndian(zip.AsSpan(i));
            if (signature == 0x04034b50 && zip.AsSpan(i + 30).StartsWith(nameBytes) && BinaryPrimitives.ReadUInt16LittleEndian(zip.AsSpan(i + 26)) == nameBytes.Length)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(zip.AsSpan(i + 22), size);
                patched++;
            }
            else if (signature == 0x02014b50 && zip.AsSpan(i + 46).StartsWith(nameBytes) && BinaryPrimitives.ReadUInt16LittleEndian(zip.AsSpan(i + 28)) == nameBytes.Length)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(zip.AsSpan(i + 24), size);
                patched++;
            }
        }
        Assert.Equal(2, patched);
    }

    [Fact]
    public void Safetensors_claims_beyond_the_file_are_refused_before_allocating()
    {
        using var tmp = new TempFolder();
        // A header length of 90 MB in a 100-byte file.
        string longHeader = tmp.Combine("long-header.safetensors");
        File.WriteAllBytes(longHeader, [.. BitConverter.GetBytes(90_000_000L), .. new byte[92]]);
        var ex = Refused<CheckpointFormatException>(() => Safetensors.Read(longHeader), "safetensors header claiming 90 MB");
        Assert.Contains("runs past the end of the file", ex.Message);

        // A 500 M-float tensor whose data_offsets agree with its shape, 16 bytes of data.
        string json = """{"w": {"dtype": "F32", "shape": [500000000], "data_offsets": [0, 2000000000]}}""";
        byte[] header = Encoding.UTF8.GetBytes(json);
        string bigTensor = tmp.Combine("big-tensor.safetensors");
        File.WriteAllBytes(bigTensor, [.. BitConverter.GetBytes((long)header.Length), .. header, .. new byte[16]]);
        ex = Refused<CheckpointFormatException>(() => Safetensors.Read(bigTensor), "safetensors tensor claiming 2 GB");
        Assert.Contains("w", ex.Message);
    }

    [Fact]
    public void Npy_shape_beyond_the_file_is_refused_before_allocating()
    {
        using var tmp = new TempFolder();
        string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (500000000,), }";
        header = header.PadRight(117) + "\n"; // 10 + 118 = 128 bytes, 64-aligned like numpy writes
        byte[] h = Encoding.ASCII.GetBytes(header);
        string path = tmp.Combine("liar.npy");
        File.WriteAllBytes(path, [0x93, .. "NUMPY"u8.ToArray(), 1, 0, (byte)h.Length, (byte)(h.Length >> 8), .. h, .. new byte[16]]);
        var ex = Refused<NpyFormatException>(() => Npy.Read(path), "npy claiming 2 GB");
        Assert.Contains("size mismatch", ex.Message);
    }
}
