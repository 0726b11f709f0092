using CrateIL.Compute.Devices;
using CrateIL.Compute.Ilgpu;
using CrateIL.Compute.Tensors;
using ILGPU;
using ILGPU.Runtime;

namespace CrateIL.Compute.Ops;

/// <summary>ILGPU elementwise arithmetic and bias: grid-stride kernels; the bias gradient is a shared-memory tree.</summary>
internal static class ElementwiseIlgpu
{
    public static void Add(IlgpuDevice d, Tensor x, Tensor y, Tensor z) =>
        d.Kernels<ElementwiseKernels>().Add(GridStride.Config(d, x.Length), x.View, y.View, z.View);

    public static void Multiply(IlgpuDevice d, Tensor x, Tensor y, Tensor z) =>
        d.Kernels<ElementwiseKernels>().Multiply(GridStride.Config(d, x.Length), x.View, y.View, z.View);

    public static void Scale(IlgpuDevice d, Tensor x, float alpha, Tensor y) =>
        d.Kernels<ElementwiseKernels>().Scale(GridStride.Config(d, x.Length), x.View, y.View, alpha);

    public static void Axpy(IlgpuDevice d, float alpha, Tensor x, Tensor y) =>
        d.Kernels<ElementwiseKernels>().Axpy(GridStride.Config(d, x.Length), x.View, y.View, alpha);

    public static void BiasAdd(IlgpuDevice d, Tensor x, Tensor bias, Tensor y, int cols) =>
        d.Kernels<ElementwiseKernels>().BiasAdd(GridStride.Config(d, x.Length), x.View, bias.View, y.View, cols);

    /// <summary>
    /// One group per block of <see cref="BiasGradShape.BlockColumns"/> adjacent columns (grid-stride over blocks):
    /// thread (tx, ty) sums rows ty, ty + TY, … of column tx (adjacent threads read adjacent columns), then a
    /// shared-memory tree over ty. Fixed order, no atomics: deterministic and portable to PoCL.
    /// </summary>
    public static void BiasGrad(IlgpuDevice d, Tensor dy, Tensor dbias, int rows, int cols)
    {
        // The tree halves the row stripes, so the group size must be a power of two.
        int group = (int)System.Numerics.BitOperations.RoundUpToPowerOf2(
            (uint)Math.Min(Math.Min(d.RowGroupSize, d.MaxThreadsPerGroup), ElementwiseKernels.MaxGroup) + 1) / 2;
        int blockColumns = Math.Min(BiasGradShape.BlockColumns, group);
        int blocks = (cols + blockColumns - 1) / blockColumns;
        var acc = d.Accelerator;
        int maxGroups = acc.NumMultiprocessors * Math.Max(1, acc.MaxNumThreadsPerMultiprocessor / group);
        var config = new KernelConfig(Math.Clamp(blocks, 1, maxGroups), group);
        d.Kernels<ElementwiseKernels>().BiasGrad(config, dy.View, dbias.View, new BiasGradShape(rows, cols, blockColumns));
    }
}

/// <summary>Shape of a bias-gradient launch (one struct parameter keeps the kernel signature short).</summary>
internal readonly struct BiasGradShape(int rows, int cols, int groupColumns)
{
    /// <summary>Columns per group: 8 floats = one 32-byte memory sector per row stripe.</summary>
    public const int BlockColumns = 8;

    public readonly int Rows = rows;
    public readonly int Cols = cols;
    /// <summary>Columns per group actually used (≤ group size); group size / this = row stripes, a power of two.</summary>
    public readonly int GroupColumns = groupColumns;
}

internal sealed class ElementwiseKernels : IKernelSet<ElementwiseKernels>
{
    /// <summary>Largest group the bias-gradient tree supports (its shared-memory size).</summary>
    public const int MaxGroup = 256;

    private readonly Accelerator _a;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>>? _add, _multiply;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, float>? _scale, _axpy;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>? _biasAdd;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, BiasGradShape>? _biasGrad;

    private ElementwiseKernels(Accelerator a) => _a = a;

    public static ElementwiseKernels Load(Accelerator accelerator) => new(accelerator);

    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>> Add =>
        _add ??= _a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>>(AddKernel);
    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>> Multiply =>
        _multiply ??= _a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>>(MultiplyKernel);
    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, float> Scale =>
        _scale ??= _a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, float>(ScaleKernel);
    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, float> Axpy =>
        _axpy ??= _a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, float>(AxpyKernel);
    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int> BiasAdd =>
        _biasAdd ??= _a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(BiasAddKernel);
    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, BiasGradShape> BiasGrad =>
        _biasGrad ??= _a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, BiasGradShape>(BiasGradKernel);

    [IlgpuKernel(Grouping.Explicit)]
    internal static void AddKernel(ArrayView<float> x, ArrayView<float> y, ArrayView<float> z)
    {
        int n = x.IntLength, stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < n; i += stride) z[i] = x[i] + y[i];
    }

    [IlgpuKernel(Grouping.Explicit)]
    internal static void MultiplyKernel(ArrayView<float> x, ArrayView<float> y, ArrayView<float> z)
    {
        int n = x.IntLength, stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < n; i += stride) z[i] = x[i] * y[i];
    }

    [IlgpuKernel(Grouping.Explicit)]
    internal static void ScaleKernel(ArrayView<float> x, ArrayView<float> y, float alpha)
    {
        int n = x.IntLength, stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < n; i += stride) y[i] = alpha * x[i];
    }

    [IlgpuKernel(Grouping.Explicit)]
    internal static void AxpyKernel(ArrayView<float> x, ArrayView<float> y, float alpha)
    {
        int n = x.IntLength, stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < n; i += stride) y[i] += alpha * x[i];
    }

    [IlgpuKernel(Grouping.Explicit)]
    internal static void BiasAddKernel(ArrayView<float> x, ArrayView<float> bias, ArrayView<float> y, int cols)
    {
        int n = x.IntLength, stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < n; i += stride) y[i] = x[i] + bias[i % cols];
    }

    [IlgpuKernel(Grouping.Explicit)]
    internal static void BiasGradKernel(ArrayView<float> dy, ArrayView<float> dbias, BiasGradShape s)
    {
        var sums = SharedMemory.Allocate<float>(MaxGroup);
        int tid = Group.IdxX;
        int width = s.GroupColumns;
        int stripes = Group.DimX / width;
        int tx = tid % width, ty = tid / width;
        int blocks = (s.Cols + width - 1) / width;
        // Every thread of a group runs the same number of block iterations, so all reach every barrier.
        for (int block = Grid.IdxX; block < blocks; block += Grid.DimX)
        {
            int col = block * width + tx;
            float sum = 0f;
            if (col < s.Cols)
                for (int r = ty; r < s.Rows; r += stripes) sum += dy[r * s.Cols + col];
            sums[tid] = sum;
            Group.Barrier();
            for (int half = stripes / 2; half > 0; half /= 2)
            {
                if (ty < half) sums[tid] += sums[tid + half * width];
                Group.Barrier();
            }
            if (ty == 0 && col < s.Cols) dbias[col] += sums[tx];
            Group.Barrier();
        }
    }
}
