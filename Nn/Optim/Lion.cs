using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;
using CrateIL.Nn.Parameters;

namespace CrateIL.Nn.Optim;

/// <summary>
/// Lion as the CRATE reference implements it: p ← p·(1 − lr·wd); u = sign(β₁m + (1−β₁)g); p ← p − lr·u;
/// m ← β₂m + (1−β₂)g, with sign(0) = 0 as torch.sign. State: <c>exp_avg</c> (m).
/// </summary>
public sealed class Lion : Optimizer
{
    private readonly Tensor _m;
    private readonly OptimizerState[] _state;
    private CpuUpdateJob<LionRule>? _cpuJob;

    public Lion(ParameterStore store, double learningRate = 1e-4, double weightDecay = 0,
        double beta1 = 0.9, double beta2 = 0.99, WeightDecayScope decayScope = WeightDecayScope.AllParameters)
        : base(store, learningRate, weightDecay, decayScope)
    {
        CheckBeta(nameof(beta1), beta1);
        CheckBeta(nameof(beta2), beta2);
        Beta1 = beta1;
        Beta2 = beta2;
        _m = Device.Zeros((int)store.Values.Length);
        _state = [new("exp_avg", _m)];
    }

    public double Beta1 { get; }
    public double Beta2 { get; }

    public override IReadOnlyList<OptimizerState> State => _state;

    private protected override unsafe void Update(long step)
    {
        var s = new LionScalars(DecayFactor, (float)Beta1, (float)(1.0 - Beta1), (float)Beta2, (float)(1.0 - Beta2),
            (float)-LearningRate, (int)Decay.Mode);
        var p = Store.Values;
        var g = Store.Grads;
        switch (Device)
        {
            case CpuDevice cpu:
                (_cpuJob ??= new CpuUpdateJob<LionRule>(Decay, (int)p.Length)).Run(cpu, new LionRule(p.HostPointer, g.HostPointer, _m.HostPointer, s));
                break;
            case IlgpuDevice gpu:
                gpu.Kernels<OptimizerKernels>().Lion(gpu, Decay, p, g, _m, s);
                break;
            default:
                throw new NotSupportedException($"Lion has no implementation for device {Device.Spec}");
        }
    }
}
