using CrateIL.Imaging;

namespace CrateIL.Segmentation.Metrics;

/// <summary>
/// Dataset-level semantic-segmentation confusion matrix (rows = ground truth, columns = prediction) with an
/// ignore label (255 for VOC): ignored pixels count nowhere. IoU_c = TP/(TP + FP + FN); mIoU is the mean over
/// classes whose union is non-empty (classes never seen in ground truth nor prediction are skipped, as the
/// usual nan-mean).
/// </summary>
public sealed class ConfusionMatrix
{
    private readonly long[] _counts;

    public ConfusionMatrix(int classes, int ignoreLabel = 255)
    {
        if (classes < 1 || classes > 256) throw new ArgumentOutOfRangeException(nameof(classes), classes, "classes must be in 1..256");
        Classes = classes;
        IgnoreLabel = ignoreLabel;
        _counts = new long[classes * classes];
    }

    public int Classes { get; }
    public int IgnoreLabel { get; }

    /// <summary>Pixels counted so far.</summary>
    public long Total { get; private set; }

    public long this[int groundTruth, int predicted] => _counts[groundTruth * Classes + predicted];

    /// <summary>Adds one image (prediction and ground truth of the same size; ground truth may hold the ignore label).</summary>
    public void Add(ReadOnlySpan<byte> predicted, ReadOnlySpan<byte> groundTruth)
    {
        if (predicted.Length != groundTruth.Length) throw new ArgumentException($"prediction has {predicted.Length} pixels, ground truth {groundTruth.Length}");
        for (int i = 0; i < predicted.Length; i++)
        {
            int g = groundTruth[i];
            if (g == IgnoreLabel) continue;
            int p = predicted[i];
            if (g >= Classes) throw new ArgumentException($"ground-truth label {g} at pixel {i} is outside 0..{Classes - 1} (and not the ignore label {IgnoreLabel})", nameof(groundTruth));
            if (p >= Classes) throw new ArgumentException($"predicted label {p} at pixel {i} is outside 0..{Classes - 1}", nameof(predicted));
            _counts[g * Classes + p]++;
            Total++;
        }
    }

    /// <summary>Adds a binary foreground prediction against a label map (row-major, same size) where any label 1..254 is foreground.</summary>
    public void AddForeground(BinaryMask predicted, ReadOnlySpan<byte> groundTruth)
    {
        ArgumentNullException.ThrowIfNull(predicted);
        if (Classes != 2) throw new InvalidOperationException("foreground accumulation needs a 2-class matrix");
        var p = predicted.Pixels;
        if (p.Length != groundTruth.Length) throw new ArgumentException($"prediction has {p.Length} pixels, ground truth {groundTruth.Length}");
        for (int i = 0; i < p.Length; i++)
        {
            int g = groundTruth[i];
            if (g == IgnoreLabel) continue;
            _counts[(g != 0 ? 1 : 0) * 2 + p[i]]++;
            Total++;
        }
    }

    /// <summary>IoU of class c (NaN when the class appears in neither ground truth nor prediction).</summary>
    public double Iou(int c)
    {
        long tp = this[c, c], fp = 0, fn = 0;
        for (int k = 0; k < Classes; k++)
        {
            if (k == c) continue;
            fp += this[k, c];
            fn += this[c, k];
        }
        long union = tp + fp + fn;
        return union == 0 ? double.NaN : (double)tp / union;
    }

    public double MeanIou()
    {
        double s = 0;
        int n = 0;
        for (int c = 0; c < Classes; c++)
        {
            double iou = Iou(c);
            if (double.IsNaN(iou)) continue;
            s += iou;
            n++;
        }
        return n == 0 ? double.NaN : s / n;
    }

    public double PixelAccuracy()
    {
        long correct = 0;
        for (int c = 0; c < Classes; c++) correct += this[c, c];
        return Total == 0 ? double.NaN : (double)correct / Total;
    }
}

/// <summary>Per-image foreground Jaccard (DINO-style): IoU of a binary prediction with "any label 1..254", ignore excluded.</summary>
public static class Jaccard
{
    /// <summary>Returns NaN when both prediction and ground-truth foreground are empty (over non-ignored pixels).</summary>
    public static double Foreground(BinaryMask predicted, ReadOnlySpan<byte> groundTruth, byte ignoreLabel = 255)
    {
        ArgumentNullException.ThrowIfNull(predicted);
        var pixels = predicted.Pixels;
        if (pixels.Length != groundTruth.Length) throw new ArgumentException($"prediction has {pixels.Length} pixels, ground truth {groundTruth.Length}");
        long inter = 0, union = 0;
        for (int i = 0; i < pixels.Length; i++)
        {
            byte g = groundTruth[i];
            if (g == ignoreLabel) continue;
            int gt = g != 0 ? 1 : 0, p = pixels[i];
            inter += gt & p;
            union += gt | p;
        }
        return union == 0 ? double.NaN : (double)inter / union;
    }
}
