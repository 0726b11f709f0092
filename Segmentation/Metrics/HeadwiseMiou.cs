using CrateIL.Imaging;

namespace CrateIL.Segmentation.Metrics;

/// <summary>
/// The CRATE emergence paper's coarse-segmentation score (Appendix B.3): per image and layer,
/// Eq. 13: mIoU_m = max over heads k of |S_m ∧ A_k| / (|S_m| + |A_k| − |S_m ∧ A_k|) for each ground-truth class m,
/// Eq. 14: the mean over the M classes; then averaged over images (<see cref="LayerwiseMiou"/>).
/// Our choices where the paper is silent (documented, configurable): the classes are those present in the
/// image's label map, background (label 0) included unless <c>includeBackground</c> is false; pixels with the
/// ignore label (255) are removed from both the head masks and the class masks; a head/class pair whose union is
/// empty scores 0.
/// </summary>
public static class HeadwiseMiou
{
    public const byte IgnoreLabel = 255;

    /// <summary>
    /// Eq. 13 for one class: the best IoU over the heads' masks; pixels outside <paramref name="valid"/> are ignored
    /// (null: every pixel counts).
    /// </summary>
    public static double BestHeadIou(IReadOnlyList<BinaryMask> headMasks, BinaryMask classMask, BinaryMask? valid = null)
    {
        ArgumentNullException.ThrowIfNull(classMask);
        if (headMasks.Count == 0) throw new ArgumentException("no head masks", nameof(headMasks));
        var c = classMask.Pixels;
        var v = valid is null ? default : valid.Pixels;
        double best = 0;
        for (int k = 0; k < headMasks.Count; k++)
        {
            var mask = headMasks[k];
            if (mask.Height != classMask.Height || mask.Width != classMask.Width || (valid is not null && (valid.Height != mask.Height || valid.Width != mask.Width)))
                throw new ArgumentException($"head {k} mask is {mask.Height}×{mask.Width}, class mask {classMask.Height}×{classMask.Width}{(valid is null ? "" : $", valid {valid.Height}×{valid.Width}")}");
            var a = mask.Pixels;
            long inter = 0, sa = 0, ss = 0;
            for (int i = 0; i < a.Length; i++)
            {
                int keep = valid is null ? 1 : v[i];
                int x = a[i] & keep, s = c[i] & keep;
                sa += x;
                ss += s;
                inter += x & s;
            }
            long union = ss + sa - inter;
            double iou = union == 0 ? 0 : (double)inter / union;
            if (iou > best) best = iou;
        }
        return best;
    }

    /// <summary>
    /// Eq. 14 for one image: the mean over the classes present in <paramref name="labels"/> (same grid as the head
    /// masks, row-major; resize beforehand, nearest) of the best-head IoU. Returns NaN when no class is present.
    /// </summary>
    public static double Image(IReadOnlyList<BinaryMask> headMasks, ReadOnlySpan<byte> labels, bool includeBackground = true, byte ignoreLabel = IgnoreLabel)
    {
        if (headMasks.Count == 0) throw new ArgumentException("no head masks", nameof(headMasks));
        int height = headMasks[0].Height, width = headMasks[0].Width;
        if (labels.Length != (long)height * width)
            throw new ArgumentException($"{labels.Length} labels for {height}×{width} head masks", nameof(labels));
        var valid = new BinaryMask(height, width);
        Span<bool> present = stackalloc bool[256];
        for (int i = 0; i < labels.Length; i++)
        {
            byte l = labels[i];
            if (l == ignoreLabel) continue;
            valid.Pixels[i] = 1;
            present[l] = true;
        }
        if (!includeBackground) present[0] = false;
        var classMask = new BinaryMask(height, width);
        double sum = 0;
        int classes = 0;
        for (int c = 0; c < 256; c++)
        {
            if (!present[c]) continue;
            var cm = classMask.Pixels;
            for (int i = 0; i < labels.Length; i++) cm[i] = labels[i] == c ? (byte)1 : (byte)0;
            sum += BestHeadIou(headMasks, classMask, valid);
            classes++;
        }
        return classes == 0 ? double.NaN : sum / classes;
    }
}

/// <summary>Per-layer average of per-image scores (NaN image scores are skipped): the layer-wise mIoU curve.</summary>
public sealed class LayerwiseMiou
{
    private readonly double[] _sum;
    private readonly int[] _count;

    public LayerwiseMiou(int layers)
    {
        if (layers < 1) throw new ArgumentOutOfRangeException(nameof(layers), layers, "need at least one layer");
        _sum = new double[layers];
        _count = new int[layers];
    }

    public int Layers => _sum.Length;

    public void Add(int layer, double imageScore)
    {
        if ((uint)layer >= (uint)Layers) throw new ArgumentOutOfRangeException(nameof(layer), layer, $"layer must be in 0..{Layers - 1}");
        if (double.IsNaN(imageScore)) return;
        _sum[layer] += imageScore;
        _count[layer]++;
    }

    /// <summary>Convenience: Eq. 13–14 of one image at one layer, accumulated.</summary>
    public double Add(int layer, IReadOnlyList<BinaryMask> headMasks, ReadOnlySpan<byte> labels, bool includeBackground = true)
    {
        double s = HeadwiseMiou.Image(headMasks, labels, includeBackground);
        Add(layer, s);
        return s;
    }

    public int Count(int layer) => _count[layer];

    /// <summary>Mean score per layer (NaN for layers without images).</summary>
    public double[] Curve()
    {
        var c = new double[Layers];
        for (int l = 0; l < Layers; l++) c[l] = _count[l] == 0 ? double.NaN : _sum[l] / _count[l];
        return c;
    }
}
