using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;

namespace CrateIL.Compute.Ops;

/// <summary>Which soft threshold: CRATE's non-negative ISTA step or the classic symmetric shrinkage.</summary>
public enum ThresholdKind
{
    /// <summary>y = ReLU(x − t), as CRATE's ISTA block uses (non-negative sparse codes).</summary>
    OneSided,
    /// <summary>y = sign(x)·max(|x| − t, 0) (CRATE-sth); requires t ≥ 0.</summary>
    Symmetric,
}

/// <summary>Soft thresholding with a scalar threshold t, forward and backward. Tensors are flat arrays of equal length.</summary>
public static class SoftThreshold
{
    /// <summary>y = S_t(x). <paramref name="y"/> may be <paramref name="x"/>.</summary>
    public static void Forward(Tensor x, Tensor y, float threshold, ThresholdKind kind = ThresholdKind.OneSided)
    {
        ElementwiseChecks.SameLength("SoftThreshold.Forward", "x", x, "y", y);
        CheckThreshold("SoftThreshold.Forward", threshold, kind);
        if (x.Length == 0) return;
        switch (x.Device)
        {
            case CpuDevice cpu: ActivationsCpu.SoftThreshold(cpu, x, y, threshold, kind); break;
            case IlgpuDevice gpu: ActivationsIlgpu.SoftThreshold(gpu, x, y, threshold, kind); break;
            default: throw ElementwiseChecks.Unsupported("SoftThreshold.Forward", x.Device);
        }
    }

    /// <summary>
    /// dx = dy ⊙ S_t'(x) from the forward input x (assigns dx): [x > t] one-sided, [|x| > t] symmetric; 0 at the kinks.
    /// <paramref name="dx"/> may be <paramref name="dy"/>.
    /// </summary>
    public static void Backward(Tensor dy, Tensor x, Tensor dx, float threshold, ThresholdKind kind = ThresholdKind.OneSided)
    {
        ElementwiseChecks.SameLength("SoftThreshold.Backward", "dy", dy, "x", x, "dx", dx);
        CheckThreshold("SoftThreshold.Backward", threshold, kind);
        if (dy.Length == 0) return;
        switch (dy.Device)
        {
            case CpuDevice cpu: ActivationsCpu.SoftThresholdBackward(cpu, dy, x, dx, threshold, kind); break;
            case IlgpuDevice gpu: ActivationsIlgpu.SoftThresholdBackward(gpu, dy, x, dx, threshold, kind); break;
            default: throw ElementwiseChecks.Unsupported("SoftThreshold.Backward", dy.Device);
        }
    }

    /// <summary>
    /// The same gradient from the saved forward output y instead of x (assigns dx): [y > 0] one-sided, [y ≠ 0]
    /// symmetric, which equal [x > t] and [|x| > t] (for the symmetric form with t ≥ 0).
    /// </summary>
    public static void BackwardFromOutput(Tensor dy, Tensor y, Tensor dx, ThresholdKind kind = ThresholdKind.OneSided)
    {
        ElementwiseChecks.SameLength("SoftThreshold.BackwardFromOutput", "dy", dy, "y", y, "dx", dx);
        if (dy.Length == 0) return;
        switch (dy.Device)
        {
            case CpuDevice cpu: ActivationsCpu.SoftThresholdBackwardFromOutput(cpu, dy, y, dx, kind); break;
            case IlgpuDevice gpu:
                if (kind == ThresholdKind.OneSided) ActivationsIlgpu.PositiveMask(gpu, dy, y, dx);
                else ActivationsIlgpu.NonZeroMask(gpu, dy, y, dx);
                break;
            default: throw ElementwiseChecks.Unsupported("SoftThreshold.BackwardFromOutput", dy.Device);
        }
    }

    private static void CheckThreshold(string op, float threshold, ThresholdKind kind)
    {
        ElementwiseChecks.Finite(op, "threshold", threshold);
        if (kind == ThresholdKind.Symmetric && threshold < 0f)
            throw new ArgumentOutOfRangeException(nameof(threshold), threshold, $"{op}: the symmetric soft threshold needs t ≥ 0");
        if (kind is not (ThresholdKind.OneSided or ThresholdKind.Symmetric))
            throw new ArgumentOutOfRangeException(nameof(kind), kind, $"{op}: unknown threshold kind");
    }
}
