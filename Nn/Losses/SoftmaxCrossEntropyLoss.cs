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
/// </summary>
public sealed class SoftmaxCrossEntropyLoss
{
    private int[] _labels = [];
    private int _rows;
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

    /// <summary>
    /// The mean loss over the rows of <paramref name="logits"/> (waits for the device). Keeps a reference to the
    /// logits and a copy of the labels for <see cref="Backward"/>; the logits must stay unchanged until then.
    /// </summary>
    public float Forward(Tensor logits, ReadOnlySpan<int> labels)
    {
        ArgumentNullException.ThrowIfNull(logits);
        float loss = CrossEntropy.Forward(logits, labels, null, LabelSmoothing, IgnoreIndex);
        if (_labels.Length < labels.Length) _labels = new int[labels.Length];
        labels.CopyTo(_labels);
        _rows = labels.Length;
        _logits = logits;
        return loss;
    }

    /// <summary>dlogits = upstream·∂(mean loss)/∂logits for the last <see cref="Forward"/> (assigned, not accumulated).</summary>
    public void Backward(Tensor dLogits, float upstream = 1f)
    {
        ArgumentNullException.ThrowIfNull(dLogits);
        if (_logits is null) throw new InvalidOperationException("SoftmaxCrossEntropyLoss: Backward needs a Forward first");
        if (_logits.IsDisposed) throw new ObjectDisposedException("logits", "SoftmaxCrossEntropyLoss: the logits of the last Forward were disposed before Backward");
        CrossEntropy.Backward(_logits, _labels.AsSpan(0, _rows), dLogits, LabelSmoothing, upstream, IgnoreIndex);
    }

    /// <summary>Forward and backward in one call: returns the mean loss and writes dlogits (may alias the logits).</summary>
    public float ForwardBackward(Tensor logits, ReadOnlySpan<int> labels, Tensor dLogits)
    {
        float loss = Forward(logits, labels);
        Backward(dLogits);
        return loss;
    }
}
