using BenchmarkDotNet.Attributes;
using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;
using CrateIL.Nn.Layers;
using CrateIL.Nn.Parameters;

namespace CrateIL.Benchmarks;

/// <summary>
/// The ISTA block (LayerNorm + ISTA step) on the CPU path at CRATE-S width 384: one 224² image at patch 8
/// (785 tokens) and a batch of 8 images at patch 16 (8·197 = 1576 rows), in both evaluation forms. Forward is
/// LN + ISTA; Backward is the ISTA backward + LN backward (gradients accumulate; the forward state is reused, which
/// is valid since the backward pass does not change it). Peer: benchmarks/peer/torch_ista.py.
/// Run: dotnet run -c Release --project benchmarks -- --filter '*IstaBlockBenchmarks*'
/// </summary>
[MemoryDiagnoser]
public class IstaBlockBenchmarks
{
    private const int Dim = 384;
    private CpuDevice _device = null!;
    private ParameterStore _store = null!;
    private IstaBlock _block = null!;
    private Tensor _x = null!, _y = null!, _dy = null!, _dx = null!;

    [Params(785, 1576)] public int Rows;
    [Params(IstaForm.TwoGemm, IstaForm.Folded)] public IstaForm Form;
    [Params(2)] public int Threads;

    [GlobalSetup]
    public void Setup()
    {
        _device = CpuDevice.Create(Threads);
        _store = new ParameterStore();
        _block = new IstaBlock(_store, "transformer.layers.0.1.", Dim) { Form = Form };
        _store.Build(_device, 1);
        var r = new Random(2);
        float[] Data() { var v = new float[Rows * Dim]; for (int i = 0; i < v.Length; i++) v[i] = (float)(r.NextDouble() * 4 - 2); return v; }
        _x = _device.FromHost(Data(), Rows, Dim);
        _dy = _device.FromHost(Data(), Rows, Dim);
        _y = _device.Allocate(Rows, Dim);
        _dx = _device.Allocate(Rows, Dim);
        _block.Forward(_x, _y);
    }

    [Benchmark]
    public void Forward() => _block.Forward(_x, _y);

    [Benchmark]
    public void Backward() => _block.Backward(_dy, _dx);

    [GlobalCleanup]
    public void Cleanup()
    {
        _block.Dispose();
        _store.Dispose();
        _x.Dispose(); _y.Dispose(); _dy.Dispose(); _dx.Dispose();
        _device.Dispose();
    }
}
