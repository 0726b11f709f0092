using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using System.Text.Json;
using Xunit;

namespace CrateIL.Cli.Tests;

/// <summary>
/// The GPU check without an SDK, proven on this CPU: benchmarks/gpu/pack.sh packs the CLI with the .NET runtime,
/// then benchmarks/gpu/run.sh --device cpu --smoke runs from the pack in a shell whose PATH has no usable
/// <c>dotnet</c> (a decoy that records any call), and its summary and JSON files must appear.
/// Skipped, with the reason, where the pack cannot be built (not linux-x64, no bash/xz/tar, no runtime to pack).
/// </summary>
public class GpuPackTests
{
    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "CrateIL.sln"))) return dir.FullName;
        throw new InvalidOperationException($"no CrateIL.sln above {AppContext.BaseDirectory}");
    }

    private static string? Which(string tool, string path) =>
        path.Split(':', StringSplitOptions.RemoveEmptyEntries).Select(d => Path.Combine(d, tool)).FirstOrDefault(File.Exists);

    private static (int Exit, string Output) Bash(string repo, string script, IDictionary<string, string?> env, bool clearEnv, TimeSpan limit, params string[] args)
    {
        var psi = new ProcessStartInfo("/bin/bash") { WorkingDirectory = repo, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(script);
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (clearEnv) psi.Environment.Clear();
        // `dotnet test` leaves MSBuild's variables behind; a nested `dotnet publish` must not inherit them.
        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase) || k == "DOTNET_HOST_PATH").ToList())
            psi.Environment.Remove(key);
        foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(limit))
        {
            p.Kill(entireProcessTree: true);
            return (-1, $"timed out after {limit.TotalSeconds:F0} s\n{stdout.Result}\n{stderr.Result}");
        }
        return (p.ExitCode, stdout.Result + stderr.Result);
    }

    [SkippableFact]
    [UnsupportedOSPlatform("windows")]
    public void PackThenRunOnTheCpuWithNoDotnetOnThePath()
    {
        Skip.IfNot(RuntimeInformation.IsOSPlatform(OSPlatform.Linux) && RuntimeInformation.OSArchitecture == Architecture.X64,
            "the pack is for linux-x64 and is built on it");
        string path = Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var tool in new[] { "tar", "xz" })
            Skip.If(Which(tool, path) is null, $"{tool} is missing: the pack cannot be built");
        Skip.If(!File.Exists("/bin/bash"), "no /bin/bash");

        string repo = RepoRoot();
        // Publish the build this test was built with (its project references the CLI, so that build is current).
        string configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Debug{Path.DirectorySeparatorChar}") ? "Debug" : "Release";
        var (packExit, packOutput) = Bash(repo, "benchmarks/gpu/pack.sh",
            new Dictionary<string, string?> { ["PACK_NO_BUILD"] = "1", ["PACK_CONFIGURATION"] = configuration, ["PACK_XZ_LEVEL"] = "1" },
            clearEnv: false, TimeSpan.FromMinutes(5));
        Skip.If(packExit == 3, "pack.sh has nothing to pack from: " + packOutput.Trim());
        Assert.True(packExit == 0, "pack.sh failed:\n" + packOutput);
        long packBytes = new DirectoryInfo(Path.Combine(repo, "artifacts", "gpu-pack")).EnumerateFiles().Sum(f => f.Length);
        Assert.True(packBytes <= 64L << 20, $"the pack is {packBytes} bytes, over 64 MiB");

        string scratch = Directory.CreateTempSubdirectory("crateil-packtest-").FullName;
        try
        {
            // A decoy `dotnet` first on the PATH: any use of an SDK or host from the PATH leaves a mark and fails.
            string decoyDir = Directory.CreateDirectory(Path.Combine(scratch, "decoy")).FullName;
            string mark = Path.Combine(scratch, "dotnet-was-called");
            File.WriteAllText(Path.Combine(decoyDir, "dotnet"), $"#!/bin/sh\necho \"$0 $*\" >> '{mark}'\necho 'dotnet from the PATH must not be used' >&2\nexit 99\n");
            File.SetUnixFileMode(Path.Combine(decoyDir, "dotnet"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            string results = Path.Combine(scratch, "results");
            var env = new Dictionary<string, string?>
            {
                ["PATH"] = $"{decoyDir}:/usr/local/bin:/usr/bin:/bin",
                ["HOME"] = Environment.GetEnvironmentVariable("HOME") ?? scratch,
                ["TMPDIR"] = Path.GetTempPath(),
                ["LANG"] = "C.UTF-8",
            };
            var (exit, output) = Bash(repo, "benchmarks/gpu/run.sh", env, clearEnv: true, TimeSpan.FromMinutes(5), "--device", "cpu", "--smoke", results);
            Assert.False(File.Exists(mark), "run.sh called the dotnet on the PATH: " + (File.Exists(mark) ? File.ReadAllText(mark) : ""));
            Assert.True(exit == 0, $"run.sh exited {exit}:\n{output}");

            var files = Directory.GetFiles(results).Select(Path.GetFileName).ToList();
            Assert.True(files.Count <= 8, "more than 8 result files: " + string.Join(", ", files));
            foreach (var name in new[] { "summary.txt", "run.log", "selftest.json", "gemm.json", "mssa.json", "ista.json", "model.json", "torch.json" })
                Assert.Contains(name, files);
            string summary = File.ReadAllText(Path.Combine(results, "summary.txt"));
            Assert.Contains("selftest: ", summary);
            Assert.Contains("sgemm 128x128x128 NN", summary);
            Assert.Contains("mssa fwd", summary);
            Assert.Contains("ista fwd", summary);
            Assert.Contains("CrateIL custom", summary);
            Assert.Contains("passed;", summary);
            using var selftest = JsonDocument.Parse(File.ReadAllText(Path.Combine(results, "selftest.json")));
            Assert.True(selftest.RootElement.GetProperty("passed").GetBoolean());
            Assert.Equal("cpu", selftest.RootElement.GetProperty("device").GetProperty("kind").GetString());
            foreach (var name in new[] { "gemm.json", "mssa.json", "ista.json", "torch.json" })
                using (var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(results, name))))
                    Assert.Equal(JsonValueKind.Array, doc.RootElement.ValueKind);
            Assert.Contains("runtime (from the pack", File.ReadAllText(Path.Combine(results, "run.log")));
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
    }
}
