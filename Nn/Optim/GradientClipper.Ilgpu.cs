using CrateIL.Compute.Devices;
using CrateIL.Compute.Ilgpu;
using CrateIL.Compute.Ops;
using CrateIL.Compute.Tensors;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace CrateIL.Nn.Optim;

/// <summary>
/// The clip step of <see cref="GradientClipper"/> on ILGPU: every thread reads the norm the reduction left in device
/// memory, computes torch's coefficient min(1, max/(norm + 1e-6)) in float32 exactly as
/// <see cref="GradientClipper.Coefficient"/> does, and scales its grid-stride share of the gradients when the norm is
/// finite and the coefficient below 1 (the same product as <c>Elementwise.Scale</c>, so both paths give the same bits).
/// </summary>
internal sealed class GradientClipKernels : IKernelSet<GradientClipKernels>
{
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, float> _clip;

    private GradientClipKernels(Accelerator a) =>
        _clip = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, float>(ClipKernel);

    public static GradientClipKernels Load(Accelerator accelerator) => new(accelerator);

    public static void Apply(IlgpuDevice device, Tensor grads, Tensor norm, float maxNorm)
    {
        RowOpChecks.FitsIlgpuIndex("GradientClipper", nameof(grads), grads);
        if (grads.Length == 0) return;
        device.Kernels<GradientClipKernels>()._clip(GridStride.Config(device, grads.Length), grads.View, norm.View, maxNorm);
    }

    [IlgpuKernel(Grouping.Explicit)]
    internal static void ClipKernel(ArrayView<float> grads, ArrayView<float> norm, float maxNorm)
    {
        float n = norm[0];
        float coefficient = XMath.Min(1f, maxNorm / (n + 1e-6f));
        if (!XMath.IsFinite(n) || !(coefficient < 1f)) return;
        int count = grads.IntLength, stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < count; i += stride) grads[i] = coefficient * grads[i];
    }
}
