using CrateIL.Compute.Devices;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using CrateIL.Cli.Images;
using CrateIL.Crate.Models;
using CrateIL.Segmentation.Attention;
using CrateIL.Segmentation.Coco;
using CrateIL.Imaging;
using CrateIL.Segmentation.MaskCut;
using CrateIL.Segmentation.Crf;
using CrateIL.Segmentation.Rendering;

namespace CrateIL.Cli.Commands;

/// <summary>
/// <c>crate maskcut</c>: CutLER's MaskCut pseudo-masks for photos with a CRATE checkpoint (crate-reference §5): each
/// photo resized to <c>--size</c>² (aspect ratio discarded, as CutLER's fixed_size) and normalised as the checkpoint
/// says; features = the last layer's "key" facet U·LN(z) of the patch tokens (the emergence notebook's
/// <c>get_last_key</c>, CutLER's facet k); up to <c>--n</c> normalized cuts with threshold <c>--tau</c>; with
/// <c>--crf</c> CutLER's dense CRF, fill-holes and IoU ≥ 0.5 rule on the resized image. Masks go back to the photo's
/// size and become COCO results (compressed RLE, box, area, score) plus a CutLER-style COCO dataset (images,
/// pseudo-annotations, one category "fg").
/// </summary>
internal static class MaskCutCommand
{
    public static Command Create()
    {
        var checkpoint = ImageCommandOptions.CheckpointOption();
        var images = new Option<string>("--images") { Description = "A photo, a directory of photos or a glob (dir/*.jpg)", Required = true };
        var output = new Option<FileInfo>("--out") { Description = "COCO results JSON to write (a list of {image_id, category_id, segmentation (RLE), area, bbox, score}); <name>.dataset.json beside it holds the images list and the pseudo-annotations", Required = true };
        var crf = new Option<bool>("--crf") { Description = "Refine every mask with CutLER's dense CRF (and drop those whose refined mask has IoU < 0.5 with the cut)" };
        var tau = new Option<double>("--tau") { Description = "Affinity threshold on the cosine similarity of the key features", DefaultValueFactory = _ => 0.15 };
        var n = new Option<int>("--n") { Description = "Normalized cuts (objects sought) per image", DefaultValueFactory = _ => 3 };
        var size = new Option<int?>("--size") { Description = "Side of the square the photo is resized to, a multiple of the patch size (positions are resampled); default CutLER's 480, at most 60 patches a side" };
        var png = new Option<DirectoryInfo?>("--png") { Description = "Write <stem>.png per photo: every mask in its own colour with an outline, over the photo" };
        var common = new ImageCommandOptions();
        var cmd = new Command("maskcut", "MaskCut pseudo-masks (CutLER) from a CRATE checkpoint's key features, as COCO results with optional CRF and overlays")
            { checkpoint, images, output, crf, tau, n, size, png, common.Device, common.Threads, common.Json };
        cmd.SetAction(parse => CliErrors.Run(() => SegmentationErrors.Run(() =>
        {
            // --threads drives the model and MaskCut's graph operator and the CRF: one CPU team (the model's when it runs on the CPU).
            var settings = new MaskCutSettings(parse.GetValue(tau), parse.GetValue(n), parse.GetValue(size) ?? DefaultSize, parse.GetValue(crf), common.HostThreads(parse));
            settings.Validate();
            var files = ImageInputs.Expand(parse.GetValue(images)!);
            string outPath = parse.GetValue(output)!.FullName;
            string? pngDir = parse.GetValue(png)?.FullName;
            using var dev = common.OpenDevice(parse);
            using var model = CheckpointModel.Open(parse.GetValue(checkpoint)!.FullName, dev);
            if (parse.GetValue(size) is null) settings = settings with { Size = DefaultSizeFor(model.Config.PatchSize) };
            using var host = common.OpenHostCpu(parse, dev);
            var report = Run(model, files, settings, outPath, pngDir, parse.GetValue(images)!, host.Cpu);
            if (parse.GetValue(common.Json))
                ImageCommandOptions.WriteJson(report);
            else
            {
                foreach (var img in report.PerImage)
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{img.ImageId,3} {Path.GetFileName(img.File)} {img.Width}×{img.Height}: {img.Masks.Count} mask(s){string.Concat(img.Masks.Select(m => $"  [{m.Iteration}] area {m.Area} box {Box(m.Bbox)}"))}{(img.Rejected.Count > 0 ? "  (" + string.Join(", ", img.Rejected) + ")" : "")}"));
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{report.Detections} masks on {report.Images} photos ({report.Model}, grid {report.Grid}×{report.Grid}, τ {report.Tau}, N {report.N}{(report.Crf ? ", CRF" : "")}) in {report.Seconds:F1} s → {report.Results}, {report.Dataset}{(pngDir is null ? "" : ", " + pngDir)}"));
            }
            return 0;
        })));
        return cmd;
    }

    /// <summary>CutLER's fixed_size.</summary>
    internal const int DefaultSize = 480;

