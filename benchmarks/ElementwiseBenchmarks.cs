using System.Numerics.Tensors;
using BenchmarkDotNet.Attributes;
using CrateIL.Compute.Devices;
using CrateIL.Compute.Ops;
using Tensor = CrateIL.Compute.Tensors.Tensor;

namespace CrateIL.Benchmarks;

/// <summary>
/// CPU elementwise and activation ops on an MLP-sized activation (rows × hidden).
/// Run: dotnet run -c Release --project benchmarks -- --filter '*ElementwiseBenchmarks*' --job short
/// </summary>
[MemoryDiagnoser]
public class ElementwiseBenchmarks
{
    private CpuDevice _device = null!;
    private Tensor _x = null!, _dy = null!, _y = null!, _bias = null!, _dbias = null!;
    private float[] _xa = null!, _ya = null!;

    /// <summary>Rows of a [rows, 1536] activation (ViT-S MLP hidden width): 197 ≈ one image, 1576 ≈ a batch of 8.</summary>
    [Params(197, 1576)]
    public int Rows { get; set; }

    private const int Cols = 1536;

    [GlobalSetup]
    public void Setup()
    {
        _device = CpuDevice.Create();
        var r = new Random(1);
        _xa = Enumerable.Range(0, Rows * Cols).Select(_ => (float)(r.NextDouble() * 6 - 3)).ToArray();
        _ya = new float[_xa.Length];
        _x = _device.FromHost(_xa, Rows, Cols);
        _dy = _device.FromHost(_xa, Rows, Cols);
        _y = _device.Allocate(Rows, Cols);
        _bias = _device.FromHost(_xa.AsSpan(0, Cols), Cols);
        _dbias = _device.Zeros(Cols);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var t in new[] { _x, _dy, _y, _bias, _dbias }) t.Dispose();
        _device.Dispose();
    }

    [Benchmark] public void Relu() => CrateIL.Compute.Ops.Relu.Forward(_x, _y);
    [Benchmark] public void SoftThresholdOneSided() => SoftThreshold.Forward(_x, _y, 0.1f);
    [Benchmark] public void GeluTanh() => Gelu.Forward(_x, _y, GeluForm.Tanh);
    [Benchmark] public void GeluErf() => Gelu.Forward(_x, _y, GeluForm.Erf);
    [Benchmark] public void GeluErfBackward() => Gelu.Backward(_dy, _x, _y, GeluForm.Erf);
    [Benchmark] public void Add() => Elementwise.Add(_x, _dy, _y);
    [Benchmark] public void BiasAddForward() => BiasAdd.Forward(_x, _bias, _y);
    [Benchmark] public void BiasAddBackward() => BiasAdd.Backward(_dy, _dbias);

    /// <summary>Yardstick: TensorPrimitives.Tanh on one thread over the same element count.</summary>
    [Benchmark] public void TensorPrimitivesTanhSingleThread() => TensorPrimitives.Tanh(_xa, _ya);
}
