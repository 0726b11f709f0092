using BenchmarkDotNet.Attributes;
using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;
using CrateIL.Nn.Layers;
using CrateIL.Nn.Parameters;

namespace CrateIL.Benchmarks;

/// <summary>
/// The CRATE MSSA block (LN → MSSA → residual) on the CPU path at CRATE-T/16 sizes: 197 tokens (224², batch-1
/// inference) and 785 (448²), dim 384, 6 heads of 64, one image, 2 threads (the peer comparison's setting; see benchmarks/RESULTS.md).
/// Backward runs after a forward in the global setup and reuses its saved state each time. <see cref="Fused"/> picks
/// the CPU attention: the fused symmetric kernels (true) or the materialised score/probability path (false).
/// Run: dotnet run -c Release --project benchmarks -- --filter '*MssaBlockBenchmarks*'
/// </summary>
[MemoryDiagnoser]
public class MssaBlockBenchmarks
{
    private CpuDevice _device = null!;
    private ParameterStore _store = null!;
    private MssaBlock _block = null!;
    private Tensor _x = null!, _dy = null!, _out = null!, _dx = null!;

    [Params(197, 785)]
    public int N { get; set; }

    [Params(2)]
    public int Threads { get; set; }

    [Params(true, false)]
    public bool Fused { get; set; }

    public const int Dim = 384, Heads = 6;

    [GlobalSetup]
    public void Setup()
    {
        _device = CpuDevice.Create(Threads);
        _store = new ParameterStore();
        _block = new MssaBlock(_store, "transformer.layers.0.0.", Dim, Heads, Dim / Heads);
        _store.Build(_device, seed: 1);
        var r = new Random(2);
        var x = new float[N * Dim];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(r.NextDouble() * 2 - 1);
        _x = _device.FromHost(x, 1, N, Dim);
        _dy = _device.FromHost(x, 1, N, Dim);
        _out = _device.Allocate(1, N, Dim);
        _dx = _device.Allocate(1, N, Dim);
        _block.Forward(_x, _out, 1);
        _block.Attention.Core!.FusedSymmetric = Fused;
        _block.Forward(_x, _out, 1);
    }

    [Benchmark]
    public void Forward() => _block.Forward(_x, _out, 1);

    [Benchmark]
    public void Backward() => _block.Backward(_dy, _dx);

    [GlobalCleanup]
    public void Cleanup()
    {
        _block.Dispose();
        _store.Dispose();
        _device.Dispose();
    }
}
