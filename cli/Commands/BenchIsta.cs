using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using CrateIL.Compute.Cpu;
using CrateIL.Compute.Devices;
using CrateIL.Compute.Ops;
using CrateIL.Compute.Tensors;
using CrateIL.Nn.Layers;
using CrateIL.Nn.Parameters;

namespace CrateIL.Cli.Commands;

/// <summary>
/// <c>crate bench ista</c>: times the ISTA block (LayerNorm + ISTA step) forward and backward at CRATE sizes
/// (default: one 224² image at patch 8, 784 patches + CLS = 785 tokens, dim 384). Forward and backward are timed
/// separately, alternating, so both see the same machine load; medians and best are reported, and on the CPU also
/// the mean process CPU time per call divided by the threads (what the call costs when its threads run
/// undisturbed; time spent spinning at barriers counts), which stays meaningful on a shared, overloaded machine.
/// FLOPs are the reference algorithm's GEMMs (forward D·z and Dᵀ·r, 2·rows·dim² each; backward twice the forward),
/// whatever form runs (the folded form does fewer), so GFLOP/s and the fraction of the FMA peak (sampled on the
/// same threads after the timing) compare across machines, forms and PyTorch.
/// </summary>
internal static class BenchIsta
{
    public static Command Create()
    {
        var n = new Option<int>("--n") { DefaultValueFactory = _ => 785, Description = "Tokens per image" };
        var dim = new Option<int>("--dim") { DefaultValueFactory = _ => 384, Description = "Feature width" };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 1, Description = "Images per call" };
        var threads = new Option<int>("--threads") { DefaultValueFactory = _ => Environment.ProcessorCount, Description = "CPU threads" };
        var device = new Option<string>("--device") { DefaultValueFactory = _ => "cpu", Description = "cpu, cuda, opencl or ilgpu-cpu[:index]" };
        var form = new Option<string>("--form") { DefaultValueFactory = _ => "auto", Description = "ISTA evaluation form: auto, two-gemm or folded" };
        var sth = new Option<bool>("--sth") { Description = "CRATE-sth: symmetric soft threshold" };
        var seconds = new Option<double>("--seconds") { DefaultValueFactory = _ => 3, Description = "Timed duration (after 1 s of warm-up)" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object" };
        var cmd = new Command("ista", "Time the ISTA block (LayerNorm + ISTA step) forward and backward")
            { n, dim, batch, threads, device, form, sth, seconds, json };
        cmd.SetAction(parse => CliErrors.Run(() =>
        {
            var r = Run(parse.GetValue(n), parse.GetValue(dim), parse.GetValue(batch), parse.GetValue(threads), parse.GetValue(device)!,
                ParseForm(parse.GetValue(form)!), parse.GetValue(sth), parse.GetValue(seconds));
            if (parse.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(r, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }));
            else
            {
                string cpuTime = r.ForwardCpuMs is double fc ? FormattableString.Invariant($"; CPU time per thread {fc:F3} / {r.BackwardCpuMs:F3}") : "";
                string peak = r.PeakGflops is double p ? FormattableString.Invariant($", {100 * r.FractionOfPeak:F0} % of the {p:F1} GFLOP/s FMA peak") : "";
                Console.WriteLine(FormattableString.Invariant(
                    $"ISTA block {r.Batch}x{r.N}x{r.Dim} ({r.Form}, {r.Threshold}) on {r.Device} ({r.Threads} threads): forward {r.ForwardMs:F3} ms, backward {r.BackwardMs:F3} ms, total {r.TotalMs:F3} ms (medians of {r.Iters}; best {r.ForwardBestMs:F3} / {r.BackwardBestMs:F3}{cpuTime}); {r.Gflop:F2} GFLOP counted, {r.Gflops:F1} GFLOP/s{peak}"));
            }
            return 0;
        }));
        return cmd;
    }

    internal static IstaForm ParseForm(string s) => s.ToLowerInvariant() switch
    {
        "auto" => IstaForm.Auto,
        "two-gemm" or "twogemm" or "2" => IstaForm.TwoGemm,
        "folded" or "fold" => IstaForm.Folded,
        _ => throw new ArgumentException($"--form must be auto, two-gemm or folded, not '{s}'"),
    };

    internal sealed record Result(int N, int Dim, int Batch, int Threads, string Device, string Form, string Threshold, string GemmKernel,
        int Iters, double ForwardMs, double BackwardMs, double TotalMs, double ForwardBestMs, double BackwardBestMs,
        double? ForwardCpuMs, double? BackwardCpuMs, double Gflop, double Gflops, double? PeakGflops, double? FractionOfPeak);

    internal static Result Run(int n, int dim, int batch, int threads, string spec, IstaForm form, bool symmetric, double seconds)
    {
        if (n < 1 || dim < 1 || batch < 1) throw new ArgumentException("--n, --dim and --batch must be positive");
        using var dev = CliErrors.OpenDevice(spec, threads);
        bool cpu = dev is CpuDevice;
        using var store = new ParameterStore();
        using var block = new IstaBlock(store, "transformer.layers.0.1.", dim,
            threshold: symmetric ? ThresholdKind.Symmetric : ThresholdKind.OneSided) { Form = form };
        store.Build(dev, 1);
        long len = (long)batch * n * dim;
        using var x = dev.FromHost(Data(2, len), batch, n, dim);
        using var dy = dev.FromHost(Data(3, len), batch, n, dim);
        using var y = dev.Allocate(batch, n, dim);
        using var dx = dev.Allocate(batch, n, dim);
        void Forward() { block.Forward(x, y); dev.Synchronize(); }
        void Backward() { block.Backward(dy, dx); dev.Synchronize(); }

        BenchWarmup.UntilJitQuiet(() => { Forward(); Backward(); }, 1);
        var fwd = new List<double>();
        var bwd = new List<double>();
        double fwdCpu = 0, bwdCpu = 0;
        var total = Stopwatch.StartNew();
        while (fwd.Count < 5 || total.Elapsed.TotalSeconds < seconds)
        {
            var c0 = Environment.CpuUsage.TotalTime;
            long t0 = Stopwatch.GetTimestamp();
            Forward();
            long t1 = Stopwatch.GetTimestamp();
            var c1 = Environment.CpuUsage.TotalTime;
            Backward();
            long t2 = Stopwatch.GetTimestamp();
            var c2 = Environment.CpuUsage.TotalTime;
            fwd.Add(Stopwatch.GetElapsedTime(t0, t1).TotalMilliseconds);
            bwd.Add(Stopwatch.GetElapsedTime(t1, t2).TotalMilliseconds);
            fwdCpu += (c1 - c0).TotalMilliseconds;
            bwdCpu += (c2 - c1).TotalMilliseconds;
        }
        var sum = fwd.Zip(bwd, (a, b) => a + b).Order().ToList();
        fwd.Sort();
        bwd.Sort();
        double? peak = cpu ? FmaPeak.MeasureGflops(threads, repeats: 5, millisecondsPerRepeat: 100) : null;
        double flop = 6 * 2.0 * batch * n * (double)dim * dim, gflops = flop / sum[sum.Count / 2] / 1e6;
        return new Result(n, dim, batch, cpu ? threads : 0, dev.Spec, block.LastForm.ToString(), symmetric ? "symmetric" : "one-sided",
            cpu ? CpuSgemm.KernelName : dev.Name, fwd.Count, fwd[fwd.Count / 2], bwd[bwd.Count / 2], sum[sum.Count / 2], fwd[0], bwd[0],
            cpu ? fwdCpu / fwd.Count / threads : null, cpu ? bwdCpu / bwd.Count / threads : null,
            flop / 1e9, gflops, peak, peak is null ? null : gflops / peak);
    }

    private static float[] Data(int seed, long n)
    {
        var r = new Random(seed);
        var x = new float[n];
        for (long i = 0; i < n; i++) x[i] = (float)(r.NextDouble() * 4 - 2);
        return x;
    }
}
