using BenchmarkDotNet.Attributes;
using CrateIL.Compute.Devices;
using CrateIL.Compute.Ops;
using CrateIL.Compute.Tensors;

namespace CrateIL.Benchmarks;

/// <summary>
/// Row softmax on the CPU path at CRATE attention sizes: one 785×785 score matrix (ViT-B/8 at 224², 784 patches
/// + CLS) and 6 heads of it (4710 rows × 785). Scale 1/√64 as in attention.
/// Run: dotnet run -c Release --project benchmarks -- --filter '*RowBenchmarks*'
/// </summary>
[MemoryDiagnoser]
public class SoftmaxRowBenchmarks
{
    private CpuDevice _device = null!;
    private Tensor _x = null!, _y = null!, _dy = null!, _dx = null!;

    [Params(785, 4710)]
    public int Rows { get; set; }

    public const int Cols = 785;

    [GlobalSetup]
    public void Setup()
    {
        _device = CpuDevice.Create();
        var r = new Random(1);
        var data = new float[Rows * Cols];
        for (int i = 0; i < data.Length; i++) data[i] = (float)(r.NextDouble() * 8 - 4);
        _x = _device.FromHost(data, Rows, Cols);
        _dy = _device.FromHost(data, Rows, Cols);
        _y = _device.Allocate(Rows, Cols);
        _dx = _device.Allocate(Rows, Cols);
        Softmax.Forward(_x, _y, 0.125f);
    }

    [Benchmark]
    public void Forward() => Softmax.Forward(_x, _y, 0.125f);

    [Benchmark]
    public void Backward() => Softmax.Backward(_y, _dy, _dx, 0.125f);

    [GlobalCleanup]
    public void Cleanup() => _device.Dispose();
}

/// <summary>
/// LayerNorm on the CPU path at CRATE sizes, width 384 (CRATE-S): one image's tokens (785 × 384) and a batch of
/// 64 images at 224²/16 (64·197 = 12608 rows × 384). Backward includes the dγ/dβ accumulation.
/// </summary>
[MemoryDiagnoser]
public class LayerNormRowBenchmarks
{
    private CpuDevice _device = null!;
    private Tensor _x = null!, _y = null!, _dy = null!, _dx = null!, _gamma = null!, _beta = null!;
    private Tensor _mean = null!, _rstd = null!, _dGamma = null!, _dBeta = null!;

    [Params(785, 12608)]
    public int Rows { get; set; }

    public const int Cols = 384;

    [GlobalSetup]
    public void Setup()
    {
        _device = CpuDevice.Create();
        var r = new Random(2);
        var data = new float[Rows * Cols];
        for (int i = 0; i < data.Length; i++) data[i] = (float)(r.NextDouble() * 4 - 2);
        var g = new float[Cols];
        for (int i = 0; i < Cols; i++) g[i] = 1f + 0.01f * i;
        _x = _device.FromHost(data, Rows, Cols);
        _dy = _device.FromHost(data, Rows, Cols);
        _y = _device.Allocate(Rows, Cols);
        _dx = _device.Allocate(Rows, Cols);
        _gamma = _device.FromHost(g, Cols);
        _beta = _device.FromHost(g, Cols);
        _mean = _device.Allocate(Rows);
        _rstd = _device.Allocate(Rows);
        _dGamma = _device.Zeros(Cols);
        _dBeta = _device.Zeros(Cols);
        LayerNorm.Forward(_x, _gamma, _beta, _y, _mean, _rstd);
    }

    [Benchmark]
    public void Forward() => LayerNorm.Forward(_x, _gamma, _beta, _y, _mean, _rstd);

    [Benchmark]
    public void Backward() => LayerNorm.Backward(_dy, _x, _gamma, _mean, _rstd, _dx, _dGamma, _dBeta);

    [GlobalCleanup]
    public void Cleanup() => _device.Dispose();
}
