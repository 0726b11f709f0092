using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using CrateIL.Compute.Cpu;
using CrateIL.Compute.Devices;
using CrateIL.Compute.Ops;

namespace CrateIL.Cli.Commands;

/// <summary>
/// <c>crate bench gemm</c>: times C = A·B (optionally transposed) and, on the CPU, measures the FMA peak on the same
/// threads in the same run, so the result can be read as a fraction of what the machine delivers right now.
/// </summary>
internal static class BenchGemm
{
    public static Command Create()
    {
        var m = new Option<int>("--m") { DefaultValueFactory = _ => 1024, Description = "Rows of C" };
        var n = new Option<int>("--n") { DefaultValueFactory = _ => 1024, Description = "Columns of C" };
        var k = new Option<int>("--k") { DefaultValueFactory = _ => 1024, Description = "Inner dimension" };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 1, Description = "Independent matrices per call" };
        var threads = new Option<int>("--threads") { DefaultValueFactory = _ => Environment.ProcessorCount, Description = "CPU threads" };
        var device = new Option<string>("--device") { DefaultValueFactory = _ => "cpu", Description = "cpu, cuda, opencl or ilgpu-cpu[:index]" };
        var transA = new Option<bool>("--transa") { Description = "Use Aᵀ (A stored k×m)" };
        var transB = new Option<bool>("--transb") { Description = "Use Bᵀ (B stored n×k)" };
        var iters = new Option<int>("--iters") { DefaultValueFactory = _ => 0, Description = "Timed calls (0: as many as fit in about 2 s)" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object" };
        var cmd = new Command("gemm", "Time SGEMM (GFLOP/s) and the FMA peak of the same CPU threads")
            { m, n, k, batch, threads, device, transA, transB, iters, json };
        cmd.SetAction(parse => CliErrors.Run(() =>
        {
            var r = Run(parse.GetValue(m), parse.GetValue(n), parse.GetValue(k), parse.GetValue(batch), parse.GetValue(threads),
                parse.GetValue(device)!, parse.GetValue(transA), parse.GetValue(transB), parse.GetValue(iters));
            if (parse.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(r, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }));
            else
            {
                string peak = r.PeakGflops is double pk
                    ? FormattableString.Invariant($"; FMA peak {pk:F1} GFLOP/s, {r.Gflops / pk * 100:F1} % of peak")
                    : "";
                string cpuTime = r.CpuTimeGflops is double cg && r.CpuTimePeakGflops is double cp
                    ? FormattableString.Invariant($"; by CPU time {cg:F1} of {cp:F1} GFLOP/s ({cg / cp * 100:F1} %)")
                    : "";
                Console.WriteLine(FormattableString.Invariant(
                    $"sgemm {r.Batch}x{r.M}x{r.N}x{r.K} {(r.TransA ? 'T' : 'N')}{(r.TransB ? 'T' : 'N')} on {r.Device} ({r.Threads} threads, kernel {r.Kernel}): {r.Ms:F3} ms best, {r.MsMedian:F3} ms median of {r.Iters} = {r.Gflops:F1} GFLOP/s best, {r.GflopsMedian:F1} median{peak}{cpuTime}"));
            }
            return 0;
        }));
        return cmd;
    }

    internal sealed record Result(int M, int N, int K, int Batch, bool TransA, bool TransB, int Threads, string Device, string Kernel,
        int Iters, double Ms, double MsMedian, double Gflops, double GflopsMedian, double? PeakGflops, double? FractionOfPeak,
        double? CpuTimeGflops, double? CpuTimePeakGflops, double? CpuTimeFractionOfPeak);

    internal static Result Run(int m, int n, int k, int batch, int threads, string spec, bool transA, bool transB, int iters)
    {
        using var dev = CliErrors.OpenDevice(spec, threads);
        bool cpu = dev is CpuDevice;
        int[] aShape = transA ? [batch, k, m] : [batch, m, k], bShape = transB ? [batch, n, k] : [batch, k, n];
        using var a = dev.FromHost(Data(1, (long)batch * m * k), aShape);
        using var b = dev.FromHost(Data(2, (long)batch * k * n), bShape);
        using var c = dev.Zeros(batch, m, n);
        void Call() { Gemm.MatMul(a, b, c, transA, transB); dev.Synchronize(); }

        // Warm up (JIT, packing buffers, worker threads) for at least 0.5 s.
        var warmTimes = new List<double>();
        var warm = Stopwatch.StartNew();
        do
        {
            long t0 = Stopwatch.GetTimestamp();
            Call();
            warmTimes.Add(Stopwatch.GetElapsedTime(t0).TotalSeconds);
        }
        while (warm.Elapsed.TotalSeconds < 0.5 || warmTimes.Count < 2);
        warmTimes.Sort();
        // Each GEMM call is followed by an FMA-peak sample of about the same length on the same threads, so both
        // see the same load (the machine may be shared) and best-of compares like with like.
        var sampler = cpu ? new FmaPeak.Sampler(threads, Math.Max(2e-4, warmTimes[warmTimes.Count / 2])) : null;
        var times = new List<double>();
        double peak = 0;
        var total = Stopwatch.StartNew();
        // CPU-time figures: flops over the process CPU time of a call divided by the threads, i.e. the rate had the
        // threads run undisturbed; robust when other processes take turns on the cores (spinning counts as work).
        double bestCpu = double.MaxValue, bestPeakCpu = 0;
        while (iters > 0 ? times.Count < iters : (times.Count < 5 || total.Elapsed.TotalSeconds < 3))
        {
            var cpu0 = Environment.CpuUsage.TotalTime;
            long t0 = Stopwatch.GetTimestamp();
            Call();
            times.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            var cpu1 = Environment.CpuUsage.TotalTime;
            bestCpu = Math.Min(bestCpu, (cpu1 - cpu0).TotalSeconds / threads);
            if (sampler is not null)
            {
                double g = sampler.Sample();
                double s = (Environment.CpuUsage.TotalTime - cpu1).TotalSeconds / threads;
                peak = Math.Max(peak, g);
                if (s > 0) bestPeakCpu = Math.Max(bestPeakCpu, g * sampler.LastSeconds / s);
            }
        }
        times.Sort();
        double best = times[0], median = times[times.Count / 2];
        double flops = 2.0 * batch * m * n * k;
        double gflops = flops / best / 1e6;
        return new Result(m, n, k, batch, transA, transB, cpu ? threads : 0, dev.Spec, cpu ? CpuSgemm.KernelName : dev.Name,
            times.Count, best, median, gflops, flops / median / 1e6, cpu ? peak : null, cpu ? gflops / peak : null,
            cpu && bestCpu > 0 ? flops / bestCpu / 1e9 : null, cpu ? bestPeakCpu : null,
            cpu && bestCpu > 0 && bestPeakCpu > 0 ? flops / bestCpu / 1e9 / bestPeakCpu : null);
    }

    private static float[] Data(int seed, long n)
    {
        var r = new Random(seed);
        var x = new float[n];
        for (long i = 0; i < n; i++) x[i] = (float)(r.NextDouble() * 2 - 1);
        return x;
    }
}
