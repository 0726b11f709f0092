using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;

namespace CrateIL.Compute.Ops;

/// <summary>
/// Layer normalisation over the last dimension of a tensor viewed as [rows, cols]:
/// y = (x − mean)·rstd·γ + β with rstd = 1/√(var + ε) (biased variance, as PyTorch). The per-row mean and rstd
/// can be saved for the backward pass, which then needs only x, γ and those two vectors.
/// </summary>
public static class LayerNorm
{
    public const float DefaultEpsilon = 1e-5f;
    private const string Op = "LayerNorm";

    /// <summary>
    /// y = LayerNorm(x)·γ + β. <paramref name="gamma"/> and <paramref name="beta"/> ([cols] each) are optional
    /// (null: no scale / no shift). <paramref name="mean"/> and <paramref name="rstd"/> ([rows] each) receive the
    /// row statistics for <see cref="Backward"/>; pass both or neither (inference).
    /// </summary>
    public static void Forward(Tensor x, Tensor? gamma, Tensor? beta, Tensor y,
        Tensor? mean = null, Tensor? rstd = null, float eps = DefaultEpsilon)
    {
        var (rows, cols) = RowOpChecks.RowsOf(Op, nameof(x), x);
        RowOpChecks.SameShape(Op, nameof(y), y, nameof(x), x);
        if (gamma is not null) RowOpChecks.VectorOf(Op, nameof(gamma), gamma, cols, "last dim", nameof(x), x);
        if (beta is not null) RowOpChecks.VectorOf(Op, nameof(beta), beta, cols, "last dim", nameof(x), x);
        if ((mean is null) != (rstd is null))
            throw new ArgumentException($"{Op}: pass both mean and rstd to save the row statistics, or neither", mean is null ? nameof(mean) : nameof(rstd));
        if (mean is not null) RowOpChecks.VectorOf(Op, nameof(mean), mean, rows, "rows", nameof(x), x);
        if (rstd is not null) RowOpChecks.VectorOf(Op, nameof(rstd), rstd, rows, "rows", nameof(x), x);
        if (!(eps > 0f) || !float.IsFinite(eps))
            throw new ArgumentOutOfRangeException(nameof(eps), eps, $"{Op}: eps must be positive and finite");
        if (rows == 0) return;
        switch (x.Device)
        {
            case CpuDevice cpu: LayerNormCpu.Forward(cpu, x, gamma, beta, y, mean, rstd, rows, cols, eps); break;
            case IlgpuDevice gpu: LayerNormIlgpu.Forward(gpu, x, gamma, beta, y, mean, rstd, rows, cols, eps); break;
            default: throw RowOpChecks.Unsupported(Op, x.Device);
        }
    }

    /// <summary>
    /// Gradients of <see cref="Forward"/> from the saved row statistics: <paramref name="dx"/> is assigned (it may
    /// be <paramref name="dy"/>); <paramref name="dGamma"/> and <paramref name="dBeta"/> ([cols], optional) are
    /// accumulated (+=), so gradients of parameters shared across calls add up. The column sums are deterministic
    /// on every backend (fixed partition and order, no atomics).
    /// </summary>
    public static void Backward(Tensor dy, Tensor x, Tensor? gamma, Tensor mean, Tensor rstd, Tensor dx,
        Tensor? dGamma = null, Tensor? dBeta = null)
    {
        const string op = Op + " backward";
        var (rows, cols) = RowOpChecks.RowsOf(op, nameof(x), x);
        RowOpChecks.SameShape(op, nameof(dy), dy, nameof(x), x);
        RowOpChecks.SameShape(op, nameof(dx), dx, nameof(x), x);
        if (gamma is not null) RowOpChecks.VectorOf(op, nameof(gamma), gamma, cols, "last dim", nameof(x), x);
        RowOpChecks.VectorOf(op, nameof(mean), mean, rows, "rows", nameof(x), x);
        RowOpChecks.VectorOf(op, nameof(rstd), rstd, rows, "rows", nameof(x), x);
        if (dGamma is not null) RowOpChecks.VectorOf(op, nameof(dGamma), dGamma, cols, "last dim", nameof(x), x);
        if (dBeta is not null) RowOpChecks.VectorOf(op, nameof(dBeta), dBeta, cols, "last dim", nameof(x), x);
        if (ReferenceEquals(dx, x) || (dGamma is not null && ReferenceEquals(dGamma, dBeta)))
            throw new ArgumentException($"{op}: dx must not be x, and dGamma must not be dBeta");
        if (rows == 0) return;
        switch (x.Device)
        {
            case CpuDevice cpu: LayerNormCpu.Backward(cpu, dy, x, gamma, mean, rstd, dx, dGamma, dBeta, rows, cols); break;
            case IlgpuDevice gpu: LayerNormIlgpu.Backward(gpu, dy, x, gamma, mean, rstd, dx, dGamma, dBeta, rows, cols); break;
            default: throw RowOpChecks.Unsupported(Op, x.Device);
        }
    }
}
