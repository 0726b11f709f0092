using CrateIL.Compute.Devices;
using CrateIL.Imaging;
using CrateIL.Segmentation.Crf;

namespace CrateIL.Segmentation.MaskCut;

/// <summary>CRF parameters of CutLER's maskcut/crf.py (crate-reference §5.5).</summary>
public sealed record CrfSettings
{
    public int Iterations { get; init; } = 10;
    public float GaussianWeight { get; init; } = 7;
    public float GaussianSxy { get; init; } = 3;
    public float BilateralWeight { get; init; } = 10;
    public float BilateralSxy { get; init; } = 50;
    public float BilateralSrgb { get; init; } = 5;

    /// <summary>CutLER: MAX_ITER 10, POS_W 7, POS_XY_STD 3, Bi_W 10, Bi_XY_STD 50, Bi_RGB_STD 5.</summary>
    public static CrfSettings CutLer { get; } = new();
}

/// <summary>A refined object mask; <see cref="Mask"/> is null when the IoU rule rejected it.</summary>
public sealed record RefinedMask(BinaryMask? Mask, double Iou, Box? Box);

/// <summary>
/// CutLER's post-processing of one MaskCut bipartition at image resolution: dense CRF with a two-label unary
/// from softmax([1 − m, m]) (fg pixel ⇒ (0.2689, 0.7311)), clipped −log; MAP; binary_fill_holes; rejection when
/// IoU(bipartition, refined) &lt; 0.5 (an empty pair gives NaN and is kept, as in CutLER). The final bicubic
/// resize to the original image size is left to the caller.
/// </summary>
public static class MaskCutRefiner
{
    /// <param name="bipartition">Bipartition at image resolution [H, W].</param>
    /// <param name="rgb">The (resized, e.g. 480×480) RGB8 image [H, W, 3] the features were computed from.</param>
    /// <param name="cpu">Threads for the CRF; null runs on the calling thread.</param>
    /// <param name="workspace">Storage shared with the previous refinement (a CRF per mask otherwise allocates ~60 MB
    /// of fresh, page-faulted arrays at 480²); null allocates anew.</param>
    public static RefinedMask Refine(BinaryMask bipartition, ReadOnlySpan<byte> rgb, CrfSettings? settings = null, CpuDevice? cpu = null,
        CrfWorkspace? workspace = null)
    {
        ArgumentNullException.ThrowIfNull(bipartition);
        settings ??= CrfSettings.CutLer;
        int height = bipartition.Height, width = bipartition.Width, n = height * width;
        var mask = bipartition.Pixels;
        if (rgb.Length != (long)n * 3) throw new ArgumentException($"image has {rgb.Length} bytes, {height}×{width}×3 expected", nameof(rgb));
        float pFg = 1f / (1f + MathF.Exp(-1f));      // softmax([0, 1])[1]
        var probs = new float[2 * n];
        for (int p = 0; p < n; p++)
        {
            probs[p] = mask[p] != 0 ? 1 - pFg : pFg;       // label 0 = background
            probs[n + p] = mask[p] != 0 ? pFg : 1 - pFg;   // label 1 = foreground
        }
        var crf = new DenseCrf2D(width, height, 2, cpu, workspace: workspace);
        crf.SetUnaryEnergy(DenseCrf2D.UnaryFromSoftmax(probs, 2));
        crf.AddPairwiseGaussian(settings.GaussianSxy, settings.GaussianWeight);
        crf.AddPairwiseBilateral(settings.BilateralSxy, settings.BilateralSrgb, rgb, settings.BilateralWeight);
        var map = DenseCrf2D.Map(crf.Inference(settings.Iterations), 2);
        var fg = new BinaryMask(height, width);
        var f = fg.Pixels;
        for (int p = 0; p < n; p++) f[p] = map[p] == 1 ? (byte)1 : (byte)0;
        var filled = BinaryMasks.FillHoles(fg);
        double iou = bipartition.Iou(filled);
        if (iou < 0.5) return new RefinedMask(null, iou, null);
        return new RefinedMask(filled, iou, BinaryMasks.BoundingBox(filled));
    }
}
