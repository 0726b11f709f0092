using CrateIL.Compute.Devices;
using CrateIL.Compute.Ilgpu;
using CrateIL.Compute.Tensors;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace CrateIL.Compute.Ops;

/// <summary>
/// Reductions on ILGPU. Rows: one group per row. Whole tensor: pass 1 gives a fixed number of groups a fixed
/// grid-stride share each and writes one partial per group; pass 2 reduces the partials with a single group.
/// Both passes are the same kernel, so the result is deterministic for a given device.
/// </summary>
internal static class ReduceIlgpu
{
    /// <summary>Most partials pass 1 produces (pass 2 then loops over ≤ this many per group).</summary>
    internal const int MaxPartials = 1024;

    public static void Rows(IlgpuDevice device, Tensor x, Tensor result, int rows, int cols, ReduceOp op)
    {
        RowOpChecks.FitsIlgpuIndex("Reduce.Rows", nameof(x), x);
        var config = new KernelConfig(rows, RowOpChecks.GroupSize(device));
        device.Kernels<ReduceKernels>().Rows(config, x.View, result.View, ReduceArgs.For(cols, op, finish: true));
    }

    public static void All(IlgpuDevice device, Tensor x, Tensor result, ReduceOp op)
    {
        RowOpChecks.FitsIlgpuIndex("Reduce.All", nameof(x), x);
        int n = (int)x.Length, groupSize = RowOpChecks.GroupSize(device);
        var kernels = device.Kernels<ReduceKernels>();
        // A few groups per multiprocessor fill the device; the count is a function of the device and n only.
        int groups = (int)Math.Min((n + groupSize - 1L) / groupSize, Math.Clamp(device.Accelerator.NumMultiprocessors * 8, 1, MaxPartials));
        if (groups == 1)
        {
            kernels.Strided(new KernelConfig(1, groupSize), x.View, result.View, ReduceArgs.For(n, op, finish: true));
            return;
        }
        using var partials = device.Allocate(groups);
        kernels.Strided(new KernelConfig(groups, groupSize), x.View, partials.View, ReduceArgs.For(n, op, finish: false));
        // Pass 2 combines partials: sums of squares are summed, then the root is taken.
        var combine = op == ReduceOp.Max ? ReduceArgs.For(groups, ReduceOp.Max, finish: true)
            : new ReduceArgs(groups, ReduceArgs.Sum, op == ReduceOp.L2Norm);
        kernels.Strided(new KernelConfig(1, groupSize), partials.View, result.View, combine);
    }
}

/// <summary>Kernel arguments: element count, how to accumulate, and whether to take the root at the end (L2).</summary>
internal readonly struct ReduceArgs(int count, int mode, bool sqrt)
{
    public const int Sum = 0, SumSquares = 1, Max = 2;

    public readonly int Count = count;
    public readonly int Mode = mode;
    public readonly int Sqrt = sqrt ? 1 : 0;

    public static ReduceArgs For(int count, ReduceOp op, bool finish) => op switch
    {
        ReduceOp.Sum => new(count, Sum, false),
        ReduceOp.Max => new(count, Max, false),
        _ => new(count, SumSquares, finish),
    };
}

internal sealed class ReduceKernels : IKernelSet<ReduceKernels>
{
    public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ReduceArgs> Rows;
    public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ReduceArgs> Strided;

    private ReduceKernels(Accelerator a)
    {
        Rows = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ReduceArgs>(RowsKernel);
        Strided = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ReduceArgs>(StridedKernel);
    }

    public static ReduceKernels Load(Accelerator accelerator) => new(accelerator);

    private static float Identity(int mode) => mode == ReduceArgs.Max ? float.NegativeInfinity : 0f;

    private static float Accumulate(int mode, float acc, float v) =>
        mode == ReduceArgs.Max ? XMath.Max(acc, v) : mode == ReduceArgs.SumSquares ? acc + v * v : acc + v;

    private static float Combine(ArrayView<float> shared, int mode, float local) =>
        mode == ReduceArgs.Max ? GroupReduce.Max(shared, local) : GroupReduce.Sum(shared, local);

    /// <summary>Group = row: result[row] = reduction of x[row, 0..Count).</summary>
    [IlgpuKernel(Grouping.Explicit)]
    internal static void RowsKernel(ArrayView<float> x, ArrayView<float> result, ReduceArgs args)
    {
        var shared = SharedMemory.Allocate<float>(GroupReduce.MaxGroupSize);
        int tid = Group.IdxX, o = Grid.IdxX * args.Count;
        float local = Identity(args.Mode);
        for (int j = tid; j < args.Count; j += Group.DimX) local = Accumulate(args.Mode, local, x[o + j]);
        float total = Combine(shared, args.Mode, local);
        if (tid == 0) result[Grid.IdxX] = args.Sqrt != 0 ? XMath.Sqrt(total) : total;
    }

    /// <summary>Group g: result[g] = reduction of x[i] for i ≡ g·DimX + tid (mod GridDim·DimX).</summary>
    [IlgpuKernel(Grouping.Explicit)]
    internal static void StridedKernel(ArrayView<float> x, ArrayView<float> result, ReduceArgs args)
    {
        var shared = SharedMemory.Allocate<float>(GroupReduce.MaxGroupSize);
        int tid = Group.IdxX, stride = Grid.DimX * Group.DimX;
        float local = Identity(args.Mode);
        for (int i = Grid.IdxX * Group.DimX + tid; i < args.Count; i += stride) local = Accumulate(args.Mode, local, x[i]);
        float total = Combine(shared, args.Mode, local);
        if (tid == 0) result[Grid.IdxX] = args.Sqrt != 0 ? XMath.Sqrt(total) : total;
    }
}
