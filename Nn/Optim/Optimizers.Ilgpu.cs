using CrateIL.Compute.Devices;
using CrateIL.Compute.Ilgpu;
using CrateIL.Compute.Ops;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace CrateIL.Nn.Optim;

/// <summary>Per-step AdamW scalars, computed on the host in double and rounded once (one kernel parameter).</summary>
internal readonly struct AdamWScalars(float decayFactor, float beta1, float oneMinusBeta1, float beta2, float oneMinusBeta2,
    float biasCorrection2Sqrt, float eps, float negativeStepSize, int decayMode)
{
    public readonly float DecayFactor = decayFactor;
    public readonly float Beta1 = beta1;
    public readonly float OneMinusBeta1 = oneMinusBeta1;
    public readonly float Beta2 = beta2;
    public readonly float OneMinusBeta2 = oneMinusBeta2;
    public readonly float BiasCorrection2Sqrt = biasCorrection2Sqrt;
    public readonly float Eps = eps;
    /// <summary>−lr / (1 − β₁ᵗ).</summary>
    public readonly float NegativeStepSize = negativeStepSize;
    /// <summary>A <see cref="Optim.DecayMode"/> value (ILGPU kernels only).</summary>
    public readonly int DecayMode = decayMode;
}

internal readonly struct LionScalars(float decayFactor, float beta1, float oneMinusBeta1, float beta2, float oneMinusBeta2,
    float negativeLearningRate, int decayMode)
{
    public readonly float DecayFactor = decayFactor;
    public readonly float Beta1 = beta1;
    public readonly float OneMinusBeta1 = oneMinusBeta1;
    public readonly float Beta2 = beta2;
    public readonly float OneMinusBeta2 = oneMinusBeta2;
    public readonly float NegativeLearningRate = negativeLearningRate;
    public readonly int DecayMode = decayMode;
}

internal readonly struct SgdScalars(float weightDecay, float momentum, float oneMinusDampening, float negativeLearningRate,
    bool first, bool nesterov, bool hasMomentum, int decayMode)
{
    public readonly float WeightDecay = weightDecay;
    public readonly float Momentum = momentum;
    public readonly float OneMinusDampening = oneMinusDampening;
    public readonly float NegativeLearningRate = negativeLearningRate;
    /// <summary>1 on the first step: the momentum buffer starts as a copy of d (PyTorch's <c>buf is None</c>).</summary>
    public readonly int FirstFlag = first ? 1 : 0;
    public readonly int NesterovFlag = nesterov ? 1 : 0;
    public readonly int MomentumFlag = hasMomentum ? 1 : 0;
    public readonly int DecayMode = decayMode;

    public bool First => FirstFlag != 0;
    public bool Nesterov => NesterovFlag != 0;
}

/// <summary>
/// ILGPU update kernels: grid-stride loops (explicitly grouped, <see cref="GridStride"/> launch shape), one launch
/// for the whole store, no atomics. Each thread owns its elements, so results do not depend on the launch shape.
/// With mixed decay flags a float mask (1 = decay) says which elements decay; otherwise the mode is uniform and
/// the mask view is a placeholder that is never read.
/// </summary>
internal sealed class OptimizerKernels : IKernelSet<OptimizerKernels>
{
    private readonly Accelerator _a;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AdamWScalars>? _adamW;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, LionScalars>? _lion;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, SgdScalars>? _sgd;

    private OptimizerKernels(Accelerator a) => _a = a;

    public static OptimizerKernels Load(Accelerator accelerator) => new(accelerator);

    public void AdamW(IlgpuDevice device, DecayLayout decay, Compute.Tensors.Tensor p, Compute.Tensors.Tensor g,
        Compute.Tensors.Tensor m, Compute.Tensors.Tensor v, in AdamWScalars s)
    {
        _adamW ??= _a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AdamWScalars>(AdamWKernel);
        _adamW(GridStride.Config(device, p.Length), p.View, g.View, m.View, v.View, (decay.Mask ?? p).View, s);
    }

