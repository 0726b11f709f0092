using CrateIL.Compute.Devices;
using CrateIL.Compute.Ilgpu;
using CrateIL.Compute.Ops;
using CrateIL.Compute.Tensors;
using ILGPU;
using ILGPU.Runtime;

namespace CrateIL.Nn.Layers;

/// <summary>The ISTA elementwise pieces on ILGPU devices: grid-stride kernels (one launch covers any size).</summary>
internal readonly struct IstaIlgpu(IlgpuDevice device) : IIstaBackend
{
    public void MaskAndCopy(Tensor dy, Tensor p, Tensor dpre, Tensor copy, int n, float threshold, ThresholdKind kind) =>
        device.Kernels<IstaKernels>().MaskAndCopy(GridStride.Config(device, n), dy.View, p.View, dpre.View, copy.View, threshold,
            kind == ThresholdKind.Symmetric ? 1 : 0);

    public void Epilogue(Tensor z, Tensor g, Tensor y, int n, float eta, float threshold, ThresholdKind kind) =>
        device.Kernels<IstaKernels>().Epilogue(GridStride.Config(device, n), z.View, g.View, y.View, eta, threshold,
            kind == ThresholdKind.Symmetric ? 1 : 0);

    public void Symmetrize(Tensor g, Tensor h, Tensor dw, int dim, float eta) =>
        device.Kernels<IstaKernels>().Symmetrize(GridStride.Config(device, (long)dim * dim), g.View, h.View, dw.View, dim, eta);

    public void AddScaled(Tensor a, Tensor b, Tensor o, int n, float eta) =>
        device.Kernels<IstaKernels>().AddScaled(GridStride.Config(device, n), a.View, b.View, o.View, eta);
}

/// <summary>The ISTA kernels of one accelerator, compiled on first use.</summary>
internal sealed class IstaKernels : IKernelSet<IstaKernels>
{
    private readonly Accelerator _a;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, float, int>? _maskAndCopy;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, float, float, int>? _epilogue;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>? _symmetrize;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, float>? _addScaled;

    private IstaKernels(Accelerator a) => _a = a;

    public static IstaKernels Load(Accelerator accelerator) => new(accelerator);

    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, float, int> MaskAndCopy =>
        _maskAndCopy ??= _a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, float, int>(MaskAndCopyKernel);

    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, float, float, int> Epilogue =>
        _epilogue ??= _a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, float, float, int>(EpilogueKernel);

    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float> Symmetrize =>
        _symmetrize ??= _a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>(SymmetrizeKernel);

    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, float> AddScaled =>
        _addScaled ??= _a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, float>(AddScaledKernel);

    /// <summary>dpre = dy ⊙ S_t'(p) into dpre and copy (dy may be either: each element is read before it is written).</summary>
    [IlgpuKernel(Grouping.Explicit)]
    internal static void MaskAndCopyKernel(ArrayView<float> dy, ArrayView<float> p, ArrayView<float> dpre, ArrayView<float> copy, float threshold, int symmetric)
    {
        int n = dy.IntLength, stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < n; i += stride)
        {
            float pi = p[i], d = dy[i];
            float v = symmetric != 0 ? ActivationMath.SoftThresholdSymmetricGrad(d, pi, threshold) : ActivationMath.SoftThresholdGrad(d, pi, threshold);
            dpre[i] = v;
            copy[i] = v;
        }
    }

    /// <summary>p = z + η·g written over g, y = S_t(p) (symmetric ≠ 0: CRATE-sth's two-sided threshold).</summary>
    [IlgpuKernel(Grouping.Explicit)]
    internal static void EpilogueKernel(ArrayView<float> z, ArrayView<float> g, ArrayView<float> y, float eta, float threshold, int symmetric)
    {
        int n = z.IntLength, stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < n; i += stride)
        {
            float p = z[i] + eta * g[i];
            g[i] = p;
            y[i] = symmetric != 0 ? ActivationMath.SoftThresholdSymmetric(p, threshold) : ActivationMath.SoftThreshold(p, threshold);
        }
    }

    /// <summary>h = g + gᵀ and dw += η·g over a dim×dim matrix.</summary>
    [IlgpuKernel(Grouping.Explicit)]
    internal static void SymmetrizeKernel(ArrayView<float> g, ArrayView<float> h, ArrayView<float> dw, int dim, float eta)
    {
        int n = dim * dim, stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < n; i += stride)
        {
            int r = i / dim, c = i - r * dim;
            float gi = g[i];
            h[i] = gi + g[c * dim + r];
            dw[i] += eta * gi;
        }
    }

    /// <summary>o = a + η·b.</summary>
    [IlgpuKernel(Grouping.Explicit)]
    internal static void AddScaledKernel(ArrayView<float> a, ArrayView<float> b, ArrayView<float> o, float eta)
    {
        int n = a.IntLength, stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < n; i += stride) o[i] = a[i] + eta * b[i];
    }
}
