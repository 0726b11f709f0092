using CrateIL.Compute.Devices;
using CrateIL.Compute.Ilgpu;
using CrateIL.Compute.Ops;
using CrateIL.Compute.Tensors;
using ILGPU;
using ILGPU.Runtime;

namespace CrateIL.Nn.Layers;

/// <summary>Token pooling on ILGPU: thread per pooled element (sums tokens in order) and per input-gradient element.</summary>
internal static class HeadIlgpu
{
    public static void Pool(IlgpuDevice d, Tensor x, Tensor pooled, PoolArgs a) =>
        d.Kernels<HeadKernels>().Pool(GridStride.Config(d, (long)a.Batch * a.Dim), x.View, pooled.View, a);

    public static void Unpool(IlgpuDevice d, Tensor dPooled, Tensor dx, PoolArgs a) =>
        d.Kernels<HeadKernels>().Unpool(GridStride.Config(d, dx.Length), dPooled.View, dx.View, a);
}

internal sealed class HeadKernels : IKernelSet<HeadKernels>
{
    public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, PoolArgs> Pool, Unpool;

    private HeadKernels(Accelerator a)
    {
        Pool = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, PoolArgs>(PoolKernel);
        Unpool = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, PoolArgs>(UnpoolKernel);
    }

    public static HeadKernels Load(Accelerator accelerator) => new(accelerator);

    /// <summary>pooled[b, j] = x[b, 0, j] (cls) or Σ_t x[b, t, j] / T (mean).</summary>
    [IlgpuKernel(Grouping.Explicit)]
    internal static void PoolKernel(ArrayView<float> x, ArrayView<float> pooled, PoolArgs a)
    {
        int total = a.Batch * a.Dim, stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < total; i += stride)
        {
            int j = i % a.Dim, b = i / a.Dim;
            int first = b * a.Tokens * a.Dim + j;
            if (a.Mean == 0)
            {
                pooled[i] = x[first];
            }
            else
            {
                float sum = 0f;
                for (int t = 0; t < a.Tokens; t++) sum += x[first + t * a.Dim];
                pooled[i] = sum / a.Tokens;
            }
        }
    }

    /// <summary>dx[b, t, j] = (t = 0 ? dpooled[b, j] : 0) for cls, dpooled[b, j] / T for mean.</summary>
    [IlgpuKernel(Grouping.Explicit)]
    internal static void UnpoolKernel(ArrayView<float> dPooled, ArrayView<float> dx, PoolArgs a)
    {
        int total = a.Batch * a.Tokens * a.Dim, stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < total; i += stride)
        {
            int j = i % a.Dim, row = i / a.Dim;
            int t = row % a.Tokens, b = row / a.Tokens;
            float g = dPooled[b * a.Dim + j];
            dx[i] = a.Mean != 0 ? g / a.Tokens : t == 0 ? g : 0f;
        }
    }
}