    public void Lion(IlgpuDevice device, DecayLayout decay, Compute.Tensors.Tensor p, Compute.Tensors.Tensor g,
        Compute.Tensors.Tensor m, in LionScalars s)
    {
        _lion ??= _a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, LionScalars>(LionKernel);
        _lion(GridStride.Config(device, p.Length), p.View, g.View, m.View, (decay.Mask ?? p).View, s);
    }

    /// <summary><paramref name="buffer"/> is null without momentum (then <paramref name="g"/> stands in, never written).</summary>
    public void Sgd(IlgpuDevice device, DecayLayout decay, Compute.Tensors.Tensor p, Compute.Tensors.Tensor g,
        Compute.Tensors.Tensor? buffer, in SgdScalars s)
    {
        _sgd ??= _a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, SgdScalars>(SgdKernel);
        _sgd(GridStride.Config(device, p.Length), p.View, g.View, (buffer ?? g).View, (decay.Mask ?? p).View, s);
    }

    /// <summary>Whether element <paramref name="i"/> decays under <paramref name="mode"/>.</summary>
    private static bool Decays(int mode, ArrayView<float> mask, int i) =>
        mode == (int)DecayMode.All || (mode == (int)DecayMode.Mixed && mask[i] != 0f);

    [IlgpuKernel(Grouping.Explicit)]
    internal static void AdamWKernel(ArrayView<float> p, ArrayView<float> g, ArrayView<float> m, ArrayView<float> v,
        ArrayView<float> mask, AdamWScalars s)
    {
        int stride = Grid.DimX * Group.DimX, n = p.IntLength;
        for (int i = Grid.GlobalIndex.X; i < n; i += stride)
        {
            float gi = g[i];
            float pi = p[i];
            if (Decays(s.DecayMode, mask, i)) pi *= s.DecayFactor;
            float mi = m[i] * s.Beta1 + gi * s.OneMinusBeta1;
            float vi = v[i] * s.Beta2 + s.OneMinusBeta2 * gi * gi;
            float denom = XMath.Sqrt(vi) / s.BiasCorrection2Sqrt + s.Eps;
            m[i] = mi;
            v[i] = vi;
            p[i] = pi + s.NegativeStepSize * mi / denom;
        }
    }

    [IlgpuKernel(Grouping.Explicit)]
    internal static void LionKernel(ArrayView<float> p, ArrayView<float> g, ArrayView<float> m, ArrayView<float> mask, LionScalars s)
    {
        int stride = Grid.DimX * Group.DimX, n = p.IntLength;
        for (int i = Grid.GlobalIndex.X; i < n; i += stride)
        {
            float gi = g[i], mi = m[i];
            float c = mi * s.Beta1 + gi * s.OneMinusBeta1;
            float sign = c > 0f ? 1f : c < 0f ? -1f : 0f;
            float pi = p[i];
            if (Decays(s.DecayMode, mask, i)) pi *= s.DecayFactor;
            p[i] = pi + s.NegativeLearningRate * sign;
            m[i] = mi * s.Beta2 + gi * s.OneMinusBeta2;
        }
    }

    [IlgpuKernel(Grouping.Explicit)]
    internal static void SgdKernel(ArrayView<float> p, ArrayView<float> g, ArrayView<float> buffer, ArrayView<float> mask, SgdScalars s)
    {
        int stride = Grid.DimX * Group.DimX, n = p.IntLength;
        for (int i = Grid.GlobalIndex.X; i < n; i += stride)
        {
            float pi = p[i], d = g[i];
            if (s.WeightDecay != 0f && Decays(s.DecayMode, mask, i)) d += s.WeightDecay * pi;
            if (s.MomentumFlag != 0)
            {
                float b = s.FirstFlag != 0 ? d : buffer[i] * s.Momentum + s.OneMinusDampening * d;
                buffer[i] = b;
                d = s.NesterovFlag != 0 ? d + s.Momentum * b : b;
            }
            p[i] = pi + s.NegativeLearningRate * d;
        }
    }
}
