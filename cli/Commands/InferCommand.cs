using System.CommandLine;
using System.Diagnostics;
using CrateIL.Compute.Devices;
using CrateIL.Crate.IO;
using CrateIL.Crate.Models;
using CrateIL.Crate.Training;

namespace CrateIL.Cli.Commands;

/// <summary><c>crate infer</c>: logits of a batch of normalised images with a safetensors checkpoint.</summary>
internal static class InferCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<FileInfo>("--checkpoint") { Description = "A .safetensors checkpoint with the config in its metadata (crate import)", Required = true };
        var input = new Option<FileInfo>("--input") { Description = "Images .npy [B, C, H, W] (normalised float32, NCHW)", Required = true };
        var output = new Option<FileInfo>("--output") { Description = "Logits .npy [B, classes] (float32)", Required = true };
        var device = new Option<string?>("--device") { Description = "cpu, cuda, opencl or ilgpu-cpu[:index] (default: the best available)" };
        var batch = new Option<int>("--batch") { Description = "Images per forward pass", DefaultValueFactory = _ => 32 };
        var cmd = new Command("infer", "Run a CRATE classifier on images and write the logits") { checkpoint, input, output, device, batch };
        cmd.SetAction(parse => CliErrors.Run(() =>
        {
            string modelPath = parse.GetValue(checkpoint)!.FullName, inputPath = parse.GetValue(input)!.FullName;
            string outputPath = parse.GetValue(output)!.FullName;
            var images = Npy.Read(inputPath);
            using var dev = CliErrors.OpenDevice(parse.GetValue(device));
            // A plain model file or an epoch checkpoint of `crate train` (its optimizer.* tensors are skipped).
            using var model = TrainingCheckpoint.LoadModel(modelPath, dev);
            var c = model.Config;
            if (images.Shape.Length != 4 || images.Shape[1] != c.Channels)
                throw new NpyFormatException(inputPath, $"images have shape [{string.Join(", ", images.Shape)}]; expected [B, {c.Channels}, H, W]");
            int count = images.Shape[0], height = images.Shape[2], width = images.Shape[3];
            if (count < 1) throw new NpyFormatException(inputPath, "the image batch is empty");
            if (height % c.PatchSize != 0 || width % c.PatchSize != 0 || height < c.PatchSize || width < c.PatchSize)
                throw new NpyFormatException(inputPath, $"image size {height}×{width} is not a multiple of the patch size {c.PatchSize}");
            var clock = Stopwatch.StartNew();
            var logits = model.Predict(images.Data, count, height, width, Math.Max(1, parse.GetValue(batch)));
            clock.Stop();
            Npy.Write(outputPath, [count, c.Classes], logits);
            Console.WriteLine($"model: {c}");
            Console.WriteLine($"device: {dev.Spec}");
            if (height != c.ImageHeight || width != c.ImageWidth)
                Console.WriteLine($"note: {height}×{width} differs from the trained {c.ImageHeight}×{c.ImageWidth}; positions were resampled bicubically");
            Console.WriteLine($"{count} images in {clock.Elapsed.TotalMilliseconds:F1} ms; logits [{count}, {c.Classes}] → {outputPath}");
            return 0;
        }));
        return cmd;
    }
}
