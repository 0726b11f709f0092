using System.CommandLine;
using System.Globalization;
using CrateIL.Cli.Images;
using CrateIL.Crate.IO;
using CrateIL.Crate.Models;
using CrateIL.Imaging;
using CrateIL.Segmentation.Pca;

namespace CrateIL.Cli.Commands;

/// <summary>
/// <c>crate pca</c>: the PCA feature maps of the emergence paper (App. B.2) for a set of photos: the "key" features of
/// one layer (U*·LN(z) for CRATE, the key projection for ViT), PCA(1) over all images' patches for the foreground, then
/// PCA(3) over the foreground patches of all images, coloured as RGB.
/// </summary>
internal static class PcaCommand
{
    public static Command Create()
    {
        var checkpoint = ImageCommandOptions.CheckpointOption();
        var images = new Option<string>("--images") { Description = "Photos: a file, a directory or a glob (dir/*.jpg); the PCA is fitted over all of them together", Required = true };
        var output = ImageCommandOptions.OutDirectoryOption();
        var layer = ImageCommandOptions.LayerOption();
        var threshold = new Option<double>("--threshold") { Description = "Foreground: the per-image min–max normalised first component above this (the paper's 0.5)", DefaultValueFactory = _ => 0.5 };
        var sign = new Option<string>("--foreground") { Description = "Which side of the first component is foreground: auto (fewer border patches), positive, negative", DefaultValueFactory = _ => "auto" };
        sign.AcceptOnlyFromAmong("auto", "positive", "negative");
        var size = ImageCommandOptions.SizeOption();
        var npy = new Option<bool>("--npy") { Description = "Also write <stem>-pca.npy: [4, h, w] float32 (normalised 1st component, then the 3 foreground components; background at min − 1)" };
        var batch = ImageCommandOptions.BatchOption(8);
        var common = new ImageCommandOptions();
        var cmd = new Command("pca", "Draw the paper's PCA feature maps (App. B.2) of a layer's patch features for photos")
        {
            checkpoint, images, output, layer, threshold, sign, size, npy, batch,
        };
        common.AddTo(cmd);
        cmd.SetAction(parse => CliErrors.Run(() =>
        {
            double t = parse.GetValue(threshold);
            if (!(t is >= 0 and < 1)) throw new ArgumentException($"--threshold {t.ToString(CultureInfo.InvariantCulture)} must be in [0, 1)");
            int maxBatch = ImageCommandOptions.Batch(parse, batch);
            var files = ImageInputs.Expand(parse.GetValue(images)!);
            string outDir = ImageCommandOptions.OutDirectory(parse, output);
            using var dev = common.OpenDevice(parse);
            using var model = CheckpointModel.Open(parse.GetValue(checkpoint)!.FullName, dev);
            var c = model.Config;
            int l = AttentionCommand.ResolveLayer(parse.GetValue(layer), c.Depth);
            var prepared = ModelImages.Prepare(files, model, ImageCommandOptions.Size(parse, size));
            int gridRows = prepared.Height / c.PatchSize, gridCols = prepared.Width / c.PatchSize, n = gridRows * gridCols, inner = c.Inner;
            var features = new List<float[]>(prepared.Count);
            for (int first = 0; first < prepared.Count; first += maxBatch)
            {
                int count = Math.Min(maxBatch, prepared.Count - first);
                using var input = prepared.Upload(dev, first, count);
                model.Model.Forward(input);
                using var keys = dev.Allocate(count, n + 1, inner);
                model.Model.Keys(l, keys);
                var host = keys.ToArray();
                for (int i = 0; i < count; i++) // drop the CLS row
                    features.Add(host.AsSpan((i * (n + 1) + 1) * inner, n * inner).ToArray());
            }
            var options = new PcaFeatureMapOptions
            {
                Threshold = t,
                Sign = Enum.Parse<ForegroundSign>(parse.GetValue(sign)!, ignoreCase: true),
            };
            using var hostCpu = common.OpenHostCpu(parse, dev);
            var result = PcaFeatureMaps.Compute(features, gridRows, gridCols, inner, options, hostCpu.Cpu);
            Directory.CreateDirectory(outDir);
            string variant = CrateConfig.VariantName(c.Variant);
            string footnote = string.Create(CultureInfo.InvariantCulture,
                $"fitted over {prepared.Count} image(s); foreground: 1st component {(result.SignUsed == ForegroundSign.Negative ? "<" : ">")} {t:0.##} after min–max");
            var reports = new List<ImageReport>(prepared.Count);
            for (int i = 0; i < prepared.Count; i++)
            {
                var image = prepared.Images[i];
                var map = result.Images[i];
                var visible = image.Visible();
                string figure = Path.Combine(outDir, image.Stem + "-pca.png"), rgb = Path.Combine(outDir, image.Stem + "-pca-rgb.png");
                PcaPictures.Figure(string.Create(CultureInfo.InvariantCulture, $"{image.Stem}: PCA of {variant} layer {l} key features (App. B.2)"),
                    footnote, visible, map, result.SignUsed, gridRows, gridCols).SavePng(figure);
                var full = AttentionPictures.Full(visible);
                ImageFile.SavePng(rgb, PcaPictures.Rgb(map.Rgb, gridRows, gridCols, full.Width, full.Height));
                string? npyFile = null;
                if (parse.GetValue(npy))
                {
                    npyFile = Path.Combine(outDir, image.Stem + "-pca.npy");
                    var planes = new float[4 * n];
                    map.FirstComponent.CopyTo(planes, 0);
                    for (int p = 0; p < n; p++)
                        for (int k = 0; k < 3; k++) planes[(k + 1) * n + p] = map.Components[p * 3 + k];
                    Npy.Write(npyFile, [4, gridRows, gridCols], planes);
                }
                reports.Add(new ImageReport(image.Path, image.Stem, image.Region, new OutputFiles(figure, rgb, npyFile),
                    map.Foreground.Area / (double)n));
            }
            var explained = result.Stage2?.Variances ?? [];
            if (parse.GetValue(common.Json))
            {
                ImageCommandOptions.WriteJson(new
                {
                    Checkpoint = model.Path,
                    Variant = variant,
                    Device = dev.Spec.ToString(),
                    Layer = l,
                    Depth = c.Depth,
                    Input = new { prepared.Height, prepared.Width },
                    Grid = new { Rows = gridRows, Cols = gridCols },
                    Foreground = new { Threshold = t, Sign = result.SignUsed.ToString().ToLowerInvariant() },
                    ComponentVariances = explained,
                    Out = outDir,
                    Images = reports,
                });
                return 0;
            }
            Console.WriteLine($"model: {c}");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"device: {dev.Spec}; layer {l} of 0..{c.Depth - 1}, input {prepared.Width}×{prepared.Height} → {gridCols}×{gridRows} patches, {inner}-dim key features"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"foreground side: {result.SignUsed.ToString().ToLowerInvariant()}; foreground PCA variances {string.Join(", ", explained.Select(v => v.ToString("G3", CultureInfo.InvariantCulture)))}"));
            foreach (var r in reports)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{r.File}: foreground {r.ForegroundFraction * 100:0}% of patches → {Path.GetFileName(r.Files.Figure)}, {Path.GetFileName(r.Files.Rgb)}{(r.Files.Npy is null ? "" : ", " + Path.GetFileName(r.Files.Npy))}"));
            Console.WriteLine($"written to {outDir}");
            return 0;
        }));
        return cmd;
    }

    private sealed record OutputFiles(string Figure, string Rgb, string? Npy);

    private sealed record ImageReport(string File, string Stem, PixelRegion Region, OutputFiles Files, double ForegroundFraction);
}
