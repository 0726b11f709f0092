using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;

namespace CrateIL.Compute.Ops;

/// <summary>What a reduction computes.</summary>
public enum ReduceOp
{
    /// <summary>Σ x.</summary>
    Sum,
    /// <summary>max x (NaN if any element is NaN on the CPU path).</summary>
    Max,
    /// <summary>√(Σ x²), accumulated in float32 (overflows past ~1e19 per element, like a plain dot product).</summary>
    L2Norm,
}

/// <summary>
/// Reductions per row of a tensor viewed as [rows, cols] (result: [rows]) and over a whole tensor (result: one
/// element). Whole-tensor reductions use a fixed partition and order — per-range partials, then a final pass —
/// so a device gives the same bits every run.
/// </summary>
public static class Reduce
{
    /// <summary>result[r] = op over row r. <paramref name="result"/> holds rows elements (any shape).</summary>
    public static void Rows(Tensor x, Tensor result, ReduceOp op)
    {
        const string name = "Reduce.Rows";
        var (rows, cols) = RowOpChecks.RowsOf(name, nameof(x), x);
        RowOpChecks.VectorOf(name, nameof(result), result, rows, "rows", nameof(x), x);
        CheckOp(op);
        if (rows == 0) return;
        switch (x.Device)
        {
            case CpuDevice cpu: ReduceCpu.Rows(cpu, x, result, rows, cols, op); break;
            case IlgpuDevice gpu: ReduceIlgpu.Rows(gpu, x, result, rows, cols, op); break;
            default: throw RowOpChecks.Unsupported(name, x.Device);
        }
    }

    /// <summary>
    /// result[0] = op over every element of <paramref name="x"/>, left on the device (no host round trip).
    /// The sum and norm of an empty tensor are 0; its max is an error.
    /// </summary>
    public static void All(Tensor x, Tensor result, ReduceOp op)
    {
        const string name = "Reduce.All";
        ArgumentNullException.ThrowIfNull(x);
        RowOpChecks.VectorOf(name, nameof(result), result, 1, "a single value", nameof(x), x);
        RowOpChecks.SameDevice(name, nameof(x), x, nameof(result), result);
        CheckOp(op);
        if (x.Length == 0)
        {
            if (op == ReduceOp.Max) throw new ArgumentException($"{name}: the max of an empty tensor {x.Shape} is undefined", nameof(x));
            result.Fill(0f);
            return;
        }
        switch (x.Device)
        {
            case CpuDevice cpu: ReduceCpu.All(cpu, x, result, op); break;
            case IlgpuDevice gpu: ReduceIlgpu.All(gpu, x, result, op); break;
            default: throw RowOpChecks.Unsupported(name, x.Device);
        }
    }

    /// <summary>op over every element, read back to the host (waits for the device).</summary>
    public static float All(Tensor x, ReduceOp op)
    {
        ArgumentNullException.ThrowIfNull(x);
        using var result = x.Device.Allocate(1);
        All(x, result, op);
        Span<float> value = stackalloc float[1];
        result.CopyTo(value);
        return value[0];
    }

    public static void SumRows(Tensor x, Tensor result) => Rows(x, result, ReduceOp.Sum);
    public static void MaxRows(Tensor x, Tensor result) => Rows(x, result, ReduceOp.Max);
    public static void L2NormRows(Tensor x, Tensor result) => Rows(x, result, ReduceOp.L2Norm);
    public static float Sum(Tensor x) => All(x, ReduceOp.Sum);
    public static float Max(Tensor x) => All(x, ReduceOp.Max);
    public static float L2Norm(Tensor x) => All(x, ReduceOp.L2Norm);

    private static void CheckOp(ReduceOp op)
    {
        if (op is not (ReduceOp.Sum or ReduceOp.Max or ReduceOp.L2Norm))
            throw new ArgumentOutOfRangeException(nameof(op), op, "Unknown reduction");
    }
}
