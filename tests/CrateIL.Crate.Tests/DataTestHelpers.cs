using CrateIL.Crate.Data;

namespace CrateIL.Crate.Tests;

/// <summary>A temporary folder removed on dispose.</summary>
internal sealed class TempFolder : IDisposable
{
    public TempFolder()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "crateil-data-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Combine(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a leftover temp folder is harmless.
        }
    }
}

internal static class DataTestHelpers
{
    /// <summary>Deterministic interleaved pixels for a w×h×c image.</summary>
    public static byte[] Pixels(int width, int height, int channels, int seed)
    {
        var r = new Random(seed);
        var p = new byte[width * height * channels];
        r.NextBytes(p);
        return p;
    }

    /// <summary>The expected float of byte v in channel c under a normalisation, in double.</summary>
    public static double Normalised(byte v, Normalization n, int c) => (v / 255.0 - n.Mean[c]) / n.Std[c];
}
