using System.CommandLine;
using System.Text.Encodings.Web;
using System.Text.Json;
using CrateIL.Cli.Commands;
using CrateIL.Compute.Devices;

namespace CrateIL.Cli.Images;

/// <summary>
/// The options every image command shares — <c>--device</c>, <c>--threads</c>, <c>--seed</c>, <c>--json</c> — and
/// <c>--size</c> for the commands that may look at a larger grid than the model was trained on.
/// </summary>
internal sealed class ImageCommandOptions
{
    public Option<string?> Device { get; } = new("--device") { Description = "cpu, cuda, opencl or ilgpu-cpu[:index] (default: the best available)" };
    public Option<int?> Threads { get; } = new("--threads") { Description = "CPU worker threads (cpu device; also PCA)" };
    public Option<int> Seed { get; } = new("--seed") { Description = "Seed of generated data (eval --data shapes)", DefaultValueFactory = _ => 0 };
    public Option<bool> Json { get; } = new("--json") { Description = "Print one JSON document on stdout instead of text" };

    /// <summary>Serializer settings of every <c>--json</c> document: snake_case names, indented, non-ASCII kept readable.</summary>
    public static JsonSerializerOptions JsonOptions { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public void AddTo(Command command)
    {
        command.Options.Add(Device);
        command.Options.Add(Threads);
        command.Options.Add(Seed);
        command.Options.Add(Json);
    }

    /// <summary>The device named by <c>--device</c> with <c>--threads</c> CPU workers.</summary>
    public Device OpenDevice(ParseResult parse)
    {
        int? threads = parse.GetValue(Threads);
        if (threads is < 1) throw new ArgumentException($"--threads {threads} must be at least 1");
        return CliErrors.OpenDevice(parse.GetValue(Device), threads);
    }

    /// <summary>Worker threads for host-side numerics (PCA, MaskCut, CRF): <c>--threads</c>, or every core (as the cpu device).</summary>
    public int HostThreads(ParseResult parse) => parse.GetValue(Threads) ?? Environment.ProcessorCount;

    /// <summary>
    /// The CPU thread team for host-side numerics (PCA, MaskCut's graph, the CRF): the model's own team when the model runs
    /// on the CPU, so <c>--threads</c> means one team for everything; otherwise a team of <see cref="HostThreads"/>.
    /// </summary>
    public HostCpu OpenHostCpu(ParseResult parse, Device? modelDevice = null)
    {
        if (modelDevice is CpuDevice cpu) return new HostCpu(cpu, owned: false);
        int threads = HostThreads(parse);
        if (threads < 1) throw new ArgumentException($"--threads {threads} must be at least 1");
        return new HostCpu(CpuDevice.Create(threads), owned: true);
    }

    /// <summary>The required <c>--checkpoint</c> of the commands that run a trained model.</summary>
    public static Option<FileInfo> CheckpointOption() => new("--checkpoint")
    {
        Description = "A .safetensors model or training checkpoint (crate train or crate import)",
        Required = true,
    };

    /// <summary>The <c>--out</c> directory of the commands that draw pictures (created when missing).</summary>
    public static Option<DirectoryInfo> OutDirectoryOption() => new("--out")
    {
        Description = "Directory for the PNGs (and .npy maps); created when missing",
        Required = true,
    };

    /// <summary><c>--layer</c>: a layer index from 0, negative from the end (see <see cref="Commands.AttentionCommand.ResolveLayer"/>).</summary>
    public static Option<int?> LayerOption() => new("--layer")
    {
        Description = "Layer index from 0; negative counts from the end (default: the last layer)",
    };

    /// <summary><c>--batch</c>: images per forward pass.</summary>
    public static Option<int> BatchOption(int defaultBatch) => new("--batch")
    {
        Description = "Images per forward pass",
        DefaultValueFactory = _ => defaultBatch,
    };

    /// <summary>The parsed <c>--batch</c>, at least 1.</summary>
    public static int Batch(ParseResult parse, Option<int> option)
    {
        int batch = parse.GetValue(option);
        if (batch < 1) throw new ArgumentException($"--batch {batch} must be at least 1");
        return batch;
    }

    /// <summary>The full path of the parsed <c>--out</c> directory, refused when it names an existing file.</summary>
    public static string OutDirectory(ParseResult parse, Option<DirectoryInfo> option)
    {
        string dir = parse.GetValue(option)!.FullName;
        if (File.Exists(dir)) throw new ArgumentException($"--out '{dir}' is a file");
        return dir;
    }

    /// <summary>An optional <c>--size N|HxW</c> option: the model input size (default: the trained size).</summary>
    public static Option<string?> SizeOption() => new("--size")
    {
        Description = "Input size N or HxW, a multiple of the patch (default: the trained size; larger sizes give finer maps, positions are resampled bicubically)",
    };

    /// <summary>The parsed <c>--size</c>, or null for the trained size.</summary>
    public static (int Height, int Width)? Size(ParseResult parse, Option<string?> option) =>
        parse.GetValue(option) is string s ? ModelOptions.ParseImageSize(s, "--size") : null;

    public static void WriteJson<T>(T document) => Console.WriteLine(JsonSerializer.Serialize(document, JsonOptions));
}

/// <summary>A CPU team for host-side work; disposes it only when it was opened for the purpose (not the model's device).</summary>
internal sealed class HostCpu(CpuDevice cpu, bool owned) : IDisposable
{
    public CpuDevice Cpu { get; } = cpu;

    public void Dispose()
    {
        if (owned) Cpu.Dispose();
    }
}
