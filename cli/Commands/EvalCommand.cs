using System.CommandLine;
using System.Globalization;
using CrateIL.Cli.Images;
using CrateIL.Crate.Data;
using CrateIL.Crate.Models;

namespace CrateIL.Cli.Commands;

/// <summary>
/// <c>crate eval</c>: top-1 / top-5 and per-class accuracy of a checkpoint on a labelled set, every image prepared with
/// the checkpoint's own evaluation pipeline (resize or resize + centre crop, its normalisation).
/// </summary>
internal static class EvalCommand
{
    public static Command Create()
    {
        var checkpoint = ImageCommandOptions.CheckpointOption();
        var data = new Option<string>("--data")
        {
            Description = "imagefolder:<dir> (class folders; <dir>/val when it exists) | fashion-mnist[:<dir>] (the 10 000 test images) | shapes | emerge-shapes (a generated held-out set)",
            Required = true,
        };
        var limit = new Option<int?>("--limit") { Description = "Evaluate only the first N images" };
        var count = new Option<int>("--count") { Description = "shapes, emerge-shapes: images to generate", DefaultValueFactory = _ => 512 };
        var batch = ImageCommandOptions.BatchOption(32);
        var common = new ImageCommandOptions();
        var cmd = new Command("eval", "Measure a checkpoint's top-1, top-5 and per-class accuracy on a labelled image set") { checkpoint, data, limit, count, batch };
        common.AddTo(cmd);
        cmd.SetAction(parse => CliErrors.Run(() =>
        {
            int maxBatch = ImageCommandOptions.Batch(parse, batch);
            if (parse.GetValue(limit) is < 1) throw new ArgumentException($"--limit {parse.GetValue(limit)} must be at least 1");
            if (parse.GetValue(count) < 1) throw new ArgumentException($"--count {parse.GetValue(count)} must be at least 1");
            using var dev = common.OpenDevice(parse);
            using var model = CheckpointModel.Open(parse.GetValue(checkpoint)!.FullName, dev);
            string spec = parse.GetValue(data)!;
            var (set, labelOf) = Open(spec, model, parse.GetValue(common.Seed), parse.GetValue(count));
            int n = Math.Min(set.Count, parse.GetValue(limit) ?? int.MaxValue);
            if (n == 0) throw new ArgumentException($"--data '{spec}' has no images");
            var result = Evaluate(model, set, labelOf, n, maxBatch, parse.GetValue(common.Seed));
            if (parse.GetValue(common.Json))
            {
                ImageCommandOptions.WriteJson(new
                {
                    Checkpoint = model.Path,
                    Data = spec,
                    Device = dev.Spec.ToString(),
                    Images = n,
                    result.Top1,
                    result.Top5,
                    PerClass = result.PerClass,
                });
                return 0;
            }
            Console.WriteLine($"model: {model.Config}");
            Console.WriteLine($"device: {dev.Spec}; data {spec}: {n} images, {set.ClassCount} classes");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"top-1 {result.Top1 * 100:F2}%  top-5 {result.Top5 * 100:F2}%"));
            int width = Math.Max(5, result.PerClass.Max(c => c.Name.Length));
            Console.WriteLine($"{"class".PadRight(width)}  images  correct  accuracy");
            foreach (var c in result.PerClass)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{c.Name.PadRight(width)}  {c.Images,6}  {c.Correct,7}  {(c.Images == 0 ? "—" : (c.Accuracy * 100).ToString("F1", CultureInfo.InvariantCulture) + "%"),8}"));
            return 0;
        }));
        return cmd;
    }

    /// <summary>
    /// The evaluation set for <paramref name="spec"/>, loaded with the checkpoint's pipeline, and the map from the set's
    /// labels to the model's (by class name when the checkpoint names its classes, else the identity).
    /// </summary>
    private static (IDataset Set, int[] LabelOf) Open(string spec, CheckpointModel model, int seed, int count)
    {
        var c = model.Config;
        var pipeline = model.Input.Pipeline(c);
        IDataset set;
        if (spec is "shapes" or "emerge-shapes")
        {
            if (c.ImageHeight != c.ImageWidth) throw new ArgumentException($"--data {spec} renders square images; the model wants {c.ImageHeight}×{c.ImageWidth}");
            // Generated at the model's size, so only the normalisation applies; seed·2 + 2 is crate train's held-out stream.
            set = new ShapesInClutter(count, seed * 2L + 2, c.ImageHeight, c.PatchSize, new ImagePipeline(ImageTransform.None, model.Input.Normalization),
                spec == "emerge-shapes" ? ShapesInClutterSettings.Emerge : ShapesInClutterSettings.Default);
        }
        else if (spec.StartsWith("imagefolder:", StringComparison.Ordinal))
        {
            string root = spec["imagefolder:".Length..];
            if (!Directory.Exists(root)) throw new ArgumentException($"--data '{spec}': directory '{root}' does not exist");
            string val = Path.Combine(root, "val");
            set = new ImageFolderDataset(Directory.Exists(val) ? val : root, pipeline);
        }
        else if (spec == "fashion-mnist" || spec.StartsWith("fashion-mnist:", StringComparison.Ordinal))
        {
            string dir = spec.Contains(':') ? spec[(spec.IndexOf(':') + 1)..] : IdxDataset.DebianFashionMnistDirectory;
            set = IdxDataset.FashionMnist(dir, false, pipeline);
        }
        else throw new ArgumentException($"--data '{spec}' is not imagefolder:<dir>, fashion-mnist[:<dir>], shapes or emerge-shapes");

        var labelOf = new int[set.ClassCount];
        if (model.Input.ClassNames is { } names && set.ClassNames.Count == set.ClassCount)
        {
            for (int k = 0; k < set.ClassCount; k++)
            {
                labelOf[k] = Array.IndexOf(names, set.ClassNames[k]);
                if (labelOf[k] < 0)
                    throw new ArgumentException($"--data '{spec}': class '{set.ClassNames[k]}' is not one of the checkpoint's classes ({string.Join(", ", names)})");
            }
        }
        else
        {
            if (set.ClassCount > c.Classes) throw new ArgumentException($"--data '{spec}' has {set.ClassCount} classes; the model has {c.Classes}");
            for (int k = 0; k < labelOf.Length; k++) labelOf[k] = k;
        }
        return (set, labelOf);
    }

    private static EvalResult Evaluate(CheckpointModel model, IDataset set, int[] labelOf, int n, int maxBatch, int seed)
    {
        var c = model.Config;
        int classes = c.Classes, per = set.SampleLength;
        var images = new int[classes];
        var correct = new int[classes];
        int top1 = 0, top5 = 0;
        var buffer = new float[(long)Math.Min(maxBatch, n) * per];
        var labels = new int[Math.Min(maxBatch, n)];
        for (int first = 0; first < n; first += maxBatch)
        {
            int b = Math.Min(maxBatch, n - first);
            for (int i = 0; i < b; i++)
            {
                var random = SampleRandom.For(seed, 0, first + i);
                labels[i] = labelOf[set.Load(first + i, buffer.AsSpan(i * per, per), ref random)];
            }
            var logits = model.Model.Predict(buffer.AsSpan(0, b * per), b, set.Height, set.Width, b);
            for (int i = 0; i < b; i++)
            {
                var row = logits.AsSpan(i * classes, classes);
                int truth = labels[i];
                // Rank of the true class: how many classes score strictly higher (ties count for the true class).
                int above = 0;
                for (int j = 0; j < classes; j++) if (row[j] > row[truth]) above++;
                images[truth]++;
                if (above == 0) { top1++; correct[truth]++; }
                if (above < 5) top5++;
            }
        }
        var perClass = Enumerable.Range(0, classes).Where(k => images[k] > 0 || model.Input.ClassNames is not null)
            .Select(k => new ClassAccuracy(k, model.Input.ClassName(k), images[k], correct[k], images[k] == 0 ? 0 : (double)correct[k] / images[k]))
            .ToArray();
        return new EvalResult((double)top1 / n, (double)top5 / n, perClass);
    }

    private sealed record ClassAccuracy(int Label, string Name, int Images, int Correct, double Accuracy);

    private sealed record EvalResult(double Top1, double Top5, IReadOnlyList<ClassAccuracy> PerClass);
}
