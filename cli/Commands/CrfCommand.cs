using CrateIL.Compute.Devices;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using CrateIL.Cli.Images;
using CrateIL.Segmentation.Attention;
using CrateIL.Segmentation.Crf;
using CrateIL.Imaging;
using CrateIL.Segmentation.MaskCut;
using CrateIL.Segmentation.Rendering;

namespace CrateIL.Cli.Commands;

/// <summary>
/// <c>crate crf</c>: CutLER's dense-CRF refinement (maskcut/crf.py, crate-reference §5.5) of one mask over one photo.
/// The mask m ∈ [0, 1] (binary or soft) becomes the two-label logits [1 − m, m], bilinearly resized to the photo
/// (align_corners = false), softmax, unary −log(clip(p, 1e-5, 1)); Gaussian sxy 3 w 7, bilateral sxy 50 srgb 5 w 10,
/// 10 mean-field iterations, MAP. <c>--fill-holes</c> adds maskcut.py's binary_fill_holes.
/// </summary>
internal static class CrfCommand
{
    public static Command Create()
    {
        var image = new Option<FileInfo>("--image") { Description = "The photo (PNG, JPEG, ...)", Required = true };
        var mask = new Option<FileInfo>("--mask")
        {
            Description = "The mask: an 8-bit greyscale PNG (0/255 binary or a soft probability·255; RGB: brightest channel; palette: index ∉ {0, 255} is foreground) or a float .npy [H, W] in [0, 1]; any size (resized bilinearly to the photo)",
            Required = true,
        };
        var output = new Option<FileInfo>("--output", "-o") { Description = "The refined mask, a 0/255 greyscale PNG at the photo's size", Required = true };
        var overlay = new Option<FileInfo?>("--overlay") { Description = "Also write the photo with the input mask's outline (magenta) and the refined mask (cyan fill + outline)" };
        var iterations = new Option<int>("--iterations") { Description = "Mean-field iterations (CutLER: 10)", DefaultValueFactory = _ => CrfSettings.CutLer.Iterations };
        var fillHoles = new Option<bool>("--fill-holes") { Description = "Fill holes of the refined mask (4-connectivity), as maskcut.py does after the CRF" };
        var common = new ImageCommandOptions();
        var cmd = new Command("crf", "Refine a (soft or binary) mask with CutLER's dense CRF over the photo")
            { image, mask, output, overlay, iterations, fillHoles, common.Threads, common.Json };
        cmd.SetAction(parse => CliErrors.Run(() => SegmentationErrors.Run(() =>
        {
            int iters = parse.GetValue(iterations), t = common.HostThreads(parse);
            if (iters < 0) throw new ArgumentException($"--iterations {iters} must be non-negative");
            if (t < 1) throw new ArgumentException($"--threads {t} must be at least 1");
            string imagePath = parse.GetValue(image)!.FullName, maskPath = parse.GetValue(mask)!.FullName, outPath = parse.GetValue(output)!.FullName;
            string? overlayPath = parse.GetValue(overlay)?.FullName;
            var photo = SegmentationInputs.LoadPhoto(imagePath, "--image");
            var (soft, mh, mw) = SegmentationInputs.LoadSoftMask(maskPath);

            var clock = Stopwatch.StartNew();
            var settings = CrfSettings.CutLer with { Iterations = iters };
            var probability = Resample.Bilinear(soft, mh, mw, photo.Height, photo.Width);
            using var host = common.OpenHostCpu(parse);
            var refined = Refine(probability, photo, settings, host.Cpu);
            if (parse.GetValue(fillHoles)) refined = BinaryMasks.FillHoles(refined);
            double ms = clock.Elapsed.TotalMilliseconds;

            var before = new BinaryMask(photo.Height, photo.Width);
            var beforeBits = before.Pixels;
            for (int p = 0; p < beforeBits.Length; p++) beforeBits[p] = probability[p] >= 0.5f ? (byte)1 : (byte)0;
            RgbImage? drawn = overlayPath is null ? null : DrawOverlay(photo, before, refined);
            SegmentationInputs.WriteMaskPng(outPath, refined);
            if (drawn is not null) SegmentationInputs.SavePng(overlayPath!, drawn);

            var result = new CrfResult("crf", imagePath, maskPath, outPath, overlayPath, photo.Width, photo.Height, mw, mh, iters,
                parse.GetValue(fillHoles), (int)before.Area, (int)refined.Area, Round(before.Iou(refined)), Math.Round(ms, 1));
            if (parse.GetValue(common.Json))
                ImageCommandOptions.WriteJson(result);
            else
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{photo.Width}×{photo.Height}: mask area {result.InputArea} → {result.OutputArea} px (IoU {result.Iou:F3}), {iters} iterations in {ms:F0} ms → {outPath}{(overlayPath is null ? "" : ", " + overlayPath)}"));
            return 0;
        })));
        return cmd;
    }

    internal sealed record CrfResult(string Command, string Image, string Mask, string Output, string? Overlay, int Width, int Height,
        int MaskWidth, int MaskHeight, int Iterations, bool FillHoles, int InputArea, int OutputArea, double Iou, double Milliseconds);

    private static double Round(double v) => double.IsNaN(v) ? 0 : Math.Round(v, 6);

    /// <summary>
    /// CutLER's densecrf on a foreground probability at image size: logits [1 − m, m] → softmax → clipped −log unary,
    /// the CutLER kernels, MAP (label 1 = foreground).
    /// </summary>
    internal static BinaryMask Refine(ReadOnlySpan<float> foreground, RgbImage photo, CrfSettings settings, CpuDevice? cpu)
    {
        int n = photo.Width * photo.Height;
        if (foreground.Length != n) throw new ArgumentException($"mask has {foreground.Length} pixels, the photo {n}");
        var probs = new float[2 * n];
        for (int p = 0; p < n; p++)
        {
            // softmax([1 − m, m])[1] = 1 / (1 + e^(1 − 2m))
            float fg = 1f / (1f + MathF.Exp(1f - 2f * foreground[p]));
            probs[p] = 1 - fg;
            probs[n + p] = fg;
        }
        var crf = new DenseCrf2D(photo.Width, photo.Height, 2, cpu);
        crf.SetUnaryEnergy(DenseCrf2D.UnaryFromSoftmax(probs, 2));
        crf.AddPairwiseGaussian(settings.GaussianSxy, settings.GaussianWeight);
        crf.AddPairwiseBilateral(settings.BilateralSxy, settings.BilateralSrgb, photo.Data, settings.BilateralWeight);
        var map = DenseCrf2D.Map(crf.Inference(settings.Iterations), 2);
        var refined = new BinaryMask(photo.Height, photo.Width);
        var bits = refined.Pixels;
        for (int p = 0; p < n; p++) bits[p] = map[p] == 1 ? (byte)1 : (byte)0;
        return refined;
    }

    /// <summary>The input mask's outline in magenta, the refined mask filled and outlined in cyan on top.</summary>
    internal static RgbImage DrawOverlay(RgbImage photo, BinaryMask input, BinaryMask refined)
    {
        int thickness = ImageFigures.OutlineThickness(photo);
        var colors = Overlays.MaskColors;
        var drawn = Overlays.Mask(photo, refined, colors[0], 0.45);
        drawn = Overlays.Outline(drawn, refined, colors[0], thickness);
        return Overlays.Outline(drawn, input, colors[1], thickness);
    }
}
