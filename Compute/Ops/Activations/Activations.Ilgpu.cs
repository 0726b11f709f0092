using CrateIL.Compute.Devices;
using CrateIL.Compute.Ilgpu;
using CrateIL.Compute.Tensors;
using ILGPU;
using ILGPU.Runtime;

namespace CrateIL.Compute.Ops;

/// <summary>ILGPU activations: grid-stride kernels over <see cref="ActivationMath"/>, launched by <see cref="GridStride"/>.</summary>
internal static class ActivationsIlgpu
{
    public static void Relu(IlgpuDevice d, Tensor x, Tensor y) =>
        d.Kernels<ActivationKernels>().Relu(GridStride.Config(d, x.Length), x.View, y.View);

    public static void PositiveMask(IlgpuDevice d, Tensor dy, Tensor s, Tensor dx) =>
        d.Kernels<ActivationKernels>().PositiveMask(GridStride.Config(d, dy.Length), dy.View, s.View, dx.View);

    public static void NonZeroMask(IlgpuDevice d, Tensor dy, Tensor y, Tensor dx) =>
        d.Kernels<ActivationKernels>().NonZeroMask(GridStride.Config(d, dy.Length), dy.View, y.View, dx.View);

    public static void SoftThreshold(IlgpuDevice d, Tensor x, Tensor y, float t, ThresholdKind kind)
    {
        var k = d.Kernels<ActivationKernels>();
        var launch = kind == ThresholdKind.OneSided ? k.SoftThreshold : k.SymmetricSoftThreshold;
        launch(GridStride.Config(d, x.Length), x.View, y.View, t);
    }

    public static void SoftThresholdBackward(IlgpuDevice d, Tensor dy, Tensor x, Tensor dx, float t, ThresholdKind kind)
    {
        var k = d.Kernels<ActivationKernels>();
        var launch = kind == ThresholdKind.OneSided ? k.SoftThresholdGrad : k.SymmetricSoftThresholdGrad;
        launch(GridStride.Config(d, dy.Length), dy.View, x.View, dx.View, t);
    }

    public static void Gelu(IlgpuDevice d, Tensor x, Tensor y, GeluForm form)
    {
        var k = d.Kernels<ActivationKernels>();
        var launch = form == GeluForm.Tanh ? k.GeluTanh : k.GeluErf;
        launch(GridStride.Config(d, x.Length), x.View, y.View);
    }

    public static void GeluBackward(IlgpuDevice d, Tensor dy, Tensor x, Tensor dx, GeluForm form)
    {
        var k = d.Kernels<ActivationKernels>();
        var launch = form == GeluForm.Tanh ? k.GeluTanhGrad : k.GeluErfGrad;
        launch(GridStride.Config(d, dy.Length), dy.View, x.View, dx.View);
    }

    /// <summary>Erf approximation over a buffer (accuracy tests of the device code path).</summary>
    internal static void Erf(IlgpuDevice d, Tensor x, Tensor y) =>
        d.Kernels<ActivationKernels>().Erf(GridStride.Config(d, x.Length), x.View, y.View);
}

/// <summary>
/// The activation kernels of one accelerator. Each kernel is compiled on first use (not all at load), so a
/// process that only needs ReLU never pays for compiling GELU.
/// </summary>
internal sealed class ActivationKernels : IKernelSet<ActivationKernels>
{
    private readonly Accelerator _a;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>>? _relu, _geluTanh, _geluErf, _erf;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>>? _positiveMask, _nonZeroMask, _geluTanhGrad, _geluErfGrad;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, float>? _softThreshold, _symmetricSoftThreshold;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, float>? _softThresholdGrad, _symmetricSoftThresholdGrad;

    private ActivationKernels(Accelerator a) => _a = a;

    public static ActivationKernels Load(Accelerator accelerator) => new(accelerator);

    public Action<KernelConfig, ArrayView<float>, ArrayView<float>> Relu => _relu ??= Unary(ReluKernel);
    public Action<KernelConfig, ArrayView<float>, ArrayView<float>> GeluTanh => _geluTanh ??= Unary(GeluTanhKernel);
    public Action<KernelConfig, ArrayView<float>, ArrayView<float>> GeluErf => _geluErf ??= Unary(GeluErfKernel);
    public Action<KernelConfig, ArrayView<float>, ArrayView<float>> Erf => _erf ??= Unary(ErfKernel);
    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>> PositiveMask => _positiveMask ??= Binary(PositiveMaskKernel);
    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>> NonZeroMask => _nonZeroMask ??= Binary(NonZeroMaskKernel);
    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>> GeluTanhGrad => _geluTanhGrad ??= Binary(GeluTanhGradKernel);
    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>> GeluErfGrad => _geluErfGrad ??= Binary(GeluErfGradKernel);
    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, float> SoftThreshold =>
        _softThreshold ??= _a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, float>(SoftThresholdKernel);
    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, float> SymmetricSoftThreshold =>
        _symmetricSoftThreshold ??= _a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, float>(SymmetricSoftThresholdKernel);
    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, float> SoftThresholdGrad =>
        _softThresholdGrad ??= _a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, float>(SoftThresholdGradKernel);
    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, float> SymmetricSoftThresholdGrad =>
        _symmetricSoftThresholdGrad ??= _a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, float>(SymmetricSoftThresholdGradKernel);

