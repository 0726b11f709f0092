using CrateIL.Compute.Devices;
using CrateIL.Compute.Ilgpu;
using CrateIL.Compute.Tensors;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace CrateIL.Compute.Ops;

/// <summary>Row softmax on ILGPU: one explicitly grouped group per row, shared-memory tree reductions.</summary>
internal static class SoftmaxIlgpu
{
    public static void Forward(IlgpuDevice device, Tensor x, Tensor y, int rows, int cols, float scale)
    {
        RowOpChecks.FitsIlgpuIndex("Softmax", nameof(x), x);
        var config = new KernelConfig(rows, RowOpChecks.GroupSize(device));
        device.Kernels<SoftmaxKernels>().Forward(config, x.View, y.View, new SoftmaxArgs(cols, scale));
    }

    public static void Backward(IlgpuDevice device, Tensor y, Tensor dy, Tensor dx, int rows, int cols, float scale)
    {
        RowOpChecks.FitsIlgpuIndex("Softmax backward", nameof(y), y);
        var config = new KernelConfig(rows, RowOpChecks.GroupSize(device));
        device.Kernels<SoftmaxKernels>().Backward(config, y.View, dy.View, dx.View, new SoftmaxArgs(cols, scale));
    }
}

internal readonly struct SoftmaxArgs(int cols, float scale)
{
    public readonly int Cols = cols;
    public readonly float Scale = scale;
}

internal sealed class SoftmaxKernels : IKernelSet<SoftmaxKernels>
{
    public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, SoftmaxArgs> Forward;
    public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, SoftmaxArgs> Backward;

    private SoftmaxKernels(Accelerator a)
    {
        Forward = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, SoftmaxArgs>(ForwardKernel);
        Backward = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, SoftmaxArgs>(BackwardKernel);
    }

    public static SoftmaxKernels Load(Accelerator accelerator) => new(accelerator);

    /// <summary>
    /// Group = row. Each thread strides the row; every element is read and written by the same thread in every
    /// pass, so y may alias x.
    /// </summary>
    [IlgpuKernel(Grouping.Explicit)]
    internal static void ForwardKernel(ArrayView<float> x, ArrayView<float> y, SoftmaxArgs args)
    {
        var shared = SharedMemory.Allocate<float>(GroupReduce.MaxGroupSize);
        int tid = Group.IdxX, step = Group.DimX, cols = args.Cols;
        int o = Grid.IdxX * cols;
        float scale = args.Scale;

        float localMax = float.NegativeInfinity;
        for (int j = tid; j < cols; j += step) localMax = XMath.Max(localMax, scale * x[o + j]);
        float shift = GroupReduce.Max(shared, localMax);

        float localSum = 0f;
        for (int j = tid; j < cols; j += step)
        {
            float e = XMath.Exp(scale * x[o + j] - shift);
            y[o + j] = e;
            localSum += e;
        }
        float inv = 1f / GroupReduce.Sum(shared, localSum);
        for (int j = tid; j < cols; j += step) y[o + j] *= inv;
    }

    /// <summary>dx = scale·y⊙(dy − Σ dy⊙y); same-thread element ownership makes dx = dy safe.</summary>
    [IlgpuKernel(Grouping.Explicit)]
    internal static void BackwardKernel(ArrayView<float> y, ArrayView<float> dy, ArrayView<float> dx, SoftmaxArgs args)
    {
        var shared = SharedMemory.Allocate<float>(GroupReduce.MaxGroupSize);
        int tid = Group.IdxX, step = Group.DimX, cols = args.Cols;
        int o = Grid.IdxX * cols;

        float local = 0f;
        for (int j = tid; j < cols; j += step) local += dy[o + j] * y[o + j];
        float dot = GroupReduce.Sum(shared, local);
        for (int j = tid; j < cols; j += step) dx[o + j] = args.Scale * y[o + j] * (dy[o + j] - dot);
    }
}