    /// <summary>
    /// The default input side for a patch size: CutLER's 480, but at most 60 patches a side (CutLER's 480/8 grid).
    /// A patch-4 model at 480 would have 14 400 tokens: its attention alone is heads·N² floats (3.3 GB for 4 heads),
    /// and a run on one photo did not finish in 5 minutes on 2 cores.
    /// </summary>
    internal static int DefaultSizeFor(int patch) => Math.Min(DefaultSize, 60 * patch);

    private static string Box(double[] b) => string.Create(CultureInfo.InvariantCulture, $"[{b[0]:0.#}, {b[1]:0.#}, {b[2]:0.#}, {b[3]:0.#}]");

    internal sealed record MaskCutSettings(double Tau, int N, int Size, bool Crf, int Threads)
    {
        public void Validate()
        {
            if (!(Tau >= -1 && Tau <= 1)) throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"--tau {Tau} must be a cosine similarity in [-1, 1]"));
            if (N < 1) throw new ArgumentException($"--n {N} must be at least 1");
            if (Size < 1) throw new ArgumentException($"--size {Size} must be positive");
            if (Threads < 1) throw new ArgumentException($"--threads {Threads} must be at least 1");
        }
    }

    internal sealed record MaskReport(int Iteration, double Score, long Area, double[] Bbox, double CrfIou);

    internal sealed record ImageReport(long ImageId, string File, int Width, int Height, IReadOnlyList<MaskReport> Masks, IReadOnlyList<string> Rejected, string? Png);

    internal sealed record MaskCutReport(string Command, string Checkpoint, string Model, int Images, int Size, int Grid, double Tau, int N, bool Crf,
        string Features, int Detections, string Results, string Dataset, string? PngDir, double Seconds, IReadOnlyList<ImageReport> PerImage);

    /// <summary>The score of a mask found by cut <paramref name="iteration"/> (0-based): 1/(iteration + 1), so COCO ranks masks in MaskCut order.</summary>
    internal static double Score(int iteration) => 1.0 / (iteration + 1);

    /// <summary>Runs MaskCut on every photo and writes the results, the dataset JSON and (optionally) the overlays.</summary>
    internal static MaskCutReport Run(CheckpointModel checkpoint, IReadOnlyList<string> files, MaskCutSettings settings, string outPath, string? pngDir, string imagesSpec,
        CpuDevice cpu)
    {
        var clock = Stopwatch.StartNew();
        var model = checkpoint.Model;
        var config = ModelImages.InputConfig(checkpoint, (settings.Size, settings.Size));
        // CutLER resizes the whole photo to fixed_size² (aspect ratio discarded) whatever the checkpoint trained with.
        var input = checkpoint.Input with { Resize = InputResize.Resize };
        var pipeline = input.Pipeline(config);
        int s = settings.Size, grid = s / config.PatchSize, tokens = grid * grid + 1, inner = config.Inner, c = config.Channels;
        var stems = ImageInputs.UniqueStems(files);
        string root = Directory.Exists(imagesSpec) ? Path.GetFullPath(imagesSpec) : Path.GetDirectoryName(files[0])!;
        var cutOptions = new MaskCutOptions { Tau = settings.Tau, Objects = settings.N };
        var crfSettings = CrfSettings.CutLer;
        // One CRF at a time: every mask of every image reuses the previous one's lattice and mean-field storage.
        var crfWorkspace = new CrfWorkspace();

        var pixels = new float[c * s * s];
        var keyHost = new float[tokens * inner];
        var results = new List<CocoAnnotation>();
        var dataset = new CocoDataset { Source = "crate maskcut" };
        dataset.Categories.Add(new CocoCategory(1, "fg", "fg"));
        var perImage = new List<ImageReport>();
        var overlays = new List<(string Path, RgbImage Image)>();
        for (int i = 0; i < files.Count; i++)
        {
            long imageId = i + 1;
            var photo = ImageFile.LoadRgb(files[i]);
            ModelImages.Run(pipeline, photo, c, pixels);
            using (var batch = model.Device.FromHost(pixels, 1, c, s, s))
                model.Forward(batch);
            using (var keys = model.Device.Allocate(1, tokens, inner))
            {
                model.Keys(config.Depth - 1, keys);
                keys.CopyTo(keyHost);
            }
            // Patch tokens only (row 0 is CLS): CutLER's feats, one row per patch.
            var cut = MaskCutter.Run(keyHost.AsSpan(inner, (tokens - 1) * inner), inner, grid, grid, cutOptions, cpu);
            byte[]? resized = settings.Crf ? Denormalise(pixels, input, c, s) : null;

            var masks = new List<MaskReport>();
            var drawn = new List<BinaryMask>();
            var rejected = new List<string>();
            for (int o = 0; o < cut.Objects.Count; o++)
            {
                var obj = cut.Objects[o];
                if (obj.IsEmpty)
                {
                    rejected.Add($"cut {o}: {(obj.Rejection == MaskCutRejection.None ? "nothing left after removing earlier masks" : Describe(obj.Rejection))}");
                    continue;
                }
                var bipartition = cut.PixelMask(o, s, s);
                double crfIou = double.NaN;
                if (resized is not null)
                {
                    var refined = MaskCutRefiner.Refine(bipartition, resized, crfSettings, cpu, crfWorkspace);
                    crfIou = refined.Iou;
                    if (refined.Mask is null)
                    {
                        rejected.Add(string.Create(CultureInfo.InvariantCulture, $"cut {o}: CRF IoU {refined.Iou:F3} < 0.5"));
                        continue;
                    }
                    bipartition = refined.Mask;
                }
                var full = ToPhoto(bipartition, s, photo.Height, photo.Width);
                var rle = Rle.Encode(full);
                if (rle.Area < 1)
                {
                    rejected.Add($"cut {o}: empty at the photo's size");
                    continue;
                }
                var box = rle.ToBox();
                double score = Score(o);
                results.Add(new CocoAnnotation { ImageId = imageId, CategoryId = 1, Segmentation = new CocoRleSegmentation(rle), Area = rle.Area, Box = box, Score = score });
                dataset.Annotations.Add(new CocoAnnotation { Id = dataset.Annotations.Count + 1, ImageId = imageId, CategoryId = 1, Segmentation = new CocoRleSegmentation(rle), Area = rle.Area, Box = box });
                masks.Add(new MaskReport(o, Math.Round(score, 6), rle.Area, box.ToArray(), double.IsNaN(crfIou) ? -1 : Math.Round(crfIou, 6)));
                drawn.Add(full);
            }
            dataset.Images.Add(new CocoImage(imageId, photo.Width, photo.Height, Path.GetRelativePath(root, files[i])));
            string? pngPath = pngDir is null ? null : Path.Combine(pngDir, stems[i] + ".png");
            if (pngPath is not null) overlays.Add((pngPath, DrawMasks(photo, drawn)));
            perImage.Add(new ImageReport(imageId, files[i], photo.Width, photo.Height, masks, rejected, pngPath));
        }

        // Everything computed: write (results, dataset, overlays).
        string datasetPath = Path.Combine(Path.GetDirectoryName(outPath)!, Path.GetFileNameWithoutExtension(outPath) + ".dataset.json");
        Directory.CreateDirectory(Path.GetDirectoryName(outPath)!);
        CocoResults.Save(outPath, results);
        dataset.Save(datasetPath);
        foreach (var (path, image) in overlays) SegmentationInputs.SavePng(path, image);
        return new MaskCutReport("maskcut", checkpoint.Path, config.ToString(), files.Count, s, grid, settings.Tau, settings.N, settings.Crf,
            $"layer {config.Depth - 1} keys U·LN(z), {inner} dims", results.Count, outPath, datasetPath, pngDir, Math.Round(clock.Elapsed.TotalSeconds, 2), perImage);
    }

    private static string Describe(MaskCutRejection r) => r switch
    {
        MaskCutRejection.OverlapsPrevious => "IoU > 0.5 with the previous cut",
        MaskCutRejection.TooSmall => "≤ 1 % of the grid",
        _ => r.ToString(),
    };

    /// <summary>
    /// A mask on the s×s model input back at the photo's size: bilinear (align_corners = false) and the 0.5 level, the
    /// binary equivalent of CutLER's bicubic resize of the 0/255 mask followed by its upper/2 threshold (both put the
    /// edge where the interpolant crosses half-way).
    /// </summary>
    internal static BinaryMask ToPhoto(BinaryMask mask, int s, int height, int width)
    {
        var bits = mask.Pixels;
        var soft = new float[bits.Length];
        for (int p = 0; p < bits.Length; p++) soft[p] = bits[p] != 0 ? 1f : 0f;
        var up = Resample.Bilinear(soft, s, s, height, width);
        var full = new BinaryMask(height, width);
        var fullBits = full.Pixels;
        for (int p = 0; p < up.Length; p++) fullBits[p] = up[p] > 0.5f ? (byte)1 : (byte)0;
        return full;
    }

    /// <summary>The resized photo the model saw, as RGB8 (the CRF's image): the normalised input mapped back to 0..255.</summary>
    internal static byte[] Denormalise(ReadOnlySpan<float> pixels, ModelInput input, int channels, int s)
    {
        int n = s * s;
        var rgb = new byte[n * 3];
        for (int ch = 0; ch < 3; ch++)
        {
            int src = Math.Min(ch, channels - 1);   // a one-channel model: grey in all three
            float mean = input.Mean[src], std = input.Std[src];
            for (int p = 0; p < n; p++)
                rgb[3 * p + ch] = (byte)Math.Clamp(MathF.Round((pixels[src * n + p] * std + mean) * 255f), 0f, 255f);
        }
        return rgb;
    }

    /// <summary>Every mask over the photo: its colour at 45 % with a solid outline (visible on any photo size).</summary>
    internal static RgbImage DrawMasks(RgbImage photo, IReadOnlyList<BinaryMask> masks) =>
        Overlays.Masks(photo, masks, alpha: 0.45, outlineThickness: ImageFigures.OutlineThickness(photo));
}
