using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;

namespace CrateIL.Compute.Ops;

/// <summary>
/// Softmax cross-entropy of logits [rows, classes] against integer class labels, with PyTorch's label smoothing
/// (target q = (1−ε)·onehot(label) + ε/C) and ignore index (rows labelled <c>ignoreIndex</c> contribute neither
/// loss nor gradient, and the mean is over the remaining rows; with every row ignored the mean is NaN, as in PyTorch).
/// Labels are host integers: tensors are float32 only, and labels come from the data loader on the host anyway.
/// </summary>
public static class CrossEntropy
{
    /// <summary>PyTorch's default ignore index.</summary>
    public const int DefaultIgnoreIndex = -100;

    /// <summary>
    /// Per-row losses into <paramref name="losses"/> ([rows], optional; ignored rows get 0) and their mean over the
    /// non-ignored rows as the return value (on an ILGPU device this waits for the device).
    /// </summary>
    public static float Forward(Tensor logits, ReadOnlySpan<int> labels, Tensor? losses = null,
        float labelSmoothing = 0f, int ignoreIndex = DefaultIgnoreIndex)
    {
        const string op = "CrossEntropy";
        var (rows, classes) = RowOpChecks.RowsOf(op, nameof(logits), logits);
        if (losses is not null) RowOpChecks.VectorOf(op, nameof(losses), losses, rows, "rows", nameof(logits), logits);
        int counted = CheckLabels(op, labels, rows, classes, labelSmoothing, ignoreIndex);
        if (rows == 0) return float.NaN;
        switch (logits.Device)
        {
            case CpuDevice cpu: return CrossEntropyCpu.Forward(cpu, logits, labels, losses, rows, classes, labelSmoothing, ignoreIndex, counted);
            case IlgpuDevice gpu: return CrossEntropyIlgpu.Forward(gpu, logits, labels, losses, rows, classes, labelSmoothing, ignoreIndex, counted);
            default: throw RowOpChecks.Unsupported(op, logits.Device);
        }
    }

    /// <summary>
    /// dlogits = upstream · (softmax(logits) − q) / (non-ignored rows); ignored rows get 0. Softmax is recomputed
    /// from the logits, so nothing needs saving; <paramref name="dLogits"/> may be <paramref name="logits"/>.
    /// </summary>
    public static void Backward(Tensor logits, ReadOnlySpan<int> labels, Tensor dLogits,
        float labelSmoothing = 0f, float upstream = 1f, int ignoreIndex = DefaultIgnoreIndex)
    {
        const string op = "CrossEntropy backward";
        var (rows, classes) = RowOpChecks.RowsOf(op, nameof(logits), logits);
        RowOpChecks.SameShape(op, nameof(dLogits), dLogits, nameof(logits), logits);
        int counted = CheckLabels(op, labels, rows, classes, labelSmoothing, ignoreIndex);
        if (!float.IsFinite(upstream)) throw new ArgumentOutOfRangeException(nameof(upstream), upstream, $"{op}: upstream gradient must be finite");
        if (rows == 0) return;
        float scale = counted == 0 ? 0f : upstream / counted;
        switch (logits.Device)
        {
            case CpuDevice cpu: CrossEntropyCpu.Backward(cpu, logits, labels, dLogits, rows, classes, labelSmoothing, ignoreIndex, scale); break;
            case IlgpuDevice gpu: CrossEntropyIlgpu.Backward(gpu, logits, labels, dLogits, rows, classes, labelSmoothing, ignoreIndex, scale); break;
            default: throw RowOpChecks.Unsupported(op, logits.Device);
        }
    }

    /// <summary>Validates labels and ε; returns the number of rows that count (not ignored).</summary>
    private static int CheckLabels(string op, ReadOnlySpan<int> labels, int rows, int classes, float smoothing, int ignoreIndex)
    {
        if (labels.Length != rows)
            throw new ArgumentException($"{op}: {labels.Length} labels for {rows} rows of logits", nameof(labels));
        if (!(smoothing >= 0f && smoothing <= 1f))
            throw new ArgumentOutOfRangeException(nameof(smoothing), smoothing, $"{op}: label smoothing must be in [0, 1]");
        if (ignoreIndex >= 0 && ignoreIndex < classes)
            throw new ArgumentOutOfRangeException(nameof(ignoreIndex), ignoreIndex, $"{op}: ignore index {ignoreIndex} is a valid class of {classes}");
        int counted = 0;
        for (int r = 0; r < labels.Length; r++)
        {
            int l = labels[r];
            if (l == ignoreIndex) continue;
            if ((uint)l >= (uint)classes)
                throw new ArgumentOutOfRangeException(nameof(labels), l, $"{op}: label {l} of row {r} is outside [0, {classes}) and is not the ignore index {ignoreIndex}");
            counted++;
        }
        return counted;
    }
}
