using System.Buffers.Binary;
using System.IO.Compression;
using CrateIL.Crate.Data;
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
}
