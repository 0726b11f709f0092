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
/// FLOPs are the reference algorithm's GEMM FLOPs (projections, scores, P·V; backward twice the forward), whatever
/// the implementation does, so that GFLOP/s and the fraction of the FMA peak (sampled on the same threads after the
/// timing; CPU only) compare across machines and with PyTorch (benchmarks/peer/torch_mssa.py).
/// <c>--attention both</c> alternates the CPU's fused symmetric and materialised attention step by step in one
/// process (an A/B that sees the same machine load).
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
        var attention = new Option<string>("--attention") { DefaultValueFactory = _ => "fused", Description = "CPU attention: fused (symmetric, no N×N matrix), materialised, or both (alternated step by step, A/B)" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object (an array with --attention both)" };
        var cmd = new Command("mssa", "Time the CRATE MSSA block (LN + MSSA + residual) forward and backward")
            { n, dim, heads, dimHead, batch, threads, device, iters, attention, json };
        cmd.SetAction(parse => CliErrors.Run(() =>
        {
            int h = parse.GetValue(heads), d = parse.GetValue(dim), dh = parse.GetValue(dimHead);
            if (parse.GetValue(n) < 1 || d < 1 || h < 1 || parse.GetValue(batch) < 1 || dh < 0 || parse.GetValue(iters) < 0)
                throw new ArgumentException("--n, --dim, --heads and --batch must be positive, --dim-head and --iters not negative");
            string mode = parse.GetValue(attention)!.ToLowerInvariant();
            bool[] variants = mode switch
            {
                "fused" => [true],
                "materialised" or "materialized" => [false],
                "both" => [true, false],
                _ => throw new ArgumentException($"--attention must be fused, materialised or both, not '{mode}'"),
            };
            var results = Run(parse.GetValue(n), d, h, dh > 0 ? dh : d / h, parse.GetValue(batch), parse.GetValue(threads), parse.GetValue(device)!, parse.GetValue(iters), variants);
            var options = new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
            if (parse.GetValue(json))
                Console.WriteLine(results.Length == 1 ? JsonSerializer.Serialize(results[0], options) : JsonSerializer.Serialize(results, options));
            else
                foreach (var r in results) Console.WriteLine(Describe(r));
            return 0;
        }));
        return cmd;
    }

    internal static string Describe(Result r) => FormattableString.Invariant(
        $"MSSA block b{r.Batch} n{r.N} dim{r.Dim} heads{r.Heads} dh{r.DimHead} on {r.Device} ({r.Threads} threads, {r.Kernel}, attention {r.Attention}): forward {r.ForwardMs:F2} ms, backward {r.BackwardMs:F2} ms, fwd+bwd {r.TotalMs:F2} ms (medians of {r.Iters}; best {r.TotalMsBest:F2}); {r.ForwardGflopNominal + r.BackwardGflopNominal:F2} GFLOP counted, {r.Gflops:F1} GFLOP/s")
        + (r.PeakGflops is { } peak ? FormattableString.Invariant($", {100 * r.FractionOfPeak:F0} % of the {peak:F1} GFLOP/s FMA peak on {r.Threads} threads sampled after the calls ({r.PeakBeforeGflops:F1} before)") : "")
        + (r.CpuTimeMsBest is { } cpuMs ? FormattableString.Invariant($"; best process CPU time per fwd+bwd / threads {cpuMs:F1} ms (robust to other load; with 1 thread, the work itself)") : "")
        + FormattableString.Invariant($"; {r.JitMethodsDuringSteps} methods JIT-compiled during the timed calls");

    internal sealed record Result(int N, int Dim, int Heads, int DimHead, int Batch, int Threads, string Device, string Kernel, string Attention, int Iters,
        double ForwardMs, double BackwardMs, double TotalMs, double ForwardMsBest, double BackwardMsBest, double TotalMsBest,
        double ForwardGflopNominal, double BackwardGflopNominal, double ForwardTflops, double BackwardTflops, double Gflops,
        double? PeakGflops, double? FractionOfPeak, double? CpuTimeMsBest, double? PeakBeforeGflops, long JitMethodsDuringSteps);

    /// <summary>Times each variant (fused symmetric attention or not; ignored off the CPU), alternating them step by step.</summary>
    internal static Result[] Run(int n, int dim, int heads, int dh, int batch, int threads, string spec, int iters, bool[] fusedVariants)
    {
        using var dev = CliErrors.OpenDevice(spec, threads);
        bool cpu = dev is CpuDevice;
        int rows = batch * n, v = fusedVariants.Length;
        var stores = new ParameterStore[v];
        var blocks = new MssaBlock[v];
        using var x = dev.FromHost(Data(2, (long)rows * dim), batch, n, dim);
        using var dy = dev.FromHost(Data(3, (long)rows * dim), batch, n, dim);
        using var output = dev.Allocate(batch, n, dim);
        using var dx = dev.Allocate(batch, n, dim);
        try
        {
            for (int i = 0; i < v; i++)
            {
                stores[i] = new ParameterStore();
                blocks[i] = new MssaBlock(stores[i], "transformer.layers.0.0.", dim, heads, dh);
                stores[i].Build(dev, seed: 1);
            }
            double Forward(int i)
            {
                long t0 = Stopwatch.GetTimestamp();
                blocks[i].Forward(x, output, batch);
                dev.Synchronize();
                return Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            }
            double Backward(int i) { long t0 = Stopwatch.GetTimestamp(); blocks[i].Backward(dy, dx); dev.Synchronize(); return Stopwatch.GetElapsedTime(t0).TotalMilliseconds; }
            // The attention core exists after the first forward pass: choose the variant, then run it once more.
            for (int i = 0; i < v; i++)
            {
                Forward(i);
                blocks[i].Attention.Core!.FusedSymmetric = fusedVariants[i];
            }

            // Warm-up: JIT tiers, kernel compilation, buffers, worker threads (at least 1 s and 32 steps, then until the
            // JIT has gone quiet: BenchWarmup).
            if (cpu) FmaPeak.MeasureGflops(threads, repeats: 1, millisecondsPerRepeat: 10);   // the peak's own code compiles before the warm-up
            BenchWarmup.UntilJitQuiet(() => { for (int i = 0; i < v; i++) { Forward(i); Backward(i); } }, 3);
            // The peak is sampled before the timed calls too: on a shared host it drifts, and the two samples show by how much.
            double? peakBefore = cpu ? FmaPeak.MeasureGflops(threads, repeats: 5, millisecondsPerRepeat: 100) : null;
            var fwd = new List<double>[v]; var bwd = new List<double>[v]; var tot = new List<double>[v];
            var cpuBest = new double[v];
            Array.Fill(cpuBest, double.MaxValue);
            for (int i = 0; i < v; i++) { fwd[i] = []; bwd[i] = []; tot[i] = []; }
            long compiled0 = System.Runtime.JitInfo.GetCompiledMethodCount();
            var total = Stopwatch.StartNew();
            while (iters > 0 ? fwd[0].Count < iters : (fwd[0].Count < 5 || total.Elapsed.TotalSeconds < 3 * v))
                for (int i = 0; i < v; i++)
                {
                    var c0 = Environment.CpuUsage.TotalTime;
                    double f = Forward(i), b = Backward(i);
                    cpuBest[i] = Math.Min(cpuBest[i], (Environment.CpuUsage.TotalTime - c0).TotalMilliseconds / Math.Max(1, threads));
                    fwd[i].Add(f); bwd[i].Add(b); tot[i].Add(f + b);
                }
            long compiled = BenchWarmup.CompiledSince(compiled0);
            double? peak = cpu ? FmaPeak.MeasureGflops(threads, repeats: 5, millisecondsPerRepeat: 100) : null;
            // Reference FLOPs: GEMM multiply-adds ×2 (projections, scores, P·V; backward twice that), counted the same
            // whatever the implementation computes (the fused path forms half the scores, and recomputes them in backward).
            int inner = heads * dh;
            double proj = 2.0 * rows * dim * inner, attn = 2.0 * batch * heads * (double)n * n * dh;
            double fFlop = 2 * proj + 2 * attn, bFlop = 4 * proj + 4 * attn;
            var results = new Result[v];
            for (int i = 0; i < v; i++)
            {
                fwd[i].Sort(); bwd[i].Sort(); tot[i].Sort();
                double fMed = fwd[i][fwd[i].Count / 2], bMed = bwd[i][bwd[i].Count / 2], tMed = tot[i][tot[i].Count / 2];
                double gflops = (fFlop + bFlop) / tMed / 1e6;
                bool fusedRan = cpu && blocks[i].Attention.Core!.LastForwardFused;
                results[i] = new Result(n, dim, heads, dh, batch, cpu ? threads : 0, dev.Spec, cpu ? CpuSgemm.KernelName : dev.Name,
                    cpu ? (fusedRan ? "fused-symmetric" : "materialised") : "ilgpu-flash", fwd[i].Count,
                    fMed, bMed, tMed, fwd[i][0], bwd[i][0], tot[i][0], fFlop / 1e9, bFlop / 1e9, fFlop / fMed / 1e9, bFlop / bMed / 1e9,
                    gflops, peak, peak is null ? null : gflops / peak, cpu ? cpuBest[i] : null, peakBefore, compiled);
            }
            return results;
        }
        finally
        {
            foreach (var b in blocks) b?.Dispose();
            foreach (var s in stores) s?.Dispose();
        }
    }

    private static float[] Data(int seed, long n)
    {
        var r = new Random(seed);
        var x = new float[n];
        for (long i = 0; i < n; i++) x[i] = (float)(r.NextDouble() * 2 - 1);
        return x;
    }
}
