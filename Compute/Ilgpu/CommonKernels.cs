using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;
using ILGPU;
using ILGPU.Runtime;

namespace CrateIL.Compute.Ilgpu;

/// <summary>Small utility kernels shared by tensors and ops.</summary>
internal sealed class CommonKernels : IKernelSet<CommonKernels>
{
    private readonly Action<Index1D, ArrayView<float>, float> _fill;

    private CommonKernels(Accelerator a)
    {
        _fill = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, float>(FillKernel);
    }

    public static CommonKernels Load(Accelerator accelerator) => new(accelerator);

    public void Fill(Tensor t, float value) => _fill((int)t.Length, t.View, value);

    [IlgpuKernel(Grouping.Implicit)]
    internal static void FillKernel(Index1D i, ArrayView<float> x, float value) => x[i] = value;
}
