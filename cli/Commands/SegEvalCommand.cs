using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using CrateIL.Cli.Images;
using CrateIL.Segmentation.Attention;
using CrateIL.Imaging;
using CrateIL.Segmentation.MaskCut;
using CrateIL.Segmentation.Metrics;
using CrateIL.Segmentation.Rendering;
using CrateIL.Segmentation.Voc;

namespace CrateIL.Cli.Commands;

/// <summary>
/// <c>crate segeval</c>: coarse segmentation from a checkpoint's CLS attention on a VOC-layout folder.
/// <list type="bullet">
/// <item>Eq. 13–14 of the CRATE emergence paper (Appendix B.3): each head's map thresholded to its top P (default 60 %)
/// patches, upsampled (nearest) to the ground truth; per class present in an image the best head's IoU, averaged over
/// the classes (background included), then over the images; and per class, averaged over the images that contain it.</item>
/// <item>The standard confusion-matrix mIoU of the class-agnostic prediction (the model's classes are not VOC's): the
/// mean-over-heads map thresholded with DINO's mass rule (0.6) as foreground, against "any object class" as
/// foreground; IoU of background and foreground accumulated over the dataset and their mean, plus the per-image
/// foreground Jaccard (crate-reference §4, "ours").</item>
/// </list>
/// Pixels labelled 255 (void) count nowhere. Photos are prepared as the checkpoint says (its resize or centre crop and
/// normalisation) at <c>--size</c>; the ground truth is cut to the region the model saw.
/// </summary>
internal static class SegEvalCommand
{
    public static Command Create()
    {
        var checkpoint = ImageCommandOptions.CheckpointOption();
        var voc = new Option<DirectoryInfo>("--voc") { Description = "A VOC-layout folder: JPEGImages/, SegmentationClass/ (or SegmentationClassPNG/), optional ImageSets/Segmentation/<split>.txt", Required = true };
        var split = new Option<string?>("--split") { Description = "ImageSets/Segmentation/<split>.txt to use (default: val when that list exists, else every image with a class mask)" };
        var layer = new Option<string?>("--layer") { Description = "The layer whose attention is scored: an index from 0, or 'all' (default: the last layer)" };
        var size = ImageCommandOptions.SizeOption();
        var top = new Option<double>("--top") { Description = "Eq. 13 head masks: the top fraction P of each head's patches", DefaultValueFactory = _ => AttentionThreshold.PaperTopFraction };
        var mass = new Option<double>("--mass") { Description = "Confusion-matrix prediction: DINO's mass threshold on the mean-over-heads map", DefaultValueFactory = _ => AttentionThreshold.DinoMass };
        var png = new Option<FileInfo?>("--png") { Description = "Write a figure (first 12 images): ground truth, mean attention with a colour scale, the prediction" };
        var common = new ImageCommandOptions();
        var cmd = new Command("segeval", "Coarse-segmentation mIoU of a checkpoint's attention on VOC-layout data (Eq. 13–14 best head per class, and the confusion-matrix mIoU)")
            { checkpoint, voc, split, layer, size, top, mass, png, common.Device, common.Threads, common.Json };
        cmd.SetAction(parse => CliErrors.Run(() => SegmentationErrors.Run(() =>
        {
            double p = parse.GetValue(top), t = parse.GetValue(mass);
            if (!(p > 0 && p <= 1)) throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"--top {p} must be in (0, 1]"));
            if (!(t > 0 && t <= 1)) throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"--mass {t} must be in (0, 1]"));
            string root = parse.GetValue(voc)!.FullName;
            var (dataset, splitName) = OpenVoc(root, parse.GetValue(split));
            var inputSize = ImageCommandOptions.Size(parse, size);
            using var dev = common.OpenDevice(parse);
            using var model = CheckpointModel.Open(parse.GetValue(checkpoint)!.FullName, dev);
            var layers = ParseLayers(parse.GetValue(layer), model.Config.Depth);
            var report = Run(model, dataset, splitName, layers, inputSize, p, t, parse.GetValue(png)?.FullName);
            if (parse.GetValue(common.Json)) ImageCommandOptions.WriteJson(report);
            else Print(report);
            return 0;
        })));
        return cmd;
    }

    /// <summary>The dataset and the split's description: the given split, else <c>val</c> when listed, else every annotated image.</summary>
    internal static (VocDataset Dataset, string Split) OpenVoc(string root, string? split)
    {
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"--voc {root}: no such folder");
        if (split is null && File.Exists(Path.Combine(root, "ImageSets", "Segmentation", "val.txt"))) split = "val";
        var dataset = VocDataset.Open(root, split);
        if (dataset.Samples.Count == 0) throw new ArgumentException($"--voc {root}: no image has a class mask");
        return (dataset, split ?? "all (no ImageSets/Segmentation list: every image with a class mask)");
    }

    internal static int[] ParseLayers(string? text, int depth)
    {
        if (text is null) return [depth - 1];
        if (text.Equals("all", StringComparison.OrdinalIgnoreCase)) return [.. Enumerable.Range(0, depth)];
        if (int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int l) && l >= 0 && l < depth) return [l];
        throw new ArgumentException($"--layer '{text}' is not 'all' or a layer index in 0..{depth - 1}");
    }

    internal sealed record ClassScore(int Class, string Name, int Images, double? Iou);

    internal sealed record ConfusionScore(string Name, double? Iou);

    internal sealed record LayerScore(int Layer, double? HeadwiseMiou, IReadOnlyList<ClassScore> HeadwisePerClass,
        IReadOnlyList<ConfusionScore> ConfusionPerClass, double? ConfusionMiou, double? PixelAccuracy, double? Jaccard);

    internal sealed record ImageScore(string Id, int Width, int Height, int[] Classes, IReadOnlyList<double?> HeadwiseMiou, IReadOnlyList<double?> Jaccard);

    internal sealed record SegEvalReport(string Command, string Checkpoint, string Model, string Voc, string Split, int Images, int Height, int Width, int GridRows, int GridCols,
        string HeadMasks, string Prediction, bool BackgroundInEq14, double Seconds, IReadOnlyList<LayerScore> Layers, IReadOnlyList<ImageScore> PerImage, string? Png);

    private static double? Finite(double v) => double.IsFinite(v) ? Math.Round(v, 6) : null;

    internal static SegEvalReport Run(CheckpointModel model, VocDataset dataset, string splitName, int[] layers, (int Height, int Width)? size,
        double top, double mass, string? pngPath)
    {
        var clock = Stopwatch.StartNew();
        var config = ModelImages.InputConfig(model, size);
        int gh = config.GridRows, gw = config.GridCols, heads = config.Heads;
        var confusion = layers.Select(_ => new ConfusionMatrix(2)).ToArray();
        var eq14 = new LayerwiseMiou(layers.Length);
        var jaccardSum = new double[layers.Length];
        var jaccardCount = new int[layers.Length];
        var classSum = new double[layers.Length, 256];
        var classCount = new int[layers.Length, 256];
        var perImage = new List<ImageScore>();
        const int FigureRows = 12;
        var figure = pngPath is null ? null : new ImageGrid(["photo + ground truth", $"mean attention, layer {layers[^1]}", $"prediction (mass {mass:0.##})"])
        {
            Title = $"crate segeval: {Path.GetFileName(model.Path)} on {Path.GetFileName(dataset.Root.TrimEnd('/'))}",
            Footnote = "outline: ground-truth objects; heat map min → max per image",
            ColorBar = Colormap.Inferno,
            MinTileSide = 256,
        };

        foreach (var sample in dataset.Samples)
        {
            var batch = ModelImages.Prepare([sample.ImagePath], model, size, [sample.Id]);
            var image = batch.Images[0];
            var labels = sample.LoadClassMask();
            if ((labels.Width, labels.Height) != (image.Photo.Width, image.Photo.Height))
                throw new VocFormatException(sample.ClassMaskPath!, $"class mask is {labels.Width}×{labels.Height}, the photo {image.Photo.Width}×{image.Photo.Height}");
            var region = image.Region;
            var truth = Crop(labels.Labels, labels.Width, region);
            int rh = region.Height, rw = region.Width;
            var present = truth.Where(l => l != VocColormap.Ignore).Distinct().Order().Select(l => (int)l).ToArray();

            using (var input = batch.Upload(model.Model.Device)) model.Model.Forward(input);
            var imageEq14 = new List<double?>();
            var imageJaccard = new List<double?>();
            AttentionMaps? lastMaps = null;
            BinaryMask? lastPrediction = null;
            for (int li = 0; li < layers.Length; li++)
            {
                AttentionMaps maps;
                using (var attention = model.Model.ClsAttention(layers[li])) maps = AttentionMaps.FromBatch(attention)[0];
                // Eq. 13: every head's top-P mask at the ground truth's resolution.
                var headMasks = new BinaryMask[heads];
                for (int k = 0; k < heads; k++)
                    headMasks[k] = AttentionThreshold.TopFraction(maps.Head(k), gh, gw, top).ResizeNearest(rh, rw);
                imageEq14.Add(Finite(eq14.Add(li, headMasks, truth)));
                var valid = Where(truth, rh, rw, l => l != VocColormap.Ignore);
                foreach (int c in present)
                {
                    var classMask = BinaryMask.FromLabels(rh, rw, truth, (byte)c);
                    classSum[li, c] += HeadwiseMiou.BestHeadIou(headMasks, classMask, valid);
                    classCount[li, c]++;
                }
                // Confusion matrix: the mean map's mass-t mask as foreground.
                var mean = maps.Aggregate(HeadAggregation.Mean);
                var prediction = AttentionThreshold.CumulativeMass(mean.Head(0), gh, gw, mass).ResizeNearest(rh, rw);
                confusion[li].AddForeground(prediction, truth);
                double j = Jaccard.Foreground(prediction, truth);
                imageJaccard.Add(Finite(j));
                if (double.IsFinite(j)) { jaccardSum[li] += j; jaccardCount[li]++; }
                lastMaps = mean;
                lastPrediction = prediction;
            }
            perImage.Add(new ImageScore(sample.Id, image.Photo.Width, image.Photo.Height, present, imageEq14, imageJaccard));
            if (figure is not null && figure.RowCount < FigureRows)
                AddFigureRow(figure, sample.Id, image.Visible(), truth, present, lastMaps!, gh, gw, lastPrediction!);
        }

        var curve = eq14.Curve();
        var scores = new List<LayerScore>();
        for (int li = 0; li < layers.Length; li++)
        {
            var perClass = new List<ClassScore>();
            for (int c = 0; c < 255; c++)
                if (classCount[li, c] > 0)
                    perClass.Add(new ClassScore(c, ClassName(c), classCount[li, c], Finite(classSum[li, c] / classCount[li, c])));
            var cm = confusion[li];
            scores.Add(new LayerScore(layers[li], Finite(curve[li]), perClass,
                [new ConfusionScore("background", Finite(cm.Iou(0))), new ConfusionScore("foreground", Finite(cm.Iou(1)))],
                Finite(cm.MeanIou()), Finite(cm.PixelAccuracy()), Finite(jaccardCount[li] == 0 ? double.NaN : jaccardSum[li] / jaccardCount[li])));
        }
        if (figure is not null) SegmentationInputs.SavePng(pngPath!, figure.Render());
        return new SegEvalReport("segeval", model.Path, config.ToString(), dataset.Root, splitName, dataset.Samples.Count, config.ImageHeight, config.ImageWidth, gh, gw,
            string.Create(CultureInfo.InvariantCulture, $"each head's top {top:0.###} of patches (Eq. 13), best head per class"),
            string.Create(CultureInfo.InvariantCulture, $"mean over heads, DINO mass {mass:0.###}, as foreground"),
            true, Math.Round(clock.Elapsed.TotalSeconds, 2), scores, perImage, pngPath);
    }

    /// <summary>The pixels of a label map whose label satisfies <paramref name="keep"/>.</summary>
    private static BinaryMask Where(byte[] labels, int height, int width, Func<byte, bool> keep)
    {
        var mask = new BinaryMask(height, width);
        var bits = mask.Pixels;
        for (int p = 0; p < bits.Length; p++) bits[p] = keep(labels[p]) ? (byte)1 : (byte)0;
        return mask;
    }

    private static string ClassName(int c) => c < VocColormap.ClassNames.Count ? VocColormap.ClassNames[c] : string.Create(CultureInfo.InvariantCulture, $"class {c}");

    /// <summary>The labels inside <paramref name="region"/> (row-major).</summary>
    internal static byte[] Crop(byte[] labels, int width, PixelRegion region)
    {
        if (region.X == 0 && region.Y == 0 && region.Width == width && region.Height * width == labels.Length) return labels;
        var cut = new byte[region.Width * region.Height];
        for (int y = 0; y < region.Height; y++)
            labels.AsSpan((region.Y + y) * width + region.X, region.Width).CopyTo(cut.AsSpan(y * region.Width));
        return cut;
    }

    private static void AddFigureRow(ImageGrid figure, string id, RgbImage visible, byte[] truth, int[] present, AttentionMaps mean,
        int gh, int gw, BinaryMask prediction)
    {
        int h = visible.Height, w = visible.Width;
        var objects = Where(truth, h, w, l => l is not 0 and not VocColormap.Ignore);
        var classMasks = present.Where(c => c != 0).Select(c => BinaryMask.FromLabels(h, w, truth, (byte)c)).ToList();
        var names = string.Join(", ", present.Where(c => c != 0).Select(ClassName));
        var truthTile = Overlays.Masks(visible, classMasks, alpha: 0.45, outlineThickness: ImageFigures.OutlineThickness(visible));
        var heat = Overlays.Heatmap(visible, mean.Head(0), gh, gw, alpha: 0.65);
        heat = Overlays.Outline(heat, objects, Tiles.ReferenceOutlineColor, ImageFigures.OutlineThickness(visible));
        var predTile = Overlays.Mask(visible, prediction, Overlays.MaskColors[1], 0.45);
        predTile = Overlays.Outline(predTile, objects, Tiles.ReferenceOutlineColor, ImageFigures.OutlineThickness(visible));
        double j = Jaccard.Foreground(prediction, truth);
        figure.AddRow(id, new GridCell(truthTile, names), new GridCell(heat), new GridCell(predTile,
            double.IsFinite(j) ? string.Create(CultureInfo.InvariantCulture, $"foreground IoU {j:F3}") : "no foreground"));
    }

    private static void Print(SegEvalReport r)
    {
        var ci = CultureInfo.InvariantCulture;
        Console.WriteLine($"model: {r.Model}");
        Console.WriteLine(string.Create(ci, $"data: {r.Voc}, split {r.Split}: {r.Images} images at {r.Height}×{r.Width} ({r.GridRows}×{r.GridCols} patches)"));
        Console.WriteLine($"Eq. 13–14 head masks: {r.HeadMasks}; confusion matrix: {r.Prediction}");
        static string F(double? v) => v is double d ? d.ToString("F4", CultureInfo.InvariantCulture) : "n/a";
        foreach (var l in r.Layers)
        {
            Console.WriteLine(string.Create(ci,
                $"layer {l.Layer}: Eq. 14 mIoU {F(l.HeadwiseMiou)} | confusion mIoU {F(l.ConfusionMiou)} (background {F(l.ConfusionPerClass[0].Iou)}, foreground {F(l.ConfusionPerClass[1].Iou)}), pixel accuracy {F(l.PixelAccuracy)}, mean Jaccard {F(l.Jaccard)}"));
            foreach (var c in l.HeadwisePerClass)
                Console.WriteLine(string.Create(ci, $"    {c.Class,3} {c.Name,-12} {c.Images,4} image(s)  best-head IoU {F(c.Iou)}"));
        }
        if (r.Png is not null) Console.WriteLine($"figure → {r.Png}");
        Console.WriteLine(string.Create(ci, $"{r.Seconds:F1} s"));
    }
}
