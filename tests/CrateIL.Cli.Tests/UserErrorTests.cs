using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;
using CrateIL.Compute.Devices;
using CrateIL.Crate.Data;
using Xunit;

namespace CrateIL.Cli.Tests;

/// <summary>
/// Every mistake a user can make reaches them as one line naming the option or file and the problem, exit code 2: no
/// stack trace, no .NET "(Parameter 'name')", no record printed as <c>Box { X0 = 2, ... }</c>.
/// </summary>
public partial class UserErrorTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "crateil-errors-" + Guid.NewGuid().ToString("N"));

    public UserErrorTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
        GC.SuppressFinalize(this);
    }

    [GeneratedRegex(@"\b[A-Z]\w* \{ \w+ = ")]
    private static partial Regex RecordText();

    /// <summary>Runs crate and checks the one-line contract; returns the line.</summary>
    private static string FailsWithOneLine(string[] args, string names, int exitCode = 2)
    {
        var (exit, _, stderr) = CliRunner.Run(args);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"crate {string.Join(' ', args)}: expected one stderr line, got:\n{stderr}");
        string line = lines[0];
        Assert.Equal(exitCode, exit);
        Assert.StartsWith("error: ", line, StringComparison.Ordinal);
        Assert.Contains(names, line, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("(Parameter", line, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", line, StringComparison.Ordinal);
        Assert.False(RecordText().IsMatch(line), $"a record's ToString() in: {line}");
        return line;
    }

    /// <summary>A mistyped value of a nested command points at that command's help by its whole path.</summary>
    [Theory]
    [InlineData("bench model --frozen maybe", "(see 'crate bench model --help')")]
    [InlineData("infer --bogus", "(see 'crate infer --help')")]
    public void Mistyped_command_line_names_the_whole_command(string args, string hint) =>
        FailsWithOneLine(args.Split(' '), hint);

    private string Out => Path.Combine(_dir, "out");

    private string[] Train(string data) =>
        ["train", "--data", data, "--out", Out, "--epochs", "1", "--batch", "2", "--model", "ci", "--threads", "1", "--workers", "0"];

    // ---- devices ------------------------------------------------------------------------------------------------

    private static void SkipIfUsable(DeviceKind kind)
    {
        var found = DeviceRegistry.List().FirstOrDefault(d => d.Kind == kind && d.Index == 0);
        Skip.If(found is { Usable: true }, $"{found?.Spec} is usable on this machine, so asking for it is no error here");
    }

    [SkippableTheory]
    [InlineData("train")]
    [InlineData("selftest")]
    [InlineData("bench mssa")]
    [InlineData("bench model")]
    [InlineData("emerge")]
    public void Cuda_without_a_gpu_names_the_option(string command)
    {
        SkipIfUsable(DeviceKind.Cuda);
        string[] args = [.. command.Split(' '), "--device", "cuda", .. command == "train" || command == "emerge" ? new[] { "--out", Out } : []];
        FailsWithOneLine(args, "--device cuda: No device 'cuda'");
        Assert.False(Directory.Exists(Out));
    }

    [SkippableFact]
    public void Cuda_from_the_environment_names_the_variable()
    {
        SkipIfUsable(DeviceKind.Cuda);
        string? before = Environment.GetEnvironmentVariable(DeviceRegistry.DeviceVariable);
        Environment.SetEnvironmentVariable(DeviceRegistry.DeviceVariable, "cuda");
        try
        {
            FailsWithOneLine(["train", "--out", Out, "--epochs", "1"], "CRATEIL_DEVICE=cuda: No device 'cuda'");
            FailsWithOneLine(["devices"], "CRATEIL_DEVICE=cuda");
        }
        finally
        {
            Environment.SetEnvironmentVariable(DeviceRegistry.DeviceVariable, before);
        }
    }

    [SkippableFact]
    public void Rejected_opencl_device_says_why()
    {
        var cl = DeviceRegistry.List().FirstOrDefault(d => d.Kind == DeviceKind.OpenCL && d.Index == 0);
        Skip.If(cl is null, "no OpenCL platform on this machine");
        Skip.If(cl.Usable, $"{cl.Name} is usable here (a GPU, or PoCL allowed by CRATEIL_OPENCL_ALLOW_POCL)");
        string line = FailsWithOneLine(["bench", "gemm", "--device", "opencl", "--m", "8", "--n", "8", "--k", "8"], "--device opencl: ");
        Assert.Contains("rejected", line, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("train")]
    [InlineData("infer")]
    [InlineData("bench gemm")]
    [InlineData("bench ista")]
    [InlineData("selftest")]
    public void Unknown_device_names_the_option(string command)
    {
        string[] args = [.. command.Split(' '), "--device", "bogus"];
        if (command == "train") args = [.. args, "--out", Out];
        if (command == "infer")
        {
            // infer reads its input first: give it real files so the device is what fails.
            string npy = Path.Combine(_dir, "x.npy");
            CrateIL.Crate.IO.Npy.Write(npy, [1, 3, 32, 32], new float[3 * 32 * 32]);
            args = [.. args, "--checkpoint", Path.Combine(_dir, "none.safetensors"), "--input", npy, "--output", Path.Combine(_dir, "y.npy")];
        }
        FailsWithOneLine(args, "--device bogus: Unknown device 'bogus'");
    }

    // ---- image folders ------------------------------------------------------------------------------------------

    /// <summary>train/ and val/ with classes a and b, three 32×32 PNGs each.</summary>
    private string ImageFolder()
    {
        string root = Path.Combine(_dir, "images");
        byte[] png = Png(32, 32);
        foreach (var split in new[] { "train", "val" })
            foreach (var cls in new[] { "a", "b" })
            {
                Directory.CreateDirectory(Path.Combine(root, split, cls));
                for (int i = 0; i < 3; i++) File.WriteAllBytes(Path.Combine(root, split, cls, $"{i}.png"), png);
            }
        return root;
    }

    [Fact]
    public void Missing_dataset_folder_is_named()
    {
        string missing = Path.Combine(_dir, "no-such-folder");
        FailsWithOneLine(Train("imagefolder:" + missing), missing);
        FailsWithOneLine(Train("fashion-mnist:" + missing), missing);
    }

    [Fact]
    public void Empty_class_folder_is_named()
    {
        string root = ImageFolder();
        foreach (var f in Directory.GetFiles(Path.Combine(root, "train", "b"))) File.Delete(f);
        FailsWithOneLine(Train("imagefolder:" + root), Path.Combine(root, "train", "b"));
    }

    [Theory]
    [InlineData("zero-byte")]
    [InlineData("truncated")]
    [InlineData("not-an-image")]
    public void Bad_image_in_a_folder_is_named(string damage)
    {
        string root = ImageFolder();
        string victim = Path.Combine(root, "train", "a", "1.png");
        byte[] png = File.ReadAllBytes(victim);
        File.WriteAllBytes(victim, damage switch
        {
            "zero-byte" => [],
            "truncated" => png[..(png.Length / 2)],
            _ => Encoding.ASCII.GetBytes("this is a text file with a .png name\n"),
        });
        FailsWithOneLine(Train("imagefolder:" + root), victim);
    }

    // ---- Fashion-MNIST ------------------------------------------------------------------------------------------

    private string FashionMnist()
    {
        string root = Path.Combine(_dir, "fashion");
        Directory.CreateDirectory(root);
        foreach (var (prefix, n) in new[] { ("train", 8), ("t10k", 4) })
        {
            IdxFile.Write(Path.Combine(root, $"{prefix}-images-idx3-ubyte.gz"), new IdxArray([n, 28, 28], new byte[n * 28 * 28]), gzip: true);
            IdxFile.Write(Path.Combine(root, $"{prefix}-labels-idx1-ubyte.gz"), new IdxArray([n], new byte[n]), gzip: true);
        }
        return root;
    }

    [Theory]
    [InlineData("missing")]
    [InlineData("zero-byte")]
    [InlineData("truncated")]
    [InlineData("truncated-inside-gzip")]
    public void Bad_fashion_mnist_file_is_named(string damage)
    {
        string root = FashionMnist();
        string victim = Path.Combine(root, "train-images-idx3-ubyte.gz");
        byte[] gz = File.ReadAllBytes(victim);
        switch (damage)
        {
            case "missing": File.Delete(victim); break;
            case "zero-byte": File.WriteAllBytes(victim, []); break;
            case "truncated": File.WriteAllBytes(victim, gz[..(gz.Length / 2)]); break;
            default:
                // A complete gzip member whose idx content stops short of what the header declares.
                byte[] raw = IdxFile.ToBytes(new IdxArray([8, 28, 28], new byte[8 * 28 * 28]));
                File.WriteAllBytes(victim, Gzip(raw[..100]));
                break;
        }
        FailsWithOneLine(Train("fashion-mnist:" + root), Path.Combine(root, "train-images-idx3-ubyte"));
    }

    // ---- COCO ---------------------------------------------------------------------------------------------------

    [Theory]
    [InlineData("invalid-utf8", "invalid UTF-8")]
    [InlineData("missing", "")]
    [InlineData("not-json", "invalid JSON")]
    [InlineData("wrong-type", "images[0].width")]
    public void Bad_coco_ground_truth_is_named(string damage, string problem)
    {
        string gt = Path.Combine(_dir, "gt.json"), dt = Path.Combine(_dir, "dt.json");
        byte[] good = Encoding.UTF8.GetBytes("""{"images": [{"id": 1, "width": 4, "height": 4, "file_name": "a?.jpg"}], "annotations": [], "categories": [{"id": 1, "name": "x"}]}""");
        File.WriteAllText(dt, "[]");
        switch (damage)
        {
            case "invalid-utf8":
                good[Array.IndexOf(good, (byte)'?')] = 0xC3;
                File.WriteAllBytes(gt, good);
                break;
            case "not-json": File.WriteAllBytes(gt, good[..40]); break;
            case "wrong-type": File.WriteAllText(gt, Encoding.UTF8.GetString(good).Replace("\"width\": 4", "\"width\": \"4\"", StringComparison.Ordinal)); break;
        }
        string line = FailsWithOneLine(["cocoeval", "--gt", gt, "--dt", dt], gt);
        Assert.Contains(problem, line, StringComparison.Ordinal);
    }

    // ---- helpers ------------------------------------------------------------------------------------------------

    private static byte[] Gzip(byte[] raw)
    {
        using var output = new MemoryStream();
        using (var gz = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true)) gz.Write(raw);
        return output.ToArray();
    }

    /// <summary>A valid RGB PNG with a gradient, written here so the test needs no image library.</summary>
    private static byte[] Png(int width, int height)
    {
        var scanlines = new byte[height * (1 + 3 * width)];
        for (int y = 0, o = 0; y < height; y++)
        {
            scanlines[o++] = 0; // filter: none
            for (int x = 0; x < width; x++) { scanlines[o++] = (byte)(8 * x); scanlines[o++] = (byte)(8 * y); scanlines[o++] = 128; }
        }
        using var zlib = new MemoryStream();
        using (var z = new ZLibStream(zlib, CompressionLevel.Fastest, leaveOpen: true)) z.Write(scanlines);
        var header = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, width);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), height);
        header[8] = 8; // bit depth
        header[9] = 2; // colour type: RGB
        using var png = new MemoryStream();
        png.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        Chunk(png, "IHDR", header);
        Chunk(png, "IDAT", zlib.ToArray());
        Chunk(png, "IEND", []);
        return png.ToArray();
    }

    private static void Chunk(Stream s, string type, byte[] data)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, data.Length);
        s.Write(word);
        byte[] typeAndData = [.. Encoding.ASCII.GetBytes(type), .. data];
        s.Write(typeAndData);
        BinaryPrimitives.WriteUInt32BigEndian(word, Crc32(typeAndData));
        s.Write(word);
    }

    private static uint Crc32(ReadOnlySpan<byte> bytes)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in bytes)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? 0xEDB88320 ^ (crc >> 1) : crc >> 1;
        }
        return ~crc;
    }
}
