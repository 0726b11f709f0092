using BenchmarkDotNet.Attributes;
using CrateIL.Compute.Devices;
using CrateIL.Compute.Ops;
using CrateIL.Compute.Tensors;
using CrateIL.Nn.Layers;
using CrateIL.Nn.Parameters;

namespace CrateIL.Benchmarks;

/// <summary>
/// The non-attention layers on the CPU path at CRATE-S sizes (dim 384, 224² images, patch 16 → 196 + 1 tokens):
/// patch embedding and MLP block forward + backward for 8 images, CLS/positions and dropout for 64 images (memory
/// bound; compare with <see cref="Elementwise.Scale"/> over the same elements), and the emergence-notebook
/// position resampling (28×28 → 60×60 table, dim 768).
/// Run: dotnet run -c Release --project benchmarks -- --filter '*NnLayerBenchmarks*'
/// </summary>
[MemoryDiagnoser]
public class NnLayerBenchmarks
{
    private const int Dim = 384, Images = 8, Batch = 64, Tokens = 196;
    private CpuDevice _device = null!;
    private ParameterStore _store = null!;
    private PatchEmbedding _patch = null!;
    private PositionalEmbedding _pos = null!;
    private MlpBlock _mlp = null!;
    private PositionalEmbedding _demoPos = null!;
    private ParameterStore _demoStore = null!;
    private readonly Dropout _dropout = new(0.1f, seed: 1);
    private Tensor _image = null!, _tokens = null!, _dTokens = null!;
    private Tensor _e = null!, _x0 = null!, _dx0 = null!, _de = null!;
    private Tensor _mx = null!, _my = null!, _mdy = null!, _mdx = null!;
    private Tensor _table = null!;

    [GlobalSetup]
    public void Setup()
    {
        _device = CpuDevice.Create();
        _store = new ParameterStore();
        _patch = new PatchEmbedding(_store, 3, 16, Dim);
        _pos = new PositionalEmbedding(_store, 14, 14, Dim);
        _mlp = new MlpBlock(_store, "transformer.layers.0.1", Dim);
        _store.Build(_device, 1);
        _demoStore = new ParameterStore();
        _demoPos = new PositionalEmbedding(_demoStore, 28, 28, 768);
        _demoStore.Build(_device, 2);

        var r = new Random(3);
        float[] Data(long n) { var a = new float[n]; for (long i = 0; i < n; i++) a[i] = (float)(r.NextDouble() * 2 - 1); return a; }
        _image = _device.FromHost(Data(Images * 3 * 224 * 224), Images, 3, 224, 224);
        _tokens = _device.Allocate(Images, Tokens, Dim);
        _dTokens = _device.FromHost(Data(Images * Tokens * Dim), Images, Tokens, Dim);
        _e = _device.FromHost(Data((long)Batch * Tokens * Dim), Batch, Tokens, Dim);
        _x0 = _device.Allocate(Batch, Tokens + 1, Dim);
        _dx0 = _device.FromHost(Data((long)Batch * (Tokens + 1) * Dim), Batch, Tokens + 1, Dim);
        _de = _device.Allocate(Batch, Tokens, Dim);
        _mx = _device.FromHost(Data(Images * (Tokens + 1) * Dim), Images, Tokens + 1, Dim);
        _my = _device.Allocate(Images, Tokens + 1, Dim);
        _mdy = _device.FromHost(Data(Images * (Tokens + 1) * Dim), Images, Tokens + 1, Dim);
        _mdx = _device.Allocate(Images, Tokens + 1, Dim);
        _table = _device.Allocate(60 * 60 + 1, 768);
        PatchEmbeddingStep();
        PositionsStep();
        MlpBlockStep();
    }

    [Benchmark(Description = "patch embedding fwd+bwd, 8×3×224², P16, dim 384")]
    public void PatchEmbeddingStep()
    {
        _patch.Forward(_image, _tokens);
        _patch.Backward(_dTokens);
    }

    [Benchmark(Description = "CLS + positions fwd+bwd, 64×197×384")]
    public void PositionsStep()
    {
        _pos.Forward(_e, _x0);
        _pos.Backward(_dx0, _de);
    }

    [Benchmark(Description = "dropout p=0.1 fwd, 64×197×384")]
    public void DropoutForward() => _dropout.Forward(_dx0, _x0, step: 7);

    [Benchmark(Baseline = true, Description = "Elementwise.Scale, 64×197×384 (memory-bound reference)")]
    public void ScaleReference() => Elementwise.Scale(_dx0, 1.1f, _x0);

    [Benchmark(Description = "MLP block fwd+bwd, 8×197×384, hidden 1536")]
    public void MlpBlockStep()
    {
        _mlp.Forward(_mx, _my);
        _mlp.Backward(_mdy, _mdx);
    }

    [Benchmark(Description = "position table 28² → 60² bicubic (DINO scale factor), dim 768")]
    public void ResamplePositions() => _demoPos.InterpolatedTable(60, 60, PositionInterpolation.ScaleFactor, _table);

    [GlobalCleanup]
    public void Cleanup()
    {
        _patch.Dispose(); _pos.Dispose(); _mlp.Dispose(); _demoPos.Dispose();
        _store.Dispose(); _demoStore.Dispose();
        _device.Dispose();
    }
}
