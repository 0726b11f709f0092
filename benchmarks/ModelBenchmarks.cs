using BenchmarkDotNet.Attributes;
using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;
using CrateIL.Crate.Models;
using CrateIL.Nn.Losses;
using CrateIL.Nn.Optim;

namespace CrateIL.Benchmarks;

/// <summary>
/// A whole CRATE step on the CPU: <c>Train</c> = zero grads, forward, softmax cross-entropy, backward, AdamW step;
/// <c>Infer</c> = forward. Configurations: CRATE-T/16 at 224² (batch 8 train, batch 1 inference) and the CI-sized
/// model (32², patch 4, dim 192, depth 6, 3 heads, 10 classes, batch 32). Peer: benchmarks/peer/torch_model.py;
/// the quick JSON equivalent is <c>crate bench model</c>.
/// Run: dotnet run -c Release --project benchmarks -- --filter '*CrateModelBenchmarks*'
/// </summary>
[MemoryDiagnoser]
public class CrateModelBenchmarks
{
    private CpuDevice _device = null!;
    private CrateModel _model = null!;
    private AdamW _optimizer = null!;
    private readonly SoftmaxCrossEntropyLoss _loss = new();
    private Tensor _images = null!, _dLogits = null!;
    private int[] _labels = [];

    [Params("crate-t-224-b8", "crate-t-224-b1", "ci-32-b32")] public string Case = "crate-t-224-b8";
    [Params(2)] public int Threads;

    [GlobalSetup]
    public void Setup()
    {
        _device = CpuDevice.Create(Threads);
        (_model, _images, _labels) = ModelCase.Create(Case, _device);
        _optimizer = new AdamW(_model.Parameters, learningRate: 1e-4, weightDecay: 0.05);
        _dLogits = _device.Allocate(_labels.Length, _model.Config.Classes);
    }

    [Benchmark]
    public void Train()
    {
        _model.Parameters.ZeroGrads();
        var logits = _model.Forward(_images);
        _loss.ForwardBackward(logits, _labels, _dLogits);
        _model.Backward(_dLogits);
        _optimizer.Step();
    }

    [Benchmark]
    public Tensor Infer() => _model.Forward(_images);

    [GlobalCleanup]
    public void Cleanup()
    {
        _images.Dispose();
        _dLogits.Dispose();
        _optimizer.Dispose();
        _model.Dispose();
        _device.Dispose();
    }
}

/// <summary>
/// Inference with the weights frozen (<c>ParameterStore.Freeze</c>: each layer's GEMM weights packed once, ISTA's
/// folded dictionary kept without its per-call check) against the per-call path, on the same configurations.
/// Run: dotnet run -c Release --project benchmarks -- --filter '*FrozenInferenceBenchmarks*'
/// </summary>
[MemoryDiagnoser]
public class FrozenInferenceBenchmarks
{
    private CpuDevice _device = null!;
    private CrateModel _model = null!;
    private Tensor _images = null!;

    [Params("crate-t-224-b1", "crate-t-224-b8", "ci-32-b32")] public string Case = "crate-t-224-b1";
    [Params(false, true)] public bool Frozen;
    [Params(2)] public int Threads;

    [GlobalSetup]
    public void Setup()
    {
        _device = CpuDevice.Create(Threads);
        (_model, _images, _) = ModelCase.Create(Case, _device);
        if (Frozen) _model.Parameters.Freeze();
    }

    [Benchmark]
    public Tensor Infer() => _model.Forward(_images);

    [GlobalCleanup]
    public void Cleanup()
    {
        _images.Dispose();
        _model.Dispose();
        _device.Dispose();
    }
}

/// <summary>The configurations both model suites run: a model, its random input batch and labels.</summary>
internal static class ModelCase
{
    public static (CrateModel Model, Tensor Images, int[] Labels) Create(string name, CpuDevice device)
    {
        var (config, batch) = name switch
        {
            "crate-t-224-b8" => (CrateConfig.Tiny(), 8),
            "crate-t-224-b1" => (CrateConfig.Tiny(), 1),
            "ci-32-b32" => (CrateConfig.Tiny(classes: 10, patch: 4, imageSize: 32) with { Dim = 192, Depth = 6, Heads = 3, DimHead = 64 }, 32),
            _ => throw new ArgumentException($"unknown case {name}"),
        };
        var model = new CrateModel(config, device, seed: 1);
        var r = new Random(3);
        var pixels = new float[batch * config.Channels * config.ImageHeight * config.ImageWidth];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = (float)(r.NextDouble() * 4 - 2);
        var labels = new int[batch];
        for (int i = 0; i < batch; i++) labels[i] = r.Next(config.Classes);
        return (model, device.FromHost(pixels, batch, config.Channels, config.ImageHeight, config.ImageWidth), labels);
    }
}
