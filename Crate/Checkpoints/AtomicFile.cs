namespace CrateIL.Crate.Checkpoints;

/// <summary>
/// Writes a file so that readers see either the old file or the complete new one: the content goes to a temporary
/// file in the same directory (same file system, so the rename is atomic), is flushed to disk, then renamed over the
/// target. On failure the temporary file is deleted and the target is untouched.
/// </summary>
public static class AtomicFile
{
    public static void Write(string path, Action<Stream> writeContent)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(writeContent);
        string fullPath = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(fullPath) ?? ".";
        string temp = Path.Combine(directory, TemporaryName(Path.GetFileName(fullPath)));
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                writeContent(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, fullPath, overwrite: true);
        }
        catch
        {
            // The original error matters more than a leftover temporary file.
            try { File.Delete(temp); }
            catch (Exception cleanup) when (cleanup is IOException or UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>The temporary name a write of <paramref name="fileName"/> uses: <c>.&lt;name&gt;.&lt;32 hex digits&gt;.tmp</c>.</summary>
    public static string TemporaryName(string fileName) => $".{fileName}.{Guid.NewGuid():N}.tmp";

    /// <summary>Whether <paramref name="fileName"/> has the shape of <see cref="TemporaryName"/> (and so was left by a killed writer).</summary>
    public static bool IsTemporaryName(string fileName)
    {
        ArgumentNullException.ThrowIfNull(fileName);
        // ".{name}.{guid:N}.tmp": a dot, a non-empty name, a dot, 32 lower-case hex digits, ".tmp".
        const int Tail = 1 + 32 + 4;
        if (fileName.Length < 1 + 1 + Tail || fileName[0] != '.' || !fileName.EndsWith(".tmp", StringComparison.Ordinal)) return false;
        int dot = fileName.Length - Tail;
        if (fileName[dot] != '.') return false;
        foreach (char c in fileName.AsSpan(dot + 1, 32))
            if (!char.IsAsciiHexDigitLower(c) && !char.IsAsciiDigit(c)) return false;
        return true;
    }

    /// <summary>
    /// Deletes the temporary files a killed <see cref="Write"/> left in <paramref name="directory"/> (names of the
    /// <see cref="TemporaryName"/> shape only, never other files); returns their names. Call it before writing into
    /// the directory, when no write of this process is in flight there.
    /// </summary>
    public static IReadOnlyList<string> RemoveStaleTemporaryFiles(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        var removed = new List<string>();
        if (!Directory.Exists(directory)) return removed;
        foreach (string path in Directory.EnumerateFiles(directory, ".*.tmp"))
        {
            string name = Path.GetFileName(path);
            if (!IsTemporaryName(name)) continue;
            File.Delete(path);
            removed.Add(name);
        }
        removed.Sort(StringComparer.Ordinal);
        return removed;
    }
}
