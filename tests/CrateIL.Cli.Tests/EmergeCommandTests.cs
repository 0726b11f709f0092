using System.Diagnostics;
using System.Text.Json;
using CrateIL.Compute.Devices;
using CrateIL.Crate.Models;
using Xunit;
using Xunit.Abstractions;

namespace CrateIL.Cli.Tests;

/// <summary><c>crate emerge</c> as a user runs it: the tiny budget end to end, and mistakes.</summary>
public class EmergeCommandTests(ITestOutputHelper output)
{
    private static (int Code, string Stdout, string Stderr) Crate(params string[] args) => CliRunner.Run(args);

    private static string TempPath() => Path.Combine(Path.GetTempPath(), "crateil-emerge-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public void TinyBudget_WritesEveryArtifactWithFiniteNumbers()
    {
        string dir = TempPath();
        try
        {
            var clock = Stopwatch.StartNew();
            var (code, stdout, stderr) = Crate("emerge", "--budget", "tiny", "--out", dir, "--json", "--threads", "2");
            output.WriteLine($"crate emerge --budget tiny: {clock.Elapsed.TotalSeconds:F1} s (exit {code})");
            output.WriteLine(stderr);
            Assert.Equal(0, code);
            foreach (var file in new[] { "report.md", "report.json", "attention-1.png", "training.png", "crate.safetensors", "vit.safetensors" })
                Assert.True(new FileInfo(Path.Combine(dir, file)).Length > 0, $"{file} is missing or empty");
            Assert.Empty(Directory.GetDirectories(Path.GetDirectoryName(dir)!, Path.GetFileName(dir) + ".partial-*"));

            using var json = JsonDocument.Parse(stdout);
            Assert.Equal(File.ReadAllText(Path.Combine(dir, "report.json")), stdout.TrimEnd());
            var models = json.RootElement.GetProperty("models").EnumerateArray().ToArray();
            Assert.Equal(["CRATE", "ViT"], models.Select(m => m.GetProperty("label").GetString()));
            foreach (var m in models)
            {
                double top1 = m.GetProperty("top1").GetDouble();
                Assert.InRange(top1, 0, 1);
                var scores = m.GetProperty("scores");
                var layers = scores.GetProperty("layers").EnumerateArray().ToArray();
                Assert.Equal(json.RootElement.GetProperty("depth").GetInt32(), layers.Length);
                foreach (var l in layers.Concat(scores.GetProperty("untrained").EnumerateArray()))
                    foreach (var name in new[] { "auc", "object_iou_top", "object_iou_mass", "miou_top", "miou_mass" })
                        Assert.InRange(l.GetProperty(name).GetDouble(), 0, 1);
                // The reported best layer is the one with the highest best-head AUC.
                int best = scores.GetProperty("best_layer").GetInt32();
                Assert.Equal(layers.Max(l => l.GetProperty("auc").GetDouble()), layers[best].GetProperty("auc").GetDouble());
                foreach (var name in new[] { "mask_ap50", "box_ap50" })
                    Assert.InRange(scores.GetProperty("mask_cut").GetProperty(name).GetDouble(), 0, 1);
                Assert.All(m.GetProperty("probes").EnumerateArray(), p => Assert.True(double.IsFinite(p.GetProperty("coding_rate").GetDouble())));
            }
            string report = File.ReadAllText(Path.Combine(dir, "report.md"));
            foreach (var text in new[] { "all-foreground", "centre prior", "random heads", "step-0", "MaskCut", "attention-1.png", "training.png" })
                Assert.Contains(text, report, StringComparison.Ordinal);

            // The checkpoints load like any other.
            using var cpu = DeviceRegistry.Open("cpu");
            using var crate = CrateCheckpoint.Load(Path.Combine(dir, "crate.safetensors"), cpu);
            using var vit = CrateCheckpoint.Load(Path.Combine(dir, "vit.safetensors"), cpu);
            Assert.Equal(CrateVariant.Crate, crate.Config.Variant);
            Assert.Equal(CrateVariant.Vit, vit.Config.Variant);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("--budget", "huge")]
    [InlineData("--dataset", "cifar")]
    [InlineData("--threads", "0")]
    [InlineData("--device", "bogus")]
    [InlineData("--device", "cuda:7")]
    [InlineData("--seed", "x")]
    public void BadArguments_OneLineExitTwo_NothingWritten(string option, string value)
    {
        string dir = TempPath();
        var (code, stdout, stderr) = Crate("emerge", "--budget", "tiny", "--out", dir, option, value);
        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("(Parameter", stderr, StringComparison.Ordinal);
        Assert.False(Directory.Exists(dir));
    }

    [Fact]
    public void NonEmptyOutputFolder_IsRefused()
    {
        string dir = TempPath();
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "keep.txt"), "mine");
        try
        {
            var (code, _, stderr) = Crate("emerge", "--budget", "tiny", "--out", dir);
            Assert.Equal(2, code);
            Assert.Contains("not empty", stderr, StringComparison.Ordinal);
            Assert.Equal(["keep.txt"], Directory.GetFiles(dir).Select(Path.GetFileName));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
