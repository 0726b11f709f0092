using System.Globalization;
using CrateIL.Crate.Checkpoints;

namespace CrateIL.Crate.Training;

/// <summary>
/// The checkpoint files of a run's output directory: <c>last.safetensors</c> (after every epoch and on interrupt),
/// <c>best.safetensors</c> (the epoch with the best validation top-1 so far) and <c>epoch-NNNN.safetensors</c> for
/// only the newest <see cref="Keep"/> epochs. Every file is written atomically (<see cref="AtomicFile"/>): the epoch's
/// state is serialised once into <c>last</c>, and the other two are copies of it, so all three always hold the same step.
/// </summary>
public sealed class CheckpointRotation
{
    public const string LastName = "last.safetensors";
    public const string BestName = "best.safetensors";

    public CheckpointRotation(string directory, int keep)
    {
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentOutOfRangeException.ThrowIfNegative(keep);
        Directory = Path.GetFullPath(directory);
        Keep = keep;
    }

    public string Directory { get; }

    /// <summary>How many per-epoch files stay (the newest); 0 writes none.</summary>
    public int Keep { get; }

    public string LastPath => Path.Combine(Directory, LastName);
    public string BestPath => Path.Combine(Directory, BestName);

    /// <summary>The per-epoch file after <paramref name="epochs"/> epochs.</summary>
    public string EpochPath(int epochs) =>
        Path.Combine(Directory, string.Create(CultureInfo.InvariantCulture, $"epoch-{epochs:D4}.safetensors"));

    /// <summary>
    /// After an epoch: <paramref name="write"/> writes the checkpoint to the path it is given (atomically), which becomes
    /// <c>last</c>; then the per-epoch copy (when <see cref="Keep"/> &gt; 0) and <c>best</c> (when <paramref name="isBest"/>),
    /// and per-epoch files older than the newest <see cref="Keep"/> are deleted.
    /// </summary>
    public void EpochFinished(int epochs, bool isBest, Action<string> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        System.IO.Directory.CreateDirectory(Directory);
        write(LastPath);
        if (Keep > 0) Copy(LastPath, EpochPath(epochs));
        if (isBest) Copy(LastPath, BestPath);
        DeleteOldEpochFiles(epochs);
    }

    /// <summary>The epochs whose per-epoch files are in the directory, ascending.</summary>
    public IReadOnlyList<int> EpochFiles()
    {
        var epochs = new List<int>();
        if (!System.IO.Directory.Exists(Directory)) return epochs;
        foreach (string path in System.IO.Directory.EnumerateFiles(Directory, "epoch-*.safetensors"))
            if (EpochOf(Path.GetFileName(path)) is int e) epochs.Add(e);
        epochs.Sort();
        return epochs;
    }

    /// <summary>
    /// Removes the temporary files killed checkpoint writes left behind (<see cref="AtomicFile.RemoveStaleTemporaryFiles"/>:
    /// only names of our own temporary shape); returns their names. Called when a run starts or resumes.
    /// </summary>
    public IReadOnlyList<string> RemoveStaleTemporaryFiles() => AtomicFile.RemoveStaleTemporaryFiles(Directory);

    private void DeleteOldEpochFiles(int epochs)
    {
        // Files of epochs after this one (from an earlier, longer run in the same directory) are left alone.
        foreach (int e in EpochFiles())
            if (e <= epochs - Keep) File.Delete(EpochPath(e));
    }

    private static int? EpochOf(string fileName)
    {
        const string Prefix = "epoch-", Suffix = ".safetensors";
        if (!fileName.StartsWith(Prefix, StringComparison.Ordinal) || !fileName.EndsWith(Suffix, StringComparison.Ordinal)) return null;
        var digits = fileName.AsSpan(Prefix.Length, fileName.Length - Prefix.Length - Suffix.Length);
        if (digits.Length < 4) return null;
        foreach (char c in digits)
            if (!char.IsAsciiDigit(c)) return null;
        return int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out int epoch) ? epoch : null;
    }

    private static void Copy(string source, string target) =>
        AtomicFile.Write(target, stream =>
        {
            using var from = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            from.CopyTo(stream);
        });
}
