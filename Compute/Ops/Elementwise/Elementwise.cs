using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;

namespace CrateIL.Compute.Ops;

/// <summary>
/// Elementwise arithmetic on tensors seen as flat arrays of equal length (shapes may differ; lengths may not).
/// Outputs may be the same tensor as an input (in place); partially overlapping views are not supported.
/// </summary>
public static class Elementwise
{
    /// <summary>z = x + y.</summary>
    public static void Add(Tensor x, Tensor y, Tensor z)
    {
        ElementwiseChecks.SameLength("Elementwise.Add", "x", x, "y", y, "z", z);
        if (x.Length == 0) return;
        switch (x.Device)
        {
            case CpuDevice cpu: ElementwiseCpu.Add(cpu, x, y, z); break;
            case IlgpuDevice gpu: ElementwiseIlgpu.Add(gpu, x, y, z); break;
            default: throw ElementwiseChecks.Unsupported("Elementwise.Add", x.Device);
        }
    }

    /// <summary>z = x ⊙ y.</summary>
    public static void Multiply(Tensor x, Tensor y, Tensor z)
    {
        ElementwiseChecks.SameLength("Elementwise.Multiply", "x", x, "y", y, "z", z);
        if (x.Length == 0) return;
        switch (x.Device)
        {
            case CpuDevice cpu: ElementwiseCpu.Multiply(cpu, x, y, z); break;
            case IlgpuDevice gpu: ElementwiseIlgpu.Multiply(gpu, x, y, z); break;
            default: throw ElementwiseChecks.Unsupported("Elementwise.Multiply", x.Device);
        }
    }

    /// <summary>y = α·x.</summary>
    public static void Scale(Tensor x, float alpha, Tensor y)
    {
        ElementwiseChecks.SameLength("Elementwise.Scale", "x", x, "y", y);
        if (x.Length == 0) return;
        switch (x.Device)
        {
            case CpuDevice cpu: ElementwiseCpu.Scale(cpu, x, alpha, y); break;
            case IlgpuDevice gpu: ElementwiseIlgpu.Scale(gpu, x, alpha, y); break;
            default: throw ElementwiseChecks.Unsupported("Elementwise.Scale", x.Device);
        }
    }

    /// <summary>y += α·x (accumulates into y; e.g. gradient accumulation or an SGD step).</summary>
    public static void Axpy(float alpha, Tensor x, Tensor y)
    {
        ElementwiseChecks.SameLength("Elementwise.Axpy", "x", x, "y", y);
        if (x.Length == 0) return;
        switch (x.Device)
        {
            case CpuDevice cpu: ElementwiseCpu.Axpy(cpu, alpha, x, y); break;
            case IlgpuDevice gpu: ElementwiseIlgpu.Axpy(gpu, alpha, x, y); break;
            default: throw ElementwiseChecks.Unsupported("Elementwise.Axpy", x.Device);
        }
    }
}

/// <summary>
/// Bias over the last axis: x is viewed as [rows, cols] with cols = x's last dimension = bias length.
/// Forward y[r, c] = x[r, c] + bias[c]; backward ACCUMULATES the parameter gradient, dbias[c] += Σ_r dy[r, c],
/// in a fixed order on every backend (deterministic: no atomics).
/// </summary>
public static class BiasAdd
{
    /// <summary>y = x + bias (broadcast over rows). <paramref name="y"/> may be <paramref name="x"/>.</summary>
    public static void Forward(Tensor x, Tensor bias, Tensor y)
    {
        int cols = CheckBias("BiasAdd.Forward", "x", x, bias);
        ElementwiseChecks.SameLength("BiasAdd.Forward", "x", x, "y", y);
        if (x.Length == 0) return;
        int rows = (int)(x.Length / cols);
        switch (x.Device)
        {
            case CpuDevice cpu: ElementwiseCpu.BiasAdd(cpu, x, bias, y, rows, cols); break;
            case IlgpuDevice gpu: ElementwiseIlgpu.BiasAdd(gpu, x, bias, y, cols); break;
            default: throw ElementwiseChecks.Unsupported("BiasAdd.Forward", x.Device);
        }
    }

    /// <summary>dbias[c] += Σ_r dy[r, c] (accumulates: zero dbias first for a fresh gradient).</summary>
    public static void Backward(Tensor dy, Tensor dbias)
    {
        int cols = CheckBias("BiasAdd.Backward", "dy", dy, dbias);
        if (dy.Length == 0) return;
        int rows = (int)(dy.Length / cols);
        switch (dy.Device)
        {
            case CpuDevice cpu: ElementwiseCpu.BiasGrad(cpu, dy, dbias, rows, cols); break;
            case IlgpuDevice gpu: ElementwiseIlgpu.BiasGrad(gpu, dy, dbias, rows, cols); break;
            default: throw ElementwiseChecks.Unsupported("BiasAdd.Backward", dy.Device);
        }
    }

    private static int CheckBias(string op, string name, Tensor x, Tensor bias)
    {
        ArgumentNullException.ThrowIfNull(x, name);
        ArgumentNullException.ThrowIfNull(bias, nameof(bias));
        if (bias.Rank != 1)
            throw new ArgumentException($"{op}: bias must be 1-D, got {bias.Shape}");
        if (x.Shape.LastDim != bias.Length)
            throw new ArgumentException($"{op}: {name}{x.Shape} has last dimension {x.Shape.LastDim} but bias{bias.Shape} has {bias.Length} elements");
        if (x.Device != bias.Device)
            throw new ArgumentException($"{op}: {name} lives on {x.Device.Spec} but bias on {bias.Device.Spec}");
        if (x.Length > int.MaxValue)
            throw new ArgumentException($"{op}: {name}{x.Shape} has {x.Length} elements; at most {int.MaxValue} are supported");
        return Math.Max(1, (int)bias.Length);
    }
}
