using CrateIL.Compute.Devices;
using CrateIL.Compute.Ilgpu;
using CrateIL.Compute.Ops;
using CrateIL.Compute.Tensors;
using ILGPU;
using ILGPU.Runtime;

namespace CrateIL.Nn.Layers;

/// <summary>Dropout on ILGPU: one grid-stride kernel evaluating the same hash as the host.</summary>
internal static class DropoutIlgpu
{
    public static void Apply(IlgpuDevice device, Tensor x, Tensor y, DropoutArgs args) =>
        device.Kernels<DropoutKernels>().Apply(GridStride.Config(device, x.Length), x.View, y.View, args);
}

internal sealed class DropoutKernels : IKernelSet<DropoutKernels>
{
    public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, DropoutArgs> Apply;

    private DropoutKernels(Accelerator a) =>
        Apply = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, DropoutArgs>(ApplyKernel);

    public static DropoutKernels Load(Accelerator accelerator) => new(accelerator);

    [IlgpuKernel(Grouping.Explicit)]
    internal static void ApplyKernel(ArrayView<float> x, ArrayView<float> y, DropoutArgs a)
    {
        int n = x.IntLength, stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < n; i += stride)
            y[i] = DropoutHash.Hash((uint)i, a.K0, a.K1) >= a.Threshold ? x[i] * a.Scale : 0f;
    }
}
