using BenchmarkDotNet.Attributes;
using CrateIL.Compute.Devices;
using CrateIL.Nn.Optim;
using CrateIL.Nn.Parameters;

namespace CrateIL.Benchmarks;

/// <summary>
/// One optimizer step (and gradient clipping) over a CRATE-T-like store (5.7 M parameters; norms and biases
/// excluded from decay, so the CPU path walks many decay runs) on the CPU device, against a plain one-thread scalar
/// AdamW loop over the same arrays.
/// Run: dotnet run -c Release --project benchmarks -- --filter '*OptimizerBenchmarks*' --job short
/// </summary>
[MemoryDiagnoser]
public class OptimizerBenchmarks
{
    private CpuDevice _device = null!;
    private ParameterStore _store = null!;
    private AdamW _adamW = null!;
    private Lion _lion = null!;
    private Sgd _sgd = null!;
    private GradientClipper _clipper = null!;
    private float[] _p = null!, _g = null!, _m = null!, _v = null!;

    [GlobalSetup]
    public void Setup()
    {
        _device = CpuDevice.Create();
        _store = new ParameterStore();
        // 12 blocks of CRATE-T-like width 384: qkv, out-proj + bias, ISTA dictionary, two LayerNorms.
        const int dim = 384;
        for (int l = 0; l < 12; l++)
        {
            _store.Add($"l{l}.norm1.weight", [dim], ParameterInit.Ones, decay: false);
            _store.Add($"l{l}.norm1.bias", [dim], ParameterInit.Zeros, decay: false);
            _store.Add($"l{l}.qkv.weight", [dim, dim], ParameterInit.UniformFanIn, dim);
            _store.Add($"l{l}.out.weight", [dim, dim], ParameterInit.UniformFanIn, dim);
            _store.Add($"l{l}.out.bias", [dim], ParameterInit.Zeros, decay: false);
            _store.Add($"l{l}.norm2.weight", [dim], ParameterInit.Ones, decay: false);
            _store.Add($"l{l}.norm2.bias", [dim], ParameterInit.Zeros, decay: false);
            _store.Add($"l{l}.ista.weight", [dim, dim], ParameterInit.KaimingUniform, dim);
        }
        _store.Add("head.weight", [1000, dim], ParameterInit.UniformFanIn, dim);
        _store.Add("head.bias", [1000], ParameterInit.Zeros, decay: false);
        _store.Build(_device, seed: 1);
        var r = new Random(2);
        var grads = _store.Grads.AsSpan();
        for (int i = 0; i < grads.Length; i++) grads[i] = (float)(r.NextDouble() - 0.5) * 1e-3f;
        _adamW = new AdamW(_store, 4e-4, 0.1, decayScope: WeightDecayScope.DecayFlaggedOnly);
        _lion = new Lion(_store, 2e-4, 0.05, decayScope: WeightDecayScope.DecayFlaggedOnly);
        _sgd = new Sgd(_store, 1e-3, momentum: 0.9, weightDecay: 1e-4, nesterov: true, decayScope: WeightDecayScope.DecayFlaggedOnly);
        _clipper = new GradientClipper(_device);
        _p = _store.Values.ToArray();
        _g = _store.Grads.ToArray();
        _m = new float[_p.Length];
        _v = new float[_p.Length];
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _adamW.Dispose();
        _lion.Dispose();
        _sgd.Dispose();
        _clipper.Dispose();
        _store.Dispose();
        _device.Dispose();
    }

    public long Parameters => _store.Count;

    [Benchmark] public void AdamWStep() => _adamW.Step();
    [Benchmark] public void LionStep() => _lion.Step();
    [Benchmark] public void SgdNesterovStep() => _sgd.Step();

    /// <summary>Global L2 norm only (max norm far above it, so nothing is scaled).</summary>
    [Benchmark] public float GradNorm() => _clipper.Clip(_store, 1e30f);

    /// <summary>Yardstick: the same AdamW update as a plain scalar loop on one thread.</summary>
    [Benchmark(Baseline = true)]
    public void ScalarAdamWOneThread()
    {
        const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, lr = 4e-4f, decay = 1f - 4e-4f * 0.1f;
        for (int i = 0; i < _p.Length; i++)
        {
            float g = _g[i];
            _m[i] = _m[i] * b1 + g * (1 - b1);
            _v[i] = _v[i] * b2 + (1 - b2) * g * g;
            _p[i] = _p[i] * decay - lr * _m[i] / (MathF.Sqrt(_v[i]) + eps);
        }
    }
}
