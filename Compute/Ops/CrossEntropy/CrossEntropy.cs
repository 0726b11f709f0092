using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;

namespace CrateIL.Compute.Ops;

/// <summary>
/// Softmax cross-entropy of logits [rows, classes] against integer class labels, with PyTorch's label smoothing
/// (target q = (1−ε)·onehot(label) + ε/C) and ignore index (rows labelled <c>ignoreIndex</c> contribute neither
/// loss nor gradient, and the mean is over the remaining rows; with every row ignored the mean is NaN, as in PyTorch).
/// Labels are host integers (tensors are float32 only, and labels come from the data loader on the host anyway);
/// <see cref="CrossEntropyTargets"/> copies a batch of them to the device once for both passes, and the forward
/// overload that takes it leaves the mean loss on the device, so a training step needs no host round trip for its loss.
/// </summary>
public static class CrossEntropy
{
    /// <summary>PyTorch's default ignore index.</summary>
    public const int DefaultIgnoreIndex = -100;

    /// <summary>
    /// Per-row losses into <paramref name="losses"/> ([rows], optional; ignored rows get 0) and their mean over the
    /// non-ignored rows as the return value (waits for the device: the mean is read back; see the overload with
    /// <see cref="CrossEntropyTargets"/> to leave it there).
    /// </summary>
    public static float Forward(Tensor logits, ReadOnlySpan<int> labels, Tensor? losses = null,
        float labelSmoothing = 0f, int ignoreIndex = DefaultIgnoreIndex)
    {
        const string op = "CrossEntropy";
        var (rows, classes) = RowOpChecks.RowsOf(op, nameof(logits), logits);
        if (labels.Length != rows)
            throw new ArgumentException($"{op}: {labels.Length} labels for {rows} rows of logits", nameof(labels));
        using var targets = new CrossEntropyTargets(logits.Device);
        targets.Set(labels, classes, ignoreIndex);
        using var mean = logits.Device.Allocate(1);
        Forward(logits, targets, mean, losses, labelSmoothing);
        Span<float> value = stackalloc float[1];
        mean.CopyTo(value);
        return value[0];
    }

    /// <summary>
    /// The forward pass that stays on the device: per-row losses into <paramref name="losses"/> ([rows], optional; ignored
    /// rows get 0; without it the targets' own buffer is used) and their mean over the non-ignored rows into the
    /// one-element <paramref name="meanLoss"/> (NaN when every row is ignored), without waiting for the device. The
    /// labels are the ones <paramref name="targets"/> already holds on the device.
    /// </summary>
    public static void Forward(Tensor logits, CrossEntropyTargets targets, Tensor meanLoss, Tensor? losses = null, float labelSmoothing = 0f)
    {
        const string op = "CrossEntropy";
        var (rows, classes) = RowOpChecks.RowsOf(op, nameof(logits), logits);
        CheckTargets(op, targets, logits, rows, classes);
        RowOpChecks.VectorOf(op, nameof(meanLoss), meanLoss, 1, "a single value", nameof(logits), logits);
        if (losses is not null) RowOpChecks.VectorOf(op, nameof(losses), losses, rows, "rows", nameof(logits), logits);
        CheckSmoothing(op, labelSmoothing);
        if (rows == 0)
        {
            meanLoss.Fill(float.NaN);
            return;
        }
        var output = losses ?? targets.RowLosses;
        switch (logits.Device)
        {
            case CpuDevice cpu: CrossEntropyCpu.Forward(cpu, logits, targets.Labels, output, meanLoss, rows, classes, labelSmoothing, targets.IgnoreIndex, targets.Counted); break;
            case IlgpuDevice gpu: CrossEntropyIlgpu.Forward(gpu, logits, targets.Codes, output, meanLoss, rows, classes, labelSmoothing, targets.Counted); break;
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
        if (labels.Length != rows)
            throw new ArgumentException($"{op}: {labels.Length} labels for {rows} rows of logits", nameof(labels));
        using var targets = new CrossEntropyTargets(logits.Device);
        targets.Set(labels, classes, ignoreIndex);
        Backward(logits, targets, dLogits, labelSmoothing, upstream);
    }

    /// <summary>The backward pass against labels already on the device (<see cref="CrossEntropyTargets"/>); as the overload with host labels.</summary>
    public static void Backward(Tensor logits, CrossEntropyTargets targets, Tensor dLogits, float labelSmoothing = 0f, float upstream = 1f)
    {
        const string op = "CrossEntropy backward";
        var (rows, classes) = RowOpChecks.RowsOf(op, nameof(logits), logits);
        RowOpChecks.SameShape(op, nameof(dLogits), dLogits, nameof(logits), logits);
        CheckTargets(op, targets, logits, rows, classes);
        CheckSmoothing(op, labelSmoothing);
        if (!float.IsFinite(upstream)) throw new ArgumentOutOfRangeException(nameof(upstream), upstream, $"{op}: upstream gradient must be finite");
        if (rows == 0) return;
        float scale = targets.Counted == 0 ? 0f : upstream / targets.Counted;
        switch (logits.Device)
        {
            case CpuDevice cpu: CrossEntropyCpu.Backward(cpu, logits, targets.Labels, dLogits, rows, classes, labelSmoothing, targets.IgnoreIndex, scale); break;
            case IlgpuDevice gpu: CrossEntropyIlgpu.Backward(gpu, logits, targets.Codes, dLogits, rows, classes, labelSmoothing, scale); break;
            default: throw RowOpChecks.Unsupported(op, logits.Device);
        }
    }

    private static void CheckTargets(string op, CrossEntropyTargets targets, Tensor logits, int rows, int classes)
    {
        ArgumentNullException.ThrowIfNull(targets);
        if (!ReferenceEquals(targets.Device, logits.Device))
            throw new ArgumentException($"{op}: the targets live on {targets.Device.Spec} but the logits on {logits.Device.Spec}", nameof(targets));
        if (targets.Rows != rows)
            throw new ArgumentException($"{op}: {targets.Rows} labels for {rows} rows of logits", nameof(targets));
        if (targets.Classes != classes && rows > 0)
            throw new ArgumentException($"{op}: the labels were checked against {targets.Classes} classes; the logits have {classes}", nameof(targets));
    }

    private static void CheckSmoothing(string op, float smoothing)
    {
        if (!(smoothing >= 0f && smoothing <= 1f))
            throw new ArgumentOutOfRangeException(nameof(smoothing), smoothing, $"{op}: label smoothing must be in [0, 1]");
    }

    /// <summary>Validates labels and the ignore index; returns the number of rows that count (not ignored).</summary>
    internal static int CheckLabels(string op, ReadOnlySpan<int> labels, int rows, int classes, int ignoreIndex)
    {
        if (labels.Length != rows)
            throw new ArgumentException($"{op}: {labels.Length} labels for {rows} rows of logits", nameof(labels));
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
