using System.IO.Compression;
using CrateIL.Crate.Checkpoints.Pickle;

namespace CrateIL.Crate.Checkpoints;

/// <summary>
/// A PyTorch <c>torch.save</c> file (<c>.pth</c>, <c>.pth.tar</c>, <c>.pt</c>) in the zip format PyTorch has written
/// since 1.6: <c>&lt;archive&gt;/data.pkl</c> (the pickled object), <c>&lt;archive&gt;/data/&lt;key&gt;</c> (raw storage
/// bytes), <c>&lt;archive&gt;/version</c> and, from PyTorch 2.1, <c>&lt;archive&gt;/byteorder</c>. The pickle is read with the
/// data-only <see cref="Unpickler"/> and the PyTorch allow-list: no Python code is ever run.
/// </summary>
public sealed class PthCheckpoint
{
    /// <summary>Largest <c>data.pkl</c> accepted; real ones are kilobytes (tensor bytes live in separate entries).</summary>
    public const long MaxPickleBytes = 256L << 20;

    private PthCheckpoint(string file, object? root)
    {
        File = file;
        Root = root;
    }

    public string File { get; }

    /// <summary>
    /// The unpickled object: <see cref="PickleDict"/>, <c>List&lt;object?&gt;</c>, <c>object?[]</c> (tuple), string,
    /// long, double, bool, null, byte[], <see cref="TorchTensor"/>.
    /// </summary>
    public object? Root { get; }

    public static PthCheckpoint Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        FileStream stream;
        try { stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read); }
        catch (FileNotFoundException ex) { throw new CheckpointFormatException(path, "file not found", ex); }
        catch (DirectoryNotFoundException ex) { throw new CheckpointFormatException(path, "directory not found", ex); }
        using (stream)
        {
            if (stream.Length >= 2)
            {
                Span<byte> magic = stackalloc byte[2];
                stream.ReadExactly(magic);
                stream.Position = 0;
                if (magic[0] == 0x80 && magic[1] <= 5)
                    throw new CheckpointFormatException(path,
                        "legacy (pre-1.6, non-zip) PyTorch serialization is not supported; re-save with torch.save in a current PyTorch");
            }
            ZipArchive zip;
            try { zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true); }
            catch (InvalidDataException ex)
            {
                throw new CheckpointFormatException(path, $"not a valid zip archive (corrupt or not a PyTorch zip checkpoint): {ex.Message}", ex);
            }
            using (zip)
            {
                try { return Load(path, zip, stream.Length); }
                catch (InvalidDataException ex)
                {
                    throw new CheckpointFormatException(path, $"corrupt zip entry: {ex.Message}", ex);
                }
            }
        }
    }

    private static PthCheckpoint Load(string path, ZipArchive zip, long fileLength)
    {
        var pickleEntries = zip.Entries.Where(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal)
            && e.FullName.IndexOf('/') == e.FullName.Length - "/data.pkl".Length).ToList();
        if (pickleEntries.Count != 1)
            throw new CheckpointFormatException(path, pickleEntries.Count == 0
                ? "zip has no '<archive>/data.pkl' entry: not a PyTorch checkpoint"
                : $"zip has {pickleEntries.Count} '<archive>/data.pkl' entries");
        var pickleEntry = pickleEntries[0];
        string prefix = pickleEntry.FullName[..^"data.pkl".Length];
        var entries = new Dictionary<string, ZipArchiveEntry>(StringComparer.Ordinal);
        foreach (var entry in zip.Entries) entries.TryAdd(entry.FullName, entry);

        bool bigEndian = false;
        if (entries.TryGetValue(prefix + "byteorder", out var byteOrderEntry))
        {
            string order = System.Text.Encoding.ASCII.GetString(ReadEntry(path, byteOrderEntry, 64, fileLength)).Trim();
            bigEndian = order switch
            {
                "little" => false,
                "big" => true,
                _ => throw new CheckpointFormatException(path, $"byteorder entry says '{order}', expected 'little' or 'big'"),
            };
        }

        byte[] ReadStorage(string key, long numel, TensorDType dtype)
        {
            if (key.Contains('/') || key.Contains('\\') || key.Contains(".."))
                throw new CheckpointFormatException(path, $"storage key '{key}' is not a plain name");
            if (!entries.TryGetValue(prefix + "data/" + key, out var entry))
                throw new CheckpointFormatException(path, $"storage '{key}' has no '{prefix}data/{key}' entry in the zip");
            long expected = numel * TensorDTypes.Size(dtype);
            if (entry.Length != expected)
                throw new CheckpointFormatException(path,
                    $"storage '{key}' ({dtype}, {numel} elements) needs {expected} bytes but its zip entry holds {entry.Length}");
            return ReadEntry(path, entry, Array.MaxLength, fileLength);
        }

        byte[] pickle = ReadEntry(path, pickleEntry, MaxPickleBytes, fileLength);
        var host = new TorchPickleHost(ReadStorage, bigEndian);
        var root = Unpickler.Load(pickle, $"{path}:{pickleEntry.FullName}", host);
        return new PthCheckpoint(path, root);
    }

    /// <summary>Deflate's best case is about 1032:1, so no zip entry inflates further than that from its compressed bytes.</summary>
    private const long MaxDeflateRatio = 1032;

    /// <summary>
    /// Reads a whole zip entry. Its recorded sizes come from the zip's directory and may lie: they are checked against the
    /// file (the compressed bytes must fit in it, and cannot inflate more than deflate allows) before the buffer is allocated.
    /// </summary>
    private static byte[] ReadEntry(string path, ZipArchiveEntry entry, long limit, long fileLength)
    {
        if (entry.Length > limit)
            throw new CheckpointFormatException(path, $"zip entry '{entry.FullName}' is {entry.Length} bytes, over the {limit}-byte limit");
        if (entry.CompressedLength > fileLength)
            throw new CheckpointFormatException(path, $"zip entry '{entry.FullName}' claims {entry.CompressedLength} bytes in a {fileLength}-byte file");
        if (entry.Length > Math.Max(entry.CompressedLength, 1) * MaxDeflateRatio)
            throw new CheckpointFormatException(path, $"zip entry '{entry.FullName}' claims {entry.Length} bytes from {entry.CompressedLength} compressed bytes, more than deflate can produce");
        var bytes = new byte[entry.Length];
        using var stream = entry.Open();
        try { stream.ReadExactly(bytes); }
        catch (EndOfStreamException ex)
        {
            throw new CheckpointFormatException(path, $"zip entry '{entry.FullName}' is shorter than its recorded size", ex);
        }
        catch (InvalidDataException ex)
        {
            throw new CheckpointFormatException(path, $"zip entry '{entry.FullName}' is corrupt: {ex.Message}", ex);
        }
        return bytes;
    }
}
