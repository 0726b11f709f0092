using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using CrateIL.Cli.Images;
using CrateIL.Compute.Devices;
using CrateIL.Crate.IO;
using CrateIL.Crate.Models;
using CrateIL.Crate.Training;

namespace CrateIL.Cli.Commands;

/// <summary>
/// <c>crate infer</c>: class probabilities for photos (<c>--images</c>: decoded and prepared as the checkpoint's model
/// was evaluated), or the logits of a batch of already-normalised images (<c>--input</c>/<c>--output</c> .npy).
/// </summary>
internal static class InferCommand
{
    public static Command Create()
    {
        var checkpoint = ImageCommandOptions.CheckpointOption();
        var images = new Option<string?>("--images") { Description = "Photos: a file, a directory or a glob (dir/*.jpg); JPEG, PNG, BMP, WebP, …" };
        var top = new Option<int>("--top") { Description = "--images: the most probable classes shown per image", DefaultValueFactory = _ => 5 };
        var input = new Option<FileInfo?>("--input") { Description = "Instead of --images: images .npy [B, C, H, W] (normalised float32, NCHW)" };
        var output = new Option<FileInfo?>("--output") { Description = "With --input: logits .npy [B, classes] (float32)" };
        var batch = ImageCommandOptions.BatchOption(32);
        var common = new ImageCommandOptions();
        var cmd = new Command("infer", "Classify photos with a CRATE checkpoint (or write the logits of an .npy batch)") { checkpoint, images, top, input, output, batch };
        common.AddTo(cmd);
        cmd.SetAction(parse => CliErrors.Run(() =>
        {
            string modelPath = parse.GetValue(checkpoint)!.FullName;
            int maxBatch = ImageCommandOptions.Batch(parse, batch);
            bool json = parse.GetValue(common.Json);
            if (parse.GetValue(images) is string spec)
            {
                if (parse.GetValue(input) is not null || parse.GetValue(output) is not null)
                    throw new ArgumentException("--images classifies photos; --input/--output are for an .npy batch: give one or the other");
                int k = parse.GetValue(top);
                if (k < 1) throw new ArgumentException($"--top {k} must be at least 1");
                var files = ImageInputs.Expand(spec);
                using var dev = common.OpenDevice(parse);
                using var model = CheckpointModel.Open(modelPath, dev);
                return Photos(model, files, Math.Min(k, model.Config.Classes), maxBatch, json);
            }
            var inputFile = parse.GetValue(input) ?? throw new ArgumentException("give --images <file|dir|glob>, or --input <images.npy> with --output <logits.npy>");
            var outputFile = parse.GetValue(output) ?? throw new ArgumentException("--input needs --output <logits.npy>");
            using var device = common.OpenDevice(parse);
            return Logits(modelPath, inputFile.FullName, outputFile.FullName, device, maxBatch, json);
        }));
        return cmd;
    }

    private static int Photos(CheckpointModel model, IReadOnlyList<string> files, int k, int maxBatch, bool json)
    {
        var c = model.Config;
        var prepared = ModelImages.Prepare(files, model);
        var logits = model.Model.Predict(prepared.Pixels, prepared.Count, prepared.Height, prepared.Width, maxBatch);
        var results = new List<ImageResult>(prepared.Count);
        for (int i = 0; i < prepared.Count; i++)
        {
            var p = Softmax(logits.AsSpan(i * c.Classes, c.Classes));
            var order = Enumerable.Range(0, c.Classes).OrderByDescending(j => p[j]).ThenBy(j => j).Take(k);
            results.Add(new ImageResult(prepared.Images[i].Path, [.. order.Select(j => new ClassProbability(j, model.Input.ClassName(j), p[j]))]));
        }
        if (json)
        {
            ImageCommandOptions.WriteJson(new
            {
                Checkpoint = model.Path,
                Device = model.Model.Device.Spec.ToString(),
                Classes = c.Classes,
                ClassNamesKnown = model.Input.ClassNames is not null,
                Input = new { Resize = model.Input.Resize.ToString(), Height = prepared.Height, Width = prepared.Width },
                Images = results,
            });
            return 0;
        }
        Console.WriteLine($"model: {c}");
        Console.WriteLine($"device: {model.Model.Device.Spec}; input {prepared.Width}×{prepared.Height} ({Describe(model.Input)})");
        if (model.Input.ClassNames is null) Console.WriteLine("note: the checkpoint names no classes; showing class indices");
        foreach (var r in results)
        {
            Console.WriteLine(r.File);
            foreach (var t in r.Top)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {t.Probability * 100,6:F2}%  {t.Name}"));
        }
        return 0;
    }

    private static string Describe(ModelInput input) => input.Resize == InputResize.ResizeCenterCrop
        ? string.Create(CultureInfo.InvariantCulture, $"resize + centre crop {input.CropFraction:0.###}")
        : "resize";

    private static double[] Softmax(ReadOnlySpan<float> logits)
    {
        double max = double.NegativeInfinity;
        foreach (float v in logits) max = Math.Max(max, v);
        var p = new double[logits.Length];
        double sum = 0;
        for (int i = 0; i < p.Length; i++) sum += p[i] = Math.Exp(logits[i] - max);
        for (int i = 0; i < p.Length; i++) p[i] /= sum;
        return p;
    }

    private static int Logits(string modelPath, string inputPath, string outputPath, Device dev, int maxBatch, bool json)
    {
        var images = Npy.Read(inputPath);
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
        var logits = model.Predict(images.Data, count, height, width, maxBatch);
        clock.Stop();
        Npy.Write(outputPath, [count, c.Classes], logits);
        if (json)
        {
            ImageCommandOptions.WriteJson(new { Checkpoint = modelPath, Device = dev.Spec.ToString(), Input = inputPath, Output = outputPath, Shape = new[] { count, c.Classes } });
            return 0;
        }
        Console.WriteLine($"model: {c}");
        Console.WriteLine($"device: {dev.Spec}");
        if (height != c.ImageHeight || width != c.ImageWidth)
            Console.WriteLine($"note: {height}×{width} differs from the trained {c.ImageHeight}×{c.ImageWidth}; positions were resampled bicubically");
        Console.WriteLine($"{count} images in {clock.Elapsed.TotalMilliseconds:F1} ms; logits [{count}, {c.Classes}] → {outputPath}");
        return 0;
    }

    private sealed record ClassProbability(int Label, string Name, double Probability);

    private sealed record ImageResult(string File, IReadOnlyList<ClassProbability> Top);
}
