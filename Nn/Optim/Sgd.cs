using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;
using CrateIL.Nn.Parameters;

namespace CrateIL.Nn.Optim;

/// <summary>
/// SGD with PyTorch's semantics: d = g + wd·p (coupled weight decay); with momentum μ the buffer starts as d on
/// the first step and then b ← μb + (1−dampening)·d; Nesterov uses d + μb, plain momentum uses b; p ← p − lr·d.
/// State: <c>momentum_buffer</c> (only with momentum &gt; 0).
/// </summary>
public sealed class Sgd : Optimizer
{
    private readonly Tensor? _buffer;
    private readonly OptimizerState[] _state;
    private CpuUpdateJob<SgdRule>? _cpuJob;

    public Sgd(ParameterStore store, double learningRate, double momentum = 0, double dampening = 0,
        double weightDecay = 0, bool nesterov = false, WeightDecayScope decayScope = WeightDecayScope.AllParameters)
        : base(store, learningRate, weightDecay, decayScope)
    {
        CheckNonNegative(nameof(momentum), momentum);
        if (!(dampening >= 0 && dampening <= 1)) throw new ArgumentOutOfRangeException(nameof(dampening), dampening, "SGD: dampening must be in [0, 1]");
        if (nesterov && (momentum <= 0 || dampening != 0))
            throw new ArgumentException("SGD: Nesterov momentum requires a positive momentum and zero dampening", nameof(nesterov));
        Momentum = momentum;
        Dampening = dampening;
        Nesterov = nesterov;
        if (momentum > 0)
        {
            _buffer = Device.Zeros((int)store.Values.Length);
            _state = [new("momentum_buffer", _buffer)];
        }
        else _state = [];
    }

    public double Momentum { get; }
    public double Dampening { get; }
    public bool Nesterov { get; }

    public override IReadOnlyList<OptimizerState> State => _state;

    private protected override unsafe void Update(long step)
    {
        var s = new SgdScalars((float)WeightDecay, (float)Momentum, (float)(1.0 - Dampening), (float)-LearningRate,
            first: step == 1, Nesterov, _buffer is not null, (int)Decay.Mode);
        var p = Store.Values;
        var g = Store.Grads;
        switch (Device)
        {
            case CpuDevice cpu:
                (_cpuJob ??= new CpuUpdateJob<SgdRule>(Decay, (int)p.Length)).Run(cpu,
                    new SgdRule(p.HostPointer, g.HostPointer, _buffer is null ? null : _buffer.HostPointer, s));
                break;
            case IlgpuDevice gpu:
                gpu.Kernels<OptimizerKernels>().Sgd(gpu, Decay, p, g, _buffer, s);
                break;
            default:
                throw new NotSupportedException($"SGD has no implementation for device {Device.Spec}");
        }
    }
}
