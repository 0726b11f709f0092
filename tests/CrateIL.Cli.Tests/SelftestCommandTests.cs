using System.Text.Json;
using Xunit;

namespace CrateIL.Cli.Tests;

/// <summary><c>crate selftest</c> on the CPU: passes, prints and JSON-encodes every row; bad arguments exit 2 on one line.</summary>
public class SelftestCommandTests
{
    private static readonly string[] RowFields =
        ["group", "check", "shape", "output", "max_abs_error", "max_rel_error", "worst_ratio", "tolerance_abs", "tolerance_rel", "passed", "error"];

    private static JsonElement Json(params string[] args)
    {
        var (exit, stdout, stderr) = CliRunner.Run(["selftest", .. args, "--json"]);
        Assert.True(exit == 0, $"selftest {string.Join(' ', args)} exited {exit}: {stderr}\n{stdout}");
        return JsonDocument.Parse(stdout).RootElement.Clone();
    }

    [Fact]
    public void CpuSelftestPassesWithEveryOpBlockAndModelInTheJson()
    {
        var root = Json("--device", "cpu");
        Assert.True(root.GetProperty("passed").GetBoolean());
        Assert.Equal(0, root.GetProperty("failed").GetInt32());
        Assert.Equal("cpu", root.GetProperty("device").GetProperty("kind").GetString());
        var rows = root.GetProperty("rows").EnumerateArray().ToList();
        Assert.Equal(root.GetProperty("checks").GetInt32(), rows.Count);
        foreach (var row in rows)
        {
            foreach (var field in RowFields) Assert.True(row.TryGetProperty(field, out _), $"row without {field}: {row}");
            Assert.True(row.GetProperty("passed").GetBoolean(), row.ToString());
        }
        var checks = rows.Select(r => r.GetProperty("check").GetString()!).ToHashSet();
        foreach (var expected in new[]
        {
            "gemm NN", "gemm NT", "gemm TN", "gemm TT", "add", "multiply", "scale", "axpy", "bias add", "bias add backward",
            "relu", "soft threshold", "soft threshold (symmetric)", "gelu (erf)", "gelu (tanh)", "softmax", "layernorm",
            "cross-entropy", "reduce sum", "reduce max", "reduce l2norm",
            "linear", "layernorm layer", "patch embedding", "mssa block", "mhsa block", "ista block", "mlp block", "head (cls)", "dropout",
            "adamw", "lion", "sgd", "sgd (nesterov)", "crate-t train step", "vit-t train step",
        })
            Assert.Contains(expected, checks);
        // The odd sizes of the issue: 1, 7, 65 and 785 appear among the shapes.
        var shapes = string.Join(" ", rows.Select(r => r.GetProperty("shape").GetString()));
        foreach (var size in new[] { "1×", "7", "65", "785" }) Assert.Contains(size, shapes);
    }

    [Fact]
    public void QuickTablePrintsOneLinePerJsonRow()
    {
        int rows = Json("--device", "cpu", "--quick").GetProperty("checks").GetInt32();
        var (exit, stdout, stderr) = CliRunner.Run("selftest", "--device", "cpu", "--quick");
        Assert.True(exit == 0, stderr + stdout);
        var lines = stdout.Split('\n').Select(l => l.TrimEnd()).ToList();
        Assert.Equal(rows, lines.Count(l => l.EndsWith(" ok", StringComparison.Ordinal)));
        Assert.Contains(lines, l => l.StartsWith("device:  cpu:0", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith($"selftest on cpu:0: {rows} of {rows} checks passed, 0 failed", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("no-such-device")]
    [InlineData("cuda:7")]
    [InlineData("opencl:x")]
    public void BadDeviceIsOneLineAndExitTwo(string spec)
    {
        var (exit, stdout, stderr) = CliRunner.Run("selftest", "--device", spec);
        Assert.Equal(2, exit);
        Assert.Equal("", stdout);
        var lines = stderr.TrimEnd().Split('\n');
        Assert.Single(lines);
        Assert.StartsWith("error: --device ", lines[0]);
        Assert.DoesNotContain("   at ", stderr);
    }
}
