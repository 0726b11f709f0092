using System.Numerics.Tensors;
using CrateIL.Compute.Cpu;
using CrateIL.Compute.Devices;
using Tensor = CrateIL.Compute.Tensors.Tensor;

namespace CrateIL.Compute.Ops;

/// <summary>
/// CPU elementwise arithmetic: TensorPrimitives does the vector work per chunk, <see cref="CpuParallel"/> splits
/// large arrays across threads. Pointers stay valid because host storage is native and never moves.
/// </summary>
internal static unsafe class ElementwiseCpu
{
    public static void Add(CpuDevice d, Tensor x, Tensor y, Tensor z) =>
        CpuParallel.For(d, (int)x.Length, CpuParallel.ElementGrain, new AddKernel(x.HostPointer, y.HostPointer, z.HostPointer), align: 16);

    public static void Multiply(CpuDevice d, Tensor x, Tensor y, Tensor z) =>
        CpuParallel.For(d, (int)x.Length, CpuParallel.ElementGrain, new MultiplyKernel(x.HostPointer, y.HostPointer, z.HostPointer), align: 16);

    public static void Scale(CpuDevice d, Tensor x, float alpha, Tensor y) =>
        CpuParallel.For(d, (int)x.Length, CpuParallel.ElementGrain, new ScaleKernel(x.HostPointer, alpha, y.HostPointer), align: 16);

    public static void Axpy(CpuDevice d, float alpha, Tensor x, Tensor y) =>
        CpuParallel.For(d, (int)x.Length, CpuParallel.ElementGrain, new AxpyKernel(alpha, x.HostPointer, y.HostPointer), align: 16);

    public static void BiasAdd(CpuDevice d, Tensor x, Tensor bias, Tensor y, int rows, int cols) =>
        CpuParallel.For(d, rows, Math.Max(1, CpuParallel.ElementGrain / cols), new BiasAddKernel(x.HostPointer, bias.HostPointer, y.HostPointer, cols));

    /// <summary>
    /// dbias += column sums of dy. Columns are split into tiles (one or more per thread); each tile sums its
    /// rows in blocks of <see cref="BiasGradKernel.RowBlock"/> into a float partial, then adds the block partial
    /// to a running total. The order depends only on the shape, so the result is bit-identical for any thread
    /// count, and the two-level sum keeps float error at O((RowBlock + rows/RowBlock)·ε) instead of O(rows·ε).
    /// </summary>
    public static void BiasGrad(CpuDevice d, Tensor dy, Tensor dbias, int rows, int cols)
    {
        long work = (long)rows * cols;
        int threads = (int)Math.Clamp(work / CpuParallel.ElementGrain, 1, d.Threads);
        int tile = (cols + threads - 1) / threads;
        tile = Math.Clamp((tile + 15) / 16 * 16, 16, BiasGradKernel.MaxTile);
        int tiles = (cols + tile - 1) / tile;
        CpuParallel.For(d, tiles, threads > 1 ? 1 : tiles, new BiasGradKernel(dy.HostPointer, dbias.HostPointer, rows, cols, tile));
    }

    private readonly struct AddKernel(float* x, float* y, float* z) : IRangeKernel
    {
        public void Execute(int start, int count) =>
            TensorPrimitives.Add(new ReadOnlySpan<float>(x + start, count), new ReadOnlySpan<float>(y + start, count), new Span<float>(z + start, count));
    }

    private readonly struct MultiplyKernel(float* x, float* y, float* z) : IRangeKernel
    {
        public void Execute(int start, int count) =>
            TensorPrimitives.Multiply(new ReadOnlySpan<float>(x + start, count), new ReadOnlySpan<float>(y + start, count), new Span<float>(z + start, count));
    }

    private readonly struct ScaleKernel(float* x, float alpha, float* y) : IRangeKernel
    {
        public void Execute(int start, int count) =>
            TensorPrimitives.Multiply(new ReadOnlySpan<float>(x + start, count), alpha, new Span<float>(y + start, count));
    }

    private readonly struct AxpyKernel(float alpha, float* x, float* y) : IRangeKernel
    {
        public void Execute(int start, int count)
        {
            var ys = new Span<float>(y + start, count);
            TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(x + start, count), alpha, ys, ys);
        }
    }

    /// <summary>Rows [start, start + count): y_row = x_row + bias.</summary>
    private readonly struct BiasAddKernel(float* x, float* bias, float* y, int cols) : IRangeKernel
    {
        public void Execute(int start, int count)
        {
            var b = new ReadOnlySpan<float>(bias, cols);
            for (int r = start; r < start + count; r++)
            {
                long o = (long)r * cols;
                TensorPrimitives.Add(new ReadOnlySpan<float>(x + o, cols), b, new Span<float>(y + o, cols));
            }
        }
    }

    /// <summary>Column tiles [start, start + count) of width <c>tile</c>.</summary>
    private readonly struct BiasGradKernel(float* dy, float* dbias, int rows, int cols, int tile) : IRangeKernel
    {
        public const int MaxTile = 512;
        public const int RowBlock = 64;

        public void Execute(int start, int count)
        {
            Span<float> partial = stackalloc float[MaxTile];
            Span<float> total = stackalloc float[MaxTile];
            for (int t = start; t < start + count; t++)
            {
                int c0 = t * tile, w = Math.Min(tile, cols - c0);
                var p = partial[..w];
                var s = total[..w];
                s.Clear();
                for (int r0 = 0; r0 < rows; r0 += RowBlock)
                {
                    int r1 = Math.Min(rows, r0 + RowBlock);
                    new ReadOnlySpan<float>(dy + (long)r0 * cols + c0, w).CopyTo(p);
                    for (int r = r0 + 1; r < r1; r++)
                        TensorPrimitives.Add(p, new ReadOnlySpan<float>(dy + (long)r * cols + c0, w), p);
                    TensorPrimitives.Add(s, p, s);
                }
                var db = new Span<float>(dbias + c0, w);
                TensorPrimitives.Add(db, s, db);
            }
        }
    }
}
