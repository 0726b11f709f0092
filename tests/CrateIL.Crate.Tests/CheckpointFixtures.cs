using System.Security.Cryptography;
using System.Text.Json;

namespace CrateIL.Crate.Tests;

/// <summary>Paths of the committed checkpoint fixtures and the values tools/reference/make_pth_fixtures.py recorded.</summary>
internal static class CheckpointFixtures
{
    public static string Dir => Path.Combine(AppContext.BaseDirectory, "Fixtures");

    public static string PathOf(string name) => Path.Combine(Dir, name);

    private static readonly Lazy<JsonDocument> ExpectedDocument =
        new(() => JsonDocument.Parse(File.ReadAllBytes(PathOf("expected.json"))));

    public static JsonElement Expected(string fixture) => ExpectedDocument.Value.RootElement.GetProperty(fixture);

    public static int[] Ints(JsonElement array) => array.EnumerateArray().Select(e => e.GetInt32()).ToArray();

    /// <summary>float32 values written by Python as doubles (exact: every float32 is a double).</summary>
    public static float[] Floats(JsonElement array) => array.EnumerateArray().Select(e => (float)e.GetDouble()).ToArray();

    public static string Sha256(string path) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));

    /// <summary>A fresh empty directory under the system temp folder, removed on dispose.</summary>
    public sealed class TempDir : IDisposable
    {
        public TempDir() => Directory.CreateDirectory(Path);

        public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "crateil-ckpt-" + Guid.NewGuid().ToString("N"));

        public string File(string name) => System.IO.Path.Combine(Path, name);

        public void Dispose()
        {
            if (Directory.Exists(Path)) Directory.Delete(Path, recursive: true);
        }
    }
}