    private Action<KernelConfig, ArrayView<float>, ArrayView<float>> Unary(Action<ArrayView<float>, ArrayView<float>> kernel) =>
        _a.LoadStreamKernel(kernel);

    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>> Binary(Action<ArrayView<float>, ArrayView<float>, ArrayView<float>> kernel) =>
        _a.LoadStreamKernel(kernel);

    [IlgpuKernel(Grouping.Explicit)]
    internal static void ReluKernel(ArrayView<float> x, ArrayView<float> y)
    {
        int n = x.IntLength, stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < n; i += stride) y[i] = ActivationMath.Relu(x[i]);
    }

    [IlgpuKernel(Grouping.Explicit)]
    internal static void PositiveMaskKernel(ArrayView<float> dy, ArrayView<float> s, ArrayView<float> dx)
    {
        int n = dy.IntLength, stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < n; i += stride) dx[i] = ActivationMath.ReluGrad(dy[i], s[i]);
    }

    [IlgpuKernel(Grouping.Explicit)]
    internal static void NonZeroMaskKernel(ArrayView<float> dy, ArrayView<float> y, ArrayView<float> dx)
    {
        int n = dy.IntLength, stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < n; i += stride) dx[i] = ActivationMath.NonZeroGrad(dy[i], y[i]);
    }

    [IlgpuKernel(Grouping.Explicit)]
    internal static void SoftThresholdKernel(ArrayView<float> x, ArrayView<float> y, float t)
    {
        int n = x.IntLength, stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < n; i += stride) y[i] = ActivationMath.SoftThreshold(x[i], t);
    }

    [IlgpuKernel(Grouping.Explicit)]
    internal static void SymmetricSoftThresholdKernel(ArrayView<float> x, ArrayView<float> y, float t)
    {
        int n = x.IntLength, stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < n; i += stride) y[i] = ActivationMath.SoftThresholdSymmetric(x[i], t);
    }

    [IlgpuKernel(Grouping.Explicit)]
    internal static void SoftThresholdGradKernel(ArrayView<float> dy, ArrayView<float> x, ArrayView<float> dx, float t)
    {
        int n = dy.IntLength, stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < n; i += stride) dx[i] = ActivationMath.SoftThresholdGrad(dy[i], x[i], t);
    }

    [IlgpuKernel(Grouping.Explicit)]
    internal static void SymmetricSoftThresholdGradKernel(ArrayView<float> dy, ArrayView<float> x, ArrayView<float> dx, float t)
    {
        int n = dy.IntLength, stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < n; i += stride) dx[i] = ActivationMath.SoftThresholdSymmetricGrad(dy[i], x[i], t);
    }

    [IlgpuKernel(Grouping.Explicit)]
    internal static void GeluTanhKernel(ArrayView<float> x, ArrayView<float> y)
    {
        int n = x.IntLength, stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < n; i += stride) y[i] = ActivationMath.GeluTanh(x[i]);
    }

    [IlgpuKernel(Grouping.Explicit)]
    internal static void GeluTanhGradKernel(ArrayView<float> dy, ArrayView<float> x, ArrayView<float> dx)
    {
        int n = dy.IntLength, stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < n; i += stride) dx[i] = ActivationMath.GeluTanhGrad(dy[i], x[i]);
    }

    [IlgpuKernel(Grouping.Explicit)]
    internal static void GeluErfKernel(ArrayView<float> x, ArrayView<float> y)
    {
        int n = x.IntLength, stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < n; i += stride) y[i] = ActivationMath.GeluErf(x[i]);
    }

    [IlgpuKernel(Grouping.Explicit)]
    internal static void GeluErfGradKernel(ArrayView<float> dy, ArrayView<float> x, ArrayView<float> dx)
    {
        int n = dy.IntLength, stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < n; i += stride) dx[i] = ActivationMath.GeluErfGrad(dy[i], x[i]);
    }

    [IlgpuKernel(Grouping.Explicit)]
    internal static void ErfKernel(ArrayView<float> x, ArrayView<float> y)
    {
        int n = x.IntLength, stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < n; i += stride) y[i] = ActivationMath.Erf(x[i]);
    }
}
