using CrateIL.Compute.Cpu;
using CrateIL.Compute.Devices;
using CrateIL.Compute.Ilgpu;
using CrateIL.Compute.Tensors;
using ILGPU;
using ILGPU.Runtime;

namespace CrateIL.Compute.Ops;

/// <summary>
/// ILGPU activations: one generic grid-stride kernel per arity, instantiated with the same operator structs the CPU
/// path runs (<see cref="IUnaryOperator"/>, <see cref="IBinaryOperator"/>; their scalar <c>Invoke</c> is
/// <see cref="ActivationMath"/>), launched by <see cref="GridStride"/>. The math is written once for both backends.
/// </summary>
internal static class ActivationsIlgpu
{
    public static void Relu(IlgpuDevice d, Tensor x, Tensor y) => Unary(d, x, y, new ReluOp());

    public static void PositiveMask(IlgpuDevice d, Tensor dy, Tensor s, Tensor dx) => Binary(d, dy, s, dx, new PositiveMaskOp());

    public static void NonZeroMask(IlgpuDevice d, Tensor dy, Tensor y, Tensor dx) => Binary(d, dy, y, dx, new NonZeroMaskOp());

    public static void SoftThreshold(IlgpuDevice d, Tensor x, Tensor y, float t, ThresholdKind kind)
    {
        if (kind == ThresholdKind.OneSided) Unary(d, x, y, new SoftThresholdOp(t));
        else Unary(d, x, y, new SymmetricSoftThresholdOp(t));
    }

    public static void SoftThresholdBackward(IlgpuDevice d, Tensor dy, Tensor x, Tensor dx, float t, ThresholdKind kind)
    {
        if (kind == ThresholdKind.OneSided) Binary(d, dy, x, dx, new SoftThresholdGradOp(t));
        else Binary(d, dy, x, dx, new SymmetricSoftThresholdGradOp(t));
    }

    public static void Gelu(IlgpuDevice d, Tensor x, Tensor y, GeluForm form)
    {
        if (form == GeluForm.Tanh) Unary(d, x, y, new GeluTanhOp());
        else Unary(d, x, y, new GeluErfOp());
    }

    public static void GeluBackward(IlgpuDevice d, Tensor dy, Tensor x, Tensor dx, GeluForm form)
    {
        if (form == GeluForm.Tanh) Binary(d, dy, x, dx, new GeluTanhGradOp());
        else Binary(d, dy, x, dx, new GeluErfGradOp());
    }

    /// <summary>Erf approximation over a buffer (accuracy tests of the device code path).</summary>
    internal static void Erf(IlgpuDevice d, Tensor x, Tensor y) => Unary(d, x, y, new ErfOp());

    private static void Unary<TOp>(IlgpuDevice d, Tensor x, Tensor y, TOp op) where TOp : struct, IUnaryOperator =>
        d.Kernels<ActivationKernels>().Unary<TOp>()(GridStride.Config(d, x.Length), x.View, y.View, op);

    private static void Binary<TOp>(IlgpuDevice d, Tensor a, Tensor b, Tensor z, TOp op) where TOp : struct, IBinaryOperator =>
        d.Kernels<ActivationKernels>().Binary<TOp>()(GridStride.Config(d, a.Length), a.View, b.View, z.View, op);
}

/// <summary>
/// The activation kernels of one accelerator: <see cref="UnaryKernel{TOp}"/> and <see cref="BinaryKernel{TOp}"/>,
/// compiled per operator on first use (not all at load), so a process that only needs ReLU never compiles GELU.
/// </summary>
internal sealed class ActivationKernels : IKernelSet<ActivationKernels>
{
    private readonly Accelerator _a;
    private readonly Dictionary<Type, Delegate> _loaded = new();

    private ActivationKernels(Accelerator a) => _a = a;

    public static ActivationKernels Load(Accelerator accelerator) => new(accelerator);

    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, TOp> Unary<TOp>() where TOp : struct, IUnaryOperator
    {
        lock (_loaded)
        {
            if (!_loaded.TryGetValue(typeof(TOp), out var kernel))
                _loaded.Add(typeof(TOp), kernel = _a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, TOp>(UnaryKernel));
            return (Action<KernelConfig, ArrayView<float>, ArrayView<float>, TOp>)kernel;
        }
    }

    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, TOp> Binary<TOp>() where TOp : struct, IBinaryOperator
    {
        lock (_loaded)
        {
            if (!_loaded.TryGetValue(typeof(TOp), out var kernel))
                _loaded.Add(typeof(TOp), kernel = _a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, TOp>(BinaryKernel));
            return (Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, TOp>)kernel;
        }
    }

    /// <summary>y[i] = op(x[i]), grid-stride.</summary>
    [IlgpuKernel(Grouping.Explicit)]
    internal static void UnaryKernel<TOp>(ArrayView<float> x, ArrayView<float> y, TOp op) where TOp : struct, IUnaryOperator
    {
        int n = x.IntLength, stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < n; i += stride) y[i] = op.Invoke(x[i]);
    }

    /// <summary>z[i] = op(a[i], b[i]), grid-stride.</summary>
    [IlgpuKernel(Grouping.Explicit)]
    internal static void BinaryKernel<TOp>(ArrayView<float> a, ArrayView<float> b, ArrayView<float> z, TOp op) where TOp : struct, IBinaryOperator
    {
        int n = a.IntLength, stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < n; i += stride) z[i] = op.Invoke(a[i], b[i]);
    }
}
