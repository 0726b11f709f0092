using System.Globalization;

namespace CrateIL.Cli.Images;

/// <summary>
/// What an image option (<c>--images</c>) names: one file, a directory (its image files, not recursive) or a glob whose
/// last path segment has <c>*</c>/<c>?</c> wildcards (<c>photos/*.jpg</c>). The commands that read photos share it, so
/// every one of them accepts the same spellings and fails with the same one-line message.
/// </summary>
internal static class ImageInputs
{
    /// <summary>File extensions read from a directory (Skia decodes these); a single named file may have any extension.</summary>
    public static IReadOnlyList<string> Extensions { get; } = [".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"];

    /// <summary>
    /// The image files <paramref name="fileDirOrGlob"/> names, sorted ordinally by full path (stable across file systems);
    /// <see cref="ArgumentException"/> naming <paramref name="option"/> and the pattern when nothing matches.
    /// </summary>
    public static IReadOnlyList<string> Expand(string fileDirOrGlob, string option = "--images")
    {
        if (string.IsNullOrWhiteSpace(fileDirOrGlob)) throw new ArgumentException($"{option} is empty");
        string spec = fileDirOrGlob;
        List<string> files;
        if (File.Exists(spec)) files = [Path.GetFullPath(spec)];
        else if (Directory.Exists(spec))
        {
            files = [.. Directory.EnumerateFiles(spec).Where(IsImageName).Select(Path.GetFullPath)];
            if (files.Count == 0)
                throw new ArgumentException($"{option} '{spec}': the directory has no image files ({string.Join(", ", Extensions)})");
        }
        else
        {
            string name = Path.GetFileName(spec);
            string directory = Path.GetDirectoryName(spec) is { Length: > 0 } d ? d : ".";
            if (name.IndexOfAny(['*', '?']) < 0)
                throw new ArgumentException($"{option} '{spec}': no such file or directory");
            if (directory.IndexOfAny(['*', '?']) >= 0)
                throw new ArgumentException($"{option} '{spec}': wildcards are allowed only in the file name, not in '{directory}'");
            if (!Directory.Exists(directory)) throw new ArgumentException($"{option} '{spec}': directory '{directory}' does not exist");
            // MatchType.Simple: '*' and '?' only, and no 8.3-name quirks (".jp*" does not match ".jpeg~").
            files = [.. Directory.EnumerateFiles(directory, name, new EnumerationOptions { MatchType = MatchType.Simple, MatchCasing = MatchCasing.PlatformDefault })
                .Select(Path.GetFullPath)];
            if (files.Count == 0) throw new ArgumentException($"{option} '{spec}': no files match");
        }
        files.Sort(StringComparer.Ordinal);
        return files;
    }

    /// <summary>Whether a file name has one of <see cref="Extensions"/> (case-insensitive).</summary>
    public static bool IsImageName(string path) =>
        Extensions.Contains(Path.GetExtension(path).ToLowerInvariant(), StringComparer.Ordinal);

    /// <summary>
    /// A distinct output name per input file for <paramref name="files"/> (in order): the file's stem, or, when two inputs
    /// share a stem (<c>a/x.jpg</c>, <c>b/x.png</c>), the stem followed by <c>-2</c>, <c>-3</c>, … in input order,
    /// so outputs named after images never overwrite each other.
    /// </summary>
    public static IReadOnlyList<string> UniqueStems(IReadOnlyList<string> files)
    {
        ArgumentNullException.ThrowIfNull(files);
        var taken = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var stems = new string[files.Count];
        for (int i = 0; i < files.Count; i++)
        {
            string stem = Path.GetFileNameWithoutExtension(files[i]);
            if (stem.Length == 0) stem = "image";
            string name = stem;
            for (int k = 2; !taken.Add(name); k++) name = string.Create(CultureInfo.InvariantCulture, $"{stem}-{k}");
            stems[i] = name;
        }
        return stems;
    }
}
