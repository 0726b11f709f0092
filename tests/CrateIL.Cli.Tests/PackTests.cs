using System.Diagnostics;
using System.IO.Compression;
using System.Text.Json;
using System.Xml.Linq;
using Xunit;
using Xunit.Abstractions;

namespace CrateIL.Cli.Tests;

/// <summary>
/// <c>dotnet pack</c> as a release would run it: the libraries and the <c>crate</c> tool come out with their metadata, the
/// test kit and benchmarks do not, and the tool installs from the packed folder and runs. Slow (a Release pack of the
/// solution): one test. It skips, saying why, only when NuGet cannot be reached to restore what packing needs.
/// </summary>
public class PackTests(ITestOutputHelper output)
{
    private const string ToolId = "CrateIL.Tool";
    private static readonly string[] Libraries = ["CrateIL.Compute", "CrateIL.Imaging", "CrateIL.Nn", "CrateIL.Crate", "CrateIL.Segmentation", "CrateIL.Distributed"];
    private static readonly string[] NeverPacked = ["CrateIL.Testing", "CrateIL.Benchmarks", "QuickStart"];
    private static readonly string[] SkiaRuntimes = ["linux-x64", "linux-arm64", "win-x64", "osx"];

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "CrateIL.sln"))) return dir.FullName;
        throw new InvalidOperationException($"CrateIL.sln not found above {AppContext.BaseDirectory}");
    }

    [SkippableFact]
    public void Pack_makes_the_libraries_and_the_tool_and_the_tool_runs()
    {
        string repo = RepositoryRoot();
        string scratch = Path.Combine(Path.GetTempPath(), "crateil-pack-" + Guid.NewGuid().ToString("N"));
        string packages = Path.Combine(scratch, "packages");
        Directory.CreateDirectory(packages);
        try
        {
            // Every project of the solution except the test projects (one of them is running this test and must not be
            // rebuilt under itself): which of them become packages is decided by the build, not by this list.
            string sln = Path.Combine(repo, "CrateIL.sln");
            var projects = File.ReadLines(sln)
                .Where(l => l.StartsWith("Project(", StringComparison.Ordinal))
                .Select(l => l.Split('"')[5])
                .Where(p => p.EndsWith(".csproj", StringComparison.Ordinal) && !p.EndsWith(".Tests.csproj", StringComparison.Ordinal))
                .ToList();
            string filter = Path.Combine(scratch, "pack.slnf");
            File.WriteAllText(filter, JsonSerializer.Serialize(new { solution = new { path = sln, projects } }));

            var clock = Stopwatch.StartNew();
            var (exit, log) = Dotnet(repo, scratch, TimeSpan.FromMinutes(20), "pack", filter, "-c", "Release", "-o", packages, "-nologo");
            output.WriteLine($"dotnet pack ({projects.Count} projects): exit {exit}, {clock.Elapsed.TotalSeconds:F0} s");
            if (exit != 0 && log.Split('\n').FirstOrDefault(l => l.Contains("NU1301", StringComparison.Ordinal) || l.Contains("NU1101", StringComparison.Ordinal)) is { } offline)
                throw new SkipException("NuGet is unreachable, so packing cannot restore: " + offline.Trim());
            Assert.True(exit == 0, "dotnet pack failed:\n" + log);

            var packed = Directory.GetFiles(packages, "*.nupkg").ToDictionary(f => Nuspec(f).Id);
            output.WriteLine("packed: " + string.Join(", ", packed.Keys.Order()));
            foreach (var id in Libraries.Append(ToolId)) Assert.True(packed.ContainsKey(id), $"{id} was not packed");
            foreach (var id in NeverPacked) Assert.False(packed.ContainsKey(id), $"{id} must not be a package");
            Assert.DoesNotContain(packed.Keys, id => id.EndsWith(".Tests", StringComparison.Ordinal));

            string? version = null;
            foreach (var (id, file) in packed)
            {
                var spec = Nuspec(file);
                version ??= spec.Version;
                Assert.Equal(version, spec.Version);
                Assert.False(string.IsNullOrWhiteSpace(spec.Description) || spec.Description == "Package Description", $"{id}: no description");
                Assert.Equal(("expression", "MIT"), spec.License);
                Assert.Equal("README.md", spec.Readme);
                Assert.Equal("git", spec.Repository?.Attribute("type")?.Value);
                Assert.StartsWith("https://github.com/", spec.Repository?.Attribute("url")?.Value ?? "", StringComparison.Ordinal);
                // SourceLink asked git which commit was packed.
                Assert.Matches("^[0-9a-f]{40}$", spec.Repository?.Attribute("commit")?.Value ?? "");
                using var zip = ZipFile.OpenRead(file);
                var entries = zip.Entries.Select(e => e.FullName).ToHashSet();
                Assert.Contains("README.md", entries);
                Assert.Contains("LICENSE", entries);
                if (id == ToolId)
                {
                    Assert.Contains("tools/net10.0/any/crate.dll", entries);
                    Assert.Contains("tools/net10.0/any/DotnetToolSettings.xml", entries);
                    // SkiaSharp's native library (and HarfBuzz's, which ScottPlot draws text with) for every runtime the tool promises.
                    foreach (var rid in SkiaRuntimes)
                        foreach (var lib in new[] { "SkiaSharp", "HarfBuzzSharp" })
                            Assert.True(entries.Any(e => e.StartsWith($"tools/net10.0/any/runtimes/{rid}/native/", StringComparison.Ordinal) && e.Contains(lib, StringComparison.Ordinal)),
                                $"{id}: no {lib} native library for {rid}");
                }
                else
                {
                    Assert.Contains($"lib/net10.0/{id}.dll", entries);
                    Assert.Contains($"lib/net10.0/{id}.xml", entries); // XML documentation
                }
            }

            // Install the tool from the packed folder only (a private package cache, so no older build of the same version
            // is picked up) and run it.
            string toolPath = Path.Combine(scratch, "tool");
            var env = new Dictionary<string, string> { ["NUGET_PACKAGES"] = Path.Combine(scratch, "nuget-cache") };
            (exit, log) = Dotnet(repo, scratch, TimeSpan.FromMinutes(5), env, "tool", "install", "--tool-path", toolPath, "--add-source", packages,
                "--ignore-failed-sources", ToolId, "--version", version!);
            Assert.True(exit == 0, "dotnet tool install failed:\n" + log);
            (exit, log) = Run(Path.Combine(toolPath, "crate"), scratch, TimeSpan.FromMinutes(2), env, "info", "--model", "crate-t");
            output.WriteLine(log);
            Assert.True(exit == 0, "the installed crate failed:\n" + log);
            Assert.Contains("parameters: ", log, StringComparison.Ordinal);
        }
        finally
        {
            try { Directory.Delete(scratch, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    private sealed record Spec(string Id, string Version, string Description, (string?, string?) License, string? Readme, XElement? Repository);

    private static Spec Nuspec(string nupkg)
    {
        using var zip = ZipFile.OpenRead(nupkg);
        var entry = zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal) && !e.FullName.Contains('/'));
        using var stream = entry.Open();
        var meta = XDocument.Load(stream).Root!.Elements().Single(e => e.Name.LocalName == "metadata");
        string? Get(string name) => meta.Elements().FirstOrDefault(e => e.Name.LocalName == name)?.Value;
        var license = meta.Elements().FirstOrDefault(e => e.Name.LocalName == "license");
        return new Spec(Get("id")!, Get("version")!, Get("description") ?? "", (license?.Attribute("type")?.Value, license?.Value), Get("readme"),
            meta.Elements().FirstOrDefault(e => e.Name.LocalName == "repository"));
    }

    private static (int Exit, string Output) Dotnet(string repo, string scratch, TimeSpan limit, params string[] args) =>
        Dotnet(repo, scratch, limit, new Dictionary<string, string>(), args);

    private static (int Exit, string Output) Dotnet(string repo, string scratch, TimeSpan limit, Dictionary<string, string> env, params string[] args)
    {
        // The SDK that runs these tests (DOTNET_HOST_PATH under `dotnet test`), else dotnet on the PATH.
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
        return Run(dotnet, repo, limit, env, args);
    }

    private static (int Exit, string Output) Run(string program, string workingDirectory, TimeSpan limit, Dictionary<string, string> env, params string[] args)
    {
        var start = new ProcessStartInfo(program) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) start.ArgumentList.Add(a);
        foreach (var (k, v) in env) start.Environment[k] = v;
        // Not the test host's MSBuild settings: a clean command line, as a user types it.
        foreach (var k in new[] { "MSBuildExtensionsPath", "MSBUILD_EXE_PATH", "MSBuildSDKsPath", "DOTNET_HOST_PATH" }) start.Environment.Remove(k);
        using var p = Process.Start(start)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(limit))
        {
            p.Kill(entireProcessTree: true);
            return (-1, $"timed out after {limit}\n{stdout.Result}{stderr.Result}");
        }
        return (p.ExitCode, stdout.Result + stderr.Result);
    }
}
