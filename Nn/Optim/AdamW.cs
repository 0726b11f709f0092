using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;
using CrateIL.Nn.Parameters;

namespace CrateIL.Nn.Optim;

/// <summary>
/// AdamW with PyTorch's semantics (decoupled weight decay, bias corrections with the step count t):
/// p ← p·(1 − lr·wd); m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; p ← p − lr/(1−β₁ᵗ) · m / (√v / √(1−β₂ᵗ) + ε).
/// State: <c>exp_avg</c> (m) and <c>exp_avg_sq</c> (v).
/// </summary>
public sealed class AdamW : Optimizer
{
    private readonly Tensor _m, _v;
    private readonly OptimizerState[] _state;
    private CpuUpdateJob<AdamWRule>? _cpuJob;

    public AdamW(ParameterStore store, double learningRate = 1e-3, double weightDecay = 1e-2,
        double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
        WeightDecayScope decayScope = WeightDecayScope.AllParameters)
        : base(store, learningRate, weightDecay, decayScope)
    {
        CheckBeta(nameof(beta1), beta1);
        CheckBeta(nameof(beta2), beta2);
        if (!(eps > 0) || double.IsInfinity(eps)) throw new ArgumentOutOfRangeException(nameof(eps), eps, "AdamW: eps must be finite and positive");
        Beta1 = beta1;
        Beta2 = beta2;
        Eps = eps;
        int n = (int)store.Values.Length;
        _m = Device.Zeros(n);
        _v = Device.Zeros(n);
        _state = [new("exp_avg", _m), new("exp_avg_sq", _v)];
    }

    public double Beta1 { get; }
    public double Beta2 { get; }
    public double Eps { get; }

    public override IReadOnlyList<OptimizerState> State => _state;

    private protected override unsafe void Update(long step)
    {
        double bc1 = 1.0 - Math.Pow(Beta1, step);
        double bc2 = 1.0 - Math.Pow(Beta2, step);
        var s = new AdamWScalars(DecayFactor, (float)Beta1, (float)(1.0 - Beta1), (float)Beta2, (float)(1.0 - Beta2),
            (float)Math.Sqrt(bc2), (float)Eps, (float)(-(LearningRate / bc1)), (int)Decay.Mode);
        var p = Store.Values;
        var g = Store.Grads;
        switch (Device)
        {
            case CpuDevice cpu:
                (_cpuJob ??= new CpuUpdateJob<AdamWRule>(Decay, (int)p.Length)).Run(cpu, new AdamWRule(p.HostPointer, g.HostPointer, _m.HostPointer, _v.HostPointer, s));
                break;
            case IlgpuDevice gpu:
                gpu.Kernels<OptimizerKernels>().AdamW(gpu, Decay, p, g, _m, _v, s);
                break;
            default:
                throw new NotSupportedException($"AdamW has no implementation for device {Device.Spec}");
        }
    }
}
