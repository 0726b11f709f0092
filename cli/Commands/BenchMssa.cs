using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using CrateIL.Compute.Cpu;
using CrateIL.Compute.Devices;
using CrateIL.Nn.Layers;
using CrateIL.Nn.Parameters;

namespace CrateIL.Cli.Commands;

/// <summary>
/// <c>crate bench mssa</c>: times the PreNorm MSSA block of CRATE (LayerNorm → MSSA → residual), forward and
/// backward, on one device. Forward and backward are timed separately (each call synchronised), medians reported.
/// </summary>
internal static class BenchMssa
{
    public static Command Create()
    {
        var n = new Option<int>("--n") { DefaultValueFactory = _ => 785, Description = "Tokens per image (CRATE-T/16 at 448²: 785)" };
        var dim = new Option<int>("--dim") { DefaultValueFactory = _ => 384, Description = "Model width" };
        var heads = new Option<int>("--heads") { DefaultValueFactory = _ => 6, Description = "Attention heads" };
        var dimHead = new Option<int>("--dim-head") { DefaultValueFactory = _ => 0, Description = "Head width (0: dim / heads)" };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 1, Description = "Images per call" };
        var threads = new Option<int>("--threads") { DefaultValueFactory = _ => Environment.ProcessorCount, Description = "CPU threads" };
        var device = new Option<string>("--device") { DefaultValueFactory = _ => "cpu", Description = "cpu, cuda, opencl or ilgpu-cpu[:index]" };
        var iters = new Option<int>("--iters") { DefaultValueFactory = _ => 0, Description = "Timed forward+backward steps (0: as many as fit in about 3 s, at least 5)" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object" };
        var cmd = new Command("mssa", "Time the CRATE MSSA block (LN + MSSA + residual) forward and backward")
            { n, dim, heads, dimHead, batch, threads, device, iters, json };
        cmd.SetAction(parse => CliErrors.Run(() =>
        {
            int h = parse.GetValue(heads), d = parse.GetValue(dim), dh = parse.GetValue(dimHead);
            var r = Run(parse.GetValue(n), d, h, dh > 0 ? dh : d / h, parse.GetValue(batch), parse.GetValue(threads), parse.GetValue(device)!, parse.GetValue(iters));
            if (parse.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(r, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }));
            else
                Console.WriteLine(FormattableString.Invariant(
                    $"MSSA block b{r.Batch} n{r.N} dim{r.Dim} heads{r.Heads} dh{r.DimHead} on {r.Device} ({r.Threads} threads): forward {r.ForwardMs:F2} ms, backward {r.BackwardMs:F2} ms (medians of {r.Iters}); {r.ForwardTflops:F3} / {r.BackwardTflops:F3} TFLOP/s nominal"));
            return 0;
        }));
        return cmd;
    }

    internal sealed record Result(int N, int Dim, int Heads, int DimHead, int Batch, int Threads, string Device, string Kernel, int Iters,
        double ForwardMs, double BackwardMs, double TotalMs, double ForwardMsBest, double BackwardMsBest,
        double ForwardGflopNominal, double BackwardGflopNominal, double ForwardTflops, double BackwardTflops);

    internal static Result Run(int n, int dim, int heads, int dh, int batch, int threads, string spec, int iters)
    {
        using var dev = CliErrors.OpenDevice(spec, threads);
        bool cpu = dev is CpuDevice;
        using var store = new ParameterStore();
        using var block = new MssaBlock(store, "transformer.layers.0.0.", dim, heads, dh);
        store.Build(dev, seed: 1);
        int rows = batch * n;
        using var x = dev.FromHost(Data(2, (long)rows * dim), batch, n, dim);
        using var dy = dev.FromHost(Data(3, (long)rows * dim), batch, n, dim);
        using var output = dev.Allocate(batch, n, dim);
        using var dx = dev.Allocate(batch, n, dim);

        double Forward() { long t0 = Stopwatch.GetTimestamp(); block.Forward(x, output, batch); dev.Synchronize(); return Stopwatch.GetElapsedTime(t0).TotalMilliseconds; }
        double Backward() { long t0 = Stopwatch.GetTimestamp(); block.Backward(dy, dx); dev.Synchronize(); return Stopwatch.GetElapsedTime(t0).TotalMilliseconds; }

        // Warm-up: JIT tiers, kernel compilation, buffers, worker threads (at least 1 s or 3 steps).
        var warm = Stopwatch.StartNew();
        for (int i = 0; i < 3 || warm.Elapsed.TotalSeconds < 1; i++) { Forward(); Backward(); }
        var fwd = new List<double>(); var bwd = new List<double>();
        var total = Stopwatch.StartNew();
        while (iters > 0 ? fwd.Count < iters : (fwd.Count < 5 || total.Elapsed.TotalSeconds < 3))
        {
            fwd.Add(Forward());
            bwd.Add(Backward());
        }
        fwd.Sort(); bwd.Sort();
        double fMed = fwd[fwd.Count / 2], bMed = bwd[bwd.Count / 2];
        // Nominal FLOPs: GEMM-equivalent multiply-adds ×2 (projections, scores, P·V; backward twice that), no recomputation counted.
        int inner = heads * dh;
        double proj = 2.0 * rows * dim * inner, attn = 2.0 * batch * heads * (double)n * n * dh;
        double fFlop = 2 * proj + 2 * attn, bFlop = 4 * proj + 4 * attn;
        return new Result(n, dim, heads, dh, batch, cpu ? threads : 0, dev.Spec, cpu ? CpuSgemm.KernelName : dev.Name, fwd.Count,
            fMed, bMed, fMed + bMed, fwd[0], bwd[0], fFlop / 1e9, bFlop / 1e9, fFlop / fMed / 1e9, bFlop / bMed / 1e9);
    }

    private static float[] Data(int seed, long n)
    {
        var r = new Random(seed);
        var x = new float[n];
        for (long i = 0; i < n; i++) x[i] = (float)(r.NextDouble() * 2 - 1);
        return x;
    }
}
