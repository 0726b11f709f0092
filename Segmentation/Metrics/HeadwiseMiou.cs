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

    /// <summary>Eq. 13 for one class: the best IoU over the heads' masks (pixels where <paramref name="valid"/> is false are ignored).</summary>
    public static double BestHeadIou(IReadOnlyList<bool[]> headMasks, ReadOnlySpan<bool> classMask, ReadOnlySpan<bool> valid)
    {
        if (headMasks.Count == 0) throw new ArgumentException("no head masks", nameof(headMasks));
        double best = 0;
        for (int k = 0; k < headMasks.Count; k++)
        {
            var a = headMasks[k];
            if (a.Length != classMask.Length || (valid.Length != 0 && valid.Length != a.Length))
                throw new ArgumentException($"head {k} mask has {a.Length} entries, class mask {classMask.Length}, valid {valid.Length}");
            long inter = 0, sa = 0, ss = 0;
            for (int i = 0; i < a.Length; i++)
            {
                if (valid.Length != 0 && !valid[i]) continue;
                bool x = a[i], s = classMask[i];
                if (x) sa++;
                if (s) ss++;
                if (x & s) inter++;
            }
            long union = ss + sa - inter;
            double iou = union == 0 ? 0 : (double)inter / union;
            if (iou > best) best = iou;
        }
        return best;
    }

    /// <summary>
    /// Eq. 14 for one image: the mean over the classes present in <paramref name="labels"/> (same grid as the head
    /// masks; resize beforehand, nearest) of the best-head IoU. Returns NaN when no class is present.
    /// </summary>
    public static double Image(IReadOnlyList<bool[]> headMasks, ReadOnlySpan<byte> labels, bool includeBackground = true, byte ignoreLabel = IgnoreLabel)
    {
        int n = labels.Length;
        var valid = new bool[n];
        var present = new bool[256];
        for (int i = 0; i < n; i++)
        {
            byte l = labels[i];
            valid[i] = l != ignoreLabel;
            if (valid[i]) present[l] = true;
        }
        if (!includeBackground) present[0] = false;
        var classMask = new bool[n];
        double sum = 0;
        int classes = 0;
        for (int c = 0; c < 256; c++)
        {
            if (!present[c]) continue;
            for (int i = 0; i < n; i++) classMask[i] = labels[i] == c;
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
    public double Add(int layer, IReadOnlyList<bool[]> headMasks, ReadOnlySpan<byte> labels, bool includeBackground = true)
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
