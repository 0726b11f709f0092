using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;

namespace CrateIL.Compute.Ops;

/// <summary>
/// Row softmax over the last dimension of a tensor viewed as [rows, cols]: y = softmax(scale·x) per row,
/// computed with the row maximum subtracted so large inputs cannot overflow. The optional scale is the attention
/// temperature (softmax(QKᵀ/√d) without a separate scaling pass).
/// </summary>
public static class Softmax
{
    private const string Op = "Softmax";

    /// <summary>y = softmax(scale·x) row-wise. <paramref name="y"/> may be <paramref name="x"/> (in place).</summary>
    public static void Forward(Tensor x, Tensor y, float scale = 1f)
    {
        var (rows, cols) = RowOpChecks.RowsOf(Op, nameof(x), x);
        RowOpChecks.SameShape(Op, nameof(y), y, nameof(x), x);
        CheckScale(scale);
        if (rows == 0) return;
        switch (x.Device)
        {
            case CpuDevice cpu: SoftmaxCpu.Forward(cpu, x, y, rows, cols, scale); break;
            case IlgpuDevice gpu: SoftmaxIlgpu.Forward(gpu, x, y, rows, cols, scale); break;
            default: throw RowOpChecks.Unsupported(Op, x.Device);
        }
    }

    /// <summary>
    /// dx = scale · y ⊙ (dy − Σ_j dy_j·y_j) row-wise, from the forward output <paramref name="y"/>.
    /// <paramref name="dx"/> is assigned and may be <paramref name="dy"/>.
    /// </summary>
    public static void Backward(Tensor y, Tensor dy, Tensor dx, float scale = 1f)
    {
        var (rows, cols) = RowOpChecks.RowsOf(Op + " backward", nameof(y), y);
        RowOpChecks.SameShape(Op + " backward", nameof(dy), dy, nameof(y), y);
        RowOpChecks.SameShape(Op + " backward", nameof(dx), dx, nameof(y), y);
        CheckScale(scale);
        if (rows == 0) return;
        switch (y.Device)
        {
            case CpuDevice cpu: SoftmaxCpu.Backward(cpu, y, dy, dx, rows, cols, scale); break;
            case IlgpuDevice gpu: SoftmaxIlgpu.Backward(gpu, y, dy, dx, rows, cols, scale); break;
            default: throw RowOpChecks.Unsupported(Op, y.Device);
        }
    }

    private static void CheckScale(float scale)
    {
        if (!float.IsFinite(scale)) throw new ArgumentOutOfRangeException(nameof(scale), scale, "Softmax scale must be finite");
    }
}
