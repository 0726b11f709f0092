using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using CrateIL.Compute.Cpu;
using CrateIL.Compute.Devices;
using CrateIL.Compute.Ops;
using CrateIL.Compute.Tensors;

namespace CrateIL.Benchmarks;

/// <summary>
/// CPU SGEMM, C = op(A)·op(B), square sizes, on 1 and 2 threads. Report next to <see cref="FmaPeakBenchmarks"/>
/// (same thread counts) to read GEMM as a fraction of the FMA peak; the GFLOP/s column does the arithmetic.
/// Run: dotnet run -c Release --project benchmarks -- --filter '*Gemm*' '*FmaPeak*'
/// (short: add --job short, or --filter '*Gemm*' --anyCategories 1024 for the 1024³ cases only).
/// </summary>
[Config(typeof(GflopsConfig))]
public class GemmBenchmarks
{
    private CpuDevice _device = null!;
    private Tensor _a = null!, _b = null!, _c = null!;

    [Params(256, 512, 1024)] public int Size;
    [Params("NN", "NT", "TN")] public string Op = "NN";
    [Params(1, 2)] public int Threads;

    [GlobalSetup]
    public void Setup()
    {
        _device = CpuDevice.Create(Threads);
        var r = new Random(1);
        float[] Data() { var x = new float[Size * Size]; for (int i = 0; i < x.Length; i++) x[i] = (float)(r.NextDouble() * 2 - 1); return x; }
        _a = _device.FromHost(Data(), Size, Size);
        _b = _device.FromHost(Data(), Size, Size);
        _c = _device.Zeros(Size, Size);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _a.Dispose(); _b.Dispose(); _c.Dispose();
        _device.Dispose();
    }

    [Benchmark]
    public void Sgemm() => Gemm.MatMul(_a, _b, _c, transA: Op[0] == 'T', transB: Op[1] == 'T');

    /// <summary>Flops of one call, for the GFLOP/s column.</summary>
    public double Flops => 2.0 * Size * Size * Size;
}

/// <summary>
/// The CPU SGEMM at the shapes of a ViT's Linears (x·Wᵀ: op(A) row-major, op(B) = Wᵀ) with op(A) packed or read in
/// place by the micro-kernel (<c>GemmCpu.DirectA</c>): 197×384×384 is a CRATE-T/16 Linear at batch 1, 785×384×384 the
/// same at 448², 2080×192×192 the CI model's at batch 32.
/// Run: dotnet run -c Release --project benchmarks -- --filter '*GemmShape*' '*FmaPeak*' --job short
/// </summary>
[Config(typeof(GflopsConfig))]
public class GemmShapeBenchmarks
{
    private CpuDevice _device = null!;
    private Tensor _x = null!, _w = null!, _y = null!;
    private int _m, _n, _k;

    [Params("197x384x384", "785x384x384", "2080x192x192")] public string Shape = "197x384x384";
    [Params(true, false)] public bool InPlaceA;
    [Params(1, 2)] public int Threads;

    [GlobalSetup]
    public void Setup()
    {
        var dims = Shape.Split('x').Select(int.Parse).ToArray();
        (_m, _n, _k) = (dims[0], dims[1], dims[2]);
        _device = CpuDevice.Create(Threads);
        var r = new Random(1);
        float[] Data(int len) { var x = new float[len]; for (int i = 0; i < x.Length; i++) x[i] = (float)(r.NextDouble() * 2 - 1); return x; }
        _x = _device.FromHost(Data(_m * _k), _m, _k);
        _w = _device.FromHost(Data(_n * _k), _n, _k);
        _y = _device.Zeros(_m, _n);
        GemmCpu.DirectA = InPlaceA;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        GemmCpu.DirectA = null;
        _x.Dispose(); _w.Dispose(); _y.Dispose();
        _device.Dispose();
    }

    [Benchmark]
    public void Linear() => Gemm.MatMul(_x, _w, _y, transB: true);

    /// <summary>Flops of one call, for the GFLOP/s column (from the parameter alone: the column does not run the setup).</summary>
    public double Flops => Shape.Split('x').Select(double.Parse).Aggregate(2.0, (f, d) => f * d);
}

/// <summary>
/// The FMA peak: 12 independent fused multiply-add chains per thread with the vector width of the GEMM kernel,
/// on all threads at once (the ceiling a GEMM can reach on the same threads).
/// </summary>
[Config(typeof(GflopsConfig))]
public class FmaPeakBenchmarks
{
    private const long Iterations = 1 << 20;

    [Params(1, 2)] public int Threads;

    [Benchmark]
    public double FmaChains() => FmaPeak.Run(Threads, Iterations);

    public double Flops => Threads * 12.0 * 2 * (CpuSgemm.VectorBits / 32) * Iterations;
}

/// <summary>Adds a GFLOP/s column (the benchmark's Flops property over the mean time) and a modest default job.</summary>
public sealed class GflopsConfig : ManualConfig
{
    public GflopsConfig()
    {
        AddJob(Job.Default.WithWarmupCount(3).WithIterationCount(10));
        AddColumn(new GflopsColumn());
    }

    private sealed class GflopsColumn : IColumn
    {
        public string Id => "GFLOPS";
        public string ColumnName => "GFLOP/s";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => "Floating-point operations per second (2·m·n·k per GEMM call; 2 per lane per FMA) from the mean time";
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public bool IsAvailable(Summary summary) => true;
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var stats = summary[benchmarkCase]?.ResultStatistics;
            if (stats is null) return "-";
            var instance = Activator.CreateInstance(benchmarkCase.Descriptor.Type)!;
            foreach (var p in benchmarkCase.Parameters.Items)
                benchmarkCase.Descriptor.Type.GetField(p.Name)?.SetValue(instance, p.Value);
            var flops = (double)benchmarkCase.Descriptor.Type.GetProperty("Flops")!.GetValue(instance)!;
            return (flops / stats.Mean).ToString("F1", System.Globalization.CultureInfo.InvariantCulture);
        }
    }
}
