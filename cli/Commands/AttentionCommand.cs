using System.CommandLine;
using System.Globalization;
using CrateIL.Cli.Images;
using CrateIL.Crate.IO;
using CrateIL.Crate.Models;
using CrateIL.Segmentation.Attention;
using CrateIL.Imaging;

namespace CrateIL.Cli.Commands;

/// <summary>
/// <c>crate attention</c>: every head's CLS→patch attention (the paper's Eq. 10) of one layer for photos, drawn as heat
/// maps and thresholded masks over each photo; CRATE (MSSA) and ViT (MHSA) checkpoints alike.
/// </summary>
internal static class AttentionCommand
{
    public static Command Create()
    {
        var checkpoint = ImageCommandOptions.CheckpointOption();
        var images = new Option<string>("--images") { Description = "Photos: a file, a directory or a glob (dir/*.jpg)", Required = true };
        var output = ImageCommandOptions.OutDirectoryOption();
        var layer = ImageCommandOptions.LayerOption();
        var heads = new Option<string?>("--heads") { Description = "Heads to show, e.g. 0,2,5 (default: all); the mean is over these" };
        var threshold = new Option<string>("--threshold") { Description = "Mask rule: dino:T (patches holding mass T, DINO) or top:P (top fraction P, CRATE App. B.3)", DefaultValueFactory = _ => "dino:0.6" };
        var size = ImageCommandOptions.SizeOption();
        var npy = new Option<bool>("--npy") { Description = "Also write each image's raw maps as <stem>.npy: [heads, h, w] float32 on the patch grid" };
        var batch = ImageCommandOptions.BatchOption(8);
        var common = new ImageCommandOptions();
        var cmd = new Command("attention", "Draw per-head and mean CLS attention maps and masks of a layer over photos")
        {
            checkpoint, images, output, layer, heads, threshold, size, npy, batch,
        };
        common.AddTo(cmd);
        cmd.SetAction(parse => CliErrors.Run(() =>
        {
            var rule = AttentionRule.Parse(parse.GetValue(threshold)!);
            int maxBatch = ImageCommandOptions.Batch(parse, batch);
            var files = ImageInputs.Expand(parse.GetValue(images)!);
            string outDir = ImageCommandOptions.OutDirectory(parse, output);
            using var dev = common.OpenDevice(parse);
            using var model = CheckpointModel.Open(parse.GetValue(checkpoint)!.FullName, dev);
            var c = model.Config;
            int l = ResolveLayer(parse.GetValue(layer), c.Depth);
            int[] selected = ParseHeads(parse.GetValue(heads), c.Heads);
            // Decode and validate every photo before anything is written.
            var prepared = ModelImages.Prepare(files, model, ImageCommandOptions.Size(parse, size));
            Directory.CreateDirectory(outDir);
            var reports = new List<ImageReport>(prepared.Count);
            int gridRows = 0, gridCols = 0;
            for (int first = 0; first < prepared.Count; first += maxBatch)
            {
                int count = Math.Min(maxBatch, prepared.Count - first);
                AttentionMaps[] maps;
                using (var input = prepared.Upload(dev, first, count))
                {
                    model.Model.Forward(input);
                    using var cls = model.Model.ClsAttention(l);
                    maps = AttentionMaps.FromBatch(cls);
                }
                for (int i = 0; i < count; i++)
                {
                    var image = prepared.Images[first + i];
                    var chosen = maps[i].SelectHeads(selected);
                    (gridRows, gridCols) = (chosen.Height, chosen.Width);
                    reports.Add(Write(outDir, image, chosen, selected, rule, l, c, parse.GetValue(npy)));
                }
            }
            if (parse.GetValue(common.Json))
            {
                ImageCommandOptions.WriteJson(new
                {
                    Checkpoint = model.Path,
                    Variant = CrateConfig.VariantName(c.Variant),
                    Device = dev.Spec.ToString(),
                    Layer = l,
                    Depth = c.Depth,
                    Heads = selected,
                    Threshold = new { Rule = rule.Kind, rule.Value },
                    Input = new { prepared.Height, prepared.Width },
                    Grid = new { Rows = gridRows, Cols = gridCols },
                    Out = outDir,
                    Images = reports,
                });
                return 0;
            }
            Console.WriteLine($"model: {c}");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"device: {dev.Spec}; layer {l} of 0..{c.Depth - 1}, heads {string.Join(",", selected)}, input {prepared.Width}×{prepared.Height} → {gridCols}×{gridRows} patches, masks {rule}"));
            foreach (var r in reports)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{r.File}: mean mask {r.MaskFraction.Mean * 100:0}% of patches → {string.Join(", ", r.Files.All.Select(Path.GetFileName))}"));
            Console.WriteLine($"written to {outDir}");
            return 0;
        }));
        return cmd;
    }

    private static ImageReport Write(string outDir, ModelImage image, AttentionMaps maps, int[] heads, AttentionRule rule, int layer, CrateConfig c, bool npy)
    {
        var mean = maps.Aggregate(HeadAggregation.Mean);
        var headMasks = rule.Masks(maps);
        var meanMask = rule.Masks(mean)[0];
        var visible = image.Visible();
        string variant = CrateConfig.VariantName(c.Variant);
        string figure = Path.Combine(outDir, image.Stem + "-attention.png");
        string meanFile = Path.Combine(outDir, image.Stem + "-mean.png");
        string maskFile = Path.Combine(outDir, image.Stem + "-mask.png");
        AttentionPictures.Figure(string.Create(CultureInfo.InvariantCulture, $"{image.Stem}: CLS attention of {variant}, layer {layer} of 0..{c.Depth - 1}"),
            visible, maps, heads, mean, meanMask, headMasks, rule).SavePng(figure);
        AttentionPictures.Mean(string.Create(CultureInfo.InvariantCulture, $"{image.Stem}: mean CLS attention of heads {string.Join(",", heads)}, layer {layer}"),
            visible, mean).SavePng(meanFile);
        ImageFile.SavePng(maskFile, AttentionPictures.MaskOverlay(visible, meanMask, mean.Width));
        string? npyFile = null;
        if (npy)
        {
            npyFile = Path.Combine(outDir, image.Stem + ".npy");
            Npy.Write(npyFile, [maps.Heads, maps.Height, maps.Width], maps.Values);
        }
        return new ImageReport(image.Path, image.Stem, image.Region,
            new OutputFiles(figure, meanFile, maskFile, npyFile),
            new MaskFractions(AttentionPictures.Fraction(meanMask), [.. headMasks.Select(AttentionPictures.Fraction)]));
    }

    /// <summary>0..depth−1, or −depth..−1 counted from the end; null is the last layer.</summary>
    internal static int ResolveLayer(int? layer, int depth)
    {
        int l = layer ?? depth - 1;
        if (l < 0) l += depth;
        if (l < 0 || l >= depth)
            throw new ArgumentException($"--layer {layer} is outside the model's layers 0..{depth - 1} (or -{depth}..-1)");
        return l;
    }

    /// <summary>"0,2,5" → those heads (each once, in the given order); null or "all" → every head.</summary>
    internal static int[] ParseHeads(string? text, int heads)
    {
        if (text is null || text.Trim() == "all") return [.. Enumerable.Range(0, heads)];
        var result = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out int h) || h >= heads)
                throw new ArgumentException($"--heads '{text}': '{part}' is not a head of 0..{heads - 1}");
            if (!result.Contains(h)) result.Add(h);
        }
        return [.. result];
    }

    private sealed record OutputFiles(string Figure, string Mean, string Mask, string? Npy)
    {
        [System.Text.Json.Serialization.JsonIgnore]
        public IEnumerable<string> All => Npy is null ? [Figure, Mean, Mask] : [Figure, Mean, Mask, Npy];
    }

    private sealed record MaskFractions(double Mean, IReadOnlyList<double> Heads);

    private sealed record ImageReport(string File, string Stem, PixelRegion Region, OutputFiles Files, MaskFractions MaskFraction);
}
