using CrateIL.Compute.Ops;
using CrateIL.Compute.Tensors;

namespace CrateIL.Nn.Losses;

/// <summary>
/// The classification loss as a layer: softmax cross-entropy of logits [rows, classes] against integer labels,
/// with label smoothing s. timm's <c>LabelSmoothingCrossEntropy(s)</c> (the CRATE reference's loss, s = 0.1)
/// computes (1−s)·NLL + s·mean_c(−log p_c); that is exactly PyTorch's cross-entropy against the target
/// distribution q = (1−s)·onehot + s/C, because Σ_c q_c(−log p_c) = (1−s)(−log p_y) + (s/C)·Σ_c(−log p_c).
/// Runs on every backend through <see cref="CrossEntropy"/>. The loss is the mean over rows (rows labelled with
/// the ignore index are left out of the mean and get zero gradient).
/// <para>
/// <see cref="Forward(Tensor, ReadOnlySpan{int}, Tensor)"/> copies the labels to the device once
/// (<see cref="CrossEntropyTargets"/>, owned here and reused batch after batch) and leaves the mean loss in a device
/// tensor, like <c>loss = criterion(logits, y)</c> in PyTorch before any <c>.item()</c>; <see cref="Backward"/> uses the
/// same device labels. <see cref="Forward(Tensor, ReadOnlySpan{int})"/> additionally reads the mean back (waits).
/// </para>
/// </summary>
public sealed class SoftmaxCrossEntropyLoss : IDisposable
{
    private CrossEntropyTargets? _targets;
    private Tensor? _mean;
    private Tensor? _logits;

    public SoftmaxCrossEntropyLoss(float labelSmoothing = 0f, int ignoreIndex = CrossEntropy.DefaultIgnoreIndex)
    {
        if (!(labelSmoothing >= 0f && labelSmoothing <= 1f))
            throw new ArgumentOutOfRangeException(nameof(labelSmoothing), labelSmoothing, "SoftmaxCrossEntropyLoss: label smoothing must be in [0, 1]");
        LabelSmoothing = labelSmoothing;
        IgnoreIndex = ignoreIndex;
    }

    public float LabelSmoothing { get; }
    public int IgnoreIndex { get; }

    /// <summary>Label batches copied to the device so far: one per forward, shared with its backward.</summary>
    public long LabelUploads => _targets?.Uploads ?? 0;

    /// <summary>
    /// The mean loss over the rows of <paramref name="logits"/> into the one-element <paramref name="meanLoss"/> on the
    /// logits' device, without waiting for it. Uploads the labels once for this forward and the following
    /// <see cref="Backward"/>, and keeps a reference to the logits, which must stay unchanged until then.
    /// </summary>
    public void Forward(Tensor logits, ReadOnlySpan<int> labels, Tensor meanLoss)
    {
        ArgumentNullException.ThrowIfNull(logits);
        _logits = null;
        var (rows, classes) = (logits.Shape.Rows, logits.Shape.LastDim);
        if (labels.Length != rows)
            throw new ArgumentException($"SoftmaxCrossEntropyLoss: {labels.Length} labels for {rows} rows of logits", nameof(labels));
        var targets = TargetsFor(logits);
        targets.Set(labels, Math.Max(1, classes), IgnoreIndex);
        CrossEntropy.Forward(logits, targets, meanLoss, losses: null, LabelSmoothing);
        _logits = logits;
    }

    /// <summary>
    /// The mean loss over the rows of <paramref name="logits"/>, read back to the host (waits for the device). Keeps a
    /// reference to the logits and the labels (on the device) for <see cref="Backward"/>; the logits must stay unchanged until then.
    /// </summary>
    public float Forward(Tensor logits, ReadOnlySpan<int> labels)
    {
        ArgumentNullException.ThrowIfNull(logits);
        if (_mean is not null && !ReferenceEquals(_mean.Device, logits.Device))
        {
            _mean.Dispose();
            _mean = null;
        }
        _mean ??= logits.Device.Allocate(1);
        Forward(logits, labels, _mean);
        Span<float> value = stackalloc float[1];
        _mean.CopyTo(value);
        return value[0];
    }

    /// <summary>dlogits = upstream·∂(mean loss)/∂logits for the last <see cref="Forward(Tensor, ReadOnlySpan{int}, Tensor)"/> (assigned, not accumulated).</summary>
    public void Backward(Tensor dLogits, float upstream = 1f)
    {
        ArgumentNullException.ThrowIfNull(dLogits);
        if (_logits is null || _targets is null) throw new InvalidOperationException("SoftmaxCrossEntropyLoss: Backward needs a Forward first");
        if (_logits.IsDisposed) throw new ObjectDisposedException("logits", "SoftmaxCrossEntropyLoss: the logits of the last Forward were disposed before Backward");
        CrossEntropy.Backward(_logits, _targets, dLogits, LabelSmoothing, upstream);
    }

    /// <summary>Forward and backward in one call: returns the mean loss and writes dlogits (may alias the logits).</summary>
    public float ForwardBackward(Tensor logits, ReadOnlySpan<int> labels, Tensor dLogits)
    {
        float loss = Forward(logits, labels);
        Backward(dLogits);
        return loss;
    }

    /// <summary>The label buffer of the logits' device (a loss used on another device starts a new one).</summary>
    private CrossEntropyTargets TargetsFor(Tensor logits)
    {
        if (_targets is not null && !ReferenceEquals(_targets.Device, logits.Device))
        {
            _targets.Dispose();
            _targets = null;
        }
        return _targets ??= new CrossEntropyTargets(logits.Device);
    }

    public void Dispose()
    {
        _targets?.Dispose();
        _targets = null;
        _mean?.Dispose();
        _mean = null;
        _logits = null;
    }
}
