using System.Numerics.Tensors;
using CrateIL.Compute.Cpu;
using CrateIL.Compute.Devices;
using Tensor = CrateIL.Compute.Tensors.Tensor;

namespace CrateIL.Compute.Ops;

/// <summary>Reductions on the CPU with TensorPrimitives; whole-tensor ones over fixed ranges combined in order.</summary>
internal static unsafe class ReduceCpu
{
    /// <summary>Elements one TensorPrimitives call takes at most (span lengths are ints).</summary>
    private const int MaxSpan = 1 << 30;

    public static void Rows(CpuDevice device, Tensor x, Tensor result, int rows, int cols, ReduceOp op) =>
        RowMath.ForRows(device, rows, cols, new RowsKernel(x.HostPointer, result.HostPointer, cols, op));

    private readonly struct RowsKernel(float* px, float* pr, int cols, ReduceOp op) : IRowChunkKernel
    {
        public void Execute(int chunk, int start, int end)
        {
            for (int r = start; r < end; r++)
            {
                var row = new ReadOnlySpan<float>(px + (long)r * cols, cols);
                pr[r] = op switch
                {
                    ReduceOp.Sum => TensorPrimitives.Sum(row),
                    ReduceOp.Max => TensorPrimitives.Max(row),
                    _ => MathF.Sqrt(TensorPrimitives.SumOfSquares(row)),
                };
            }
        }
    }

    /// <summary>Range i of <c>ranges</c> equal splits of n elements → its partial into partials[i].</summary>
    private readonly struct PartialKernel(float* x, float* partials, long n, int ranges, ReduceOp op) : IRangeKernel
    {
        public void Execute(int start, int count)
        {
            for (int i = start; i < start + count; i++)
            {
                long s = n * i / ranges, e = n * (i + 1) / ranges;
                partials[i] = Partial(x + s, e - s, op);
            }
        }
    }

    public static void All(CpuDevice device, Tensor x, Tensor result, ReduceOp op)
    {
        long n = x.Length;
        int ranges = device.Threads == 1 || n < RowMath.ParallelThreshold ? 1 : device.Threads * 4;
        float value;
        if (ranges == 1) value = Partial(x.HostPointer, n, op);
        else
        {
            // Range partials in a pooled tensor, combined in range order: deterministic for a given thread count.
            using var partials = device.Allocate(ranges);
            CpuParallel.For(device, ranges, 1, new PartialKernel(x.HostPointer, partials.HostPointer, n, ranges, op));
            var p = new ReadOnlySpan<float>(partials.HostPointer, ranges);
            value = op == ReduceOp.Max ? TensorPrimitives.Max(p) : TensorPrimitives.Sum(p);
        }
        result.HostPointer[0] = op == ReduceOp.L2Norm ? MathF.Sqrt(value) : value;
    }

    /// <summary>Sum, max or sum of squares (for L2) of n contiguous elements.</summary>
    private static float Partial(float* p, long n, ReduceOp op)
    {
        float acc = op == ReduceOp.Max ? float.NegativeInfinity : 0f;
        for (long i = 0; i < n; i += MaxSpan)
        {
            var s = new ReadOnlySpan<float>(p + i, (int)Math.Min(MaxSpan, n - i));
            acc = op switch
            {
                ReduceOp.Sum => acc + TensorPrimitives.Sum(s),
                ReduceOp.Max => MathF.Max(acc, TensorPrimitives.Max(s)),
                _ => acc + TensorPrimitives.SumOfSquares(s),
            };
        }
        return acc;
    }
}
