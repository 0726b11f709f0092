using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using CrateIL.Cli.Distributed;
using CrateIL.Distributed;

namespace CrateIL.Cli.Commands;

/// <summary>
/// <c>crate bench allreduce</c> (under <c>mpirun -np N</c>): in-place float sum all-reduce over MPI_COMM_WORLD for
/// message sizes from 4 KB to 64 MB (×4 steps). Per size, <c>--repeats</c> timed blocks of calls: the slowest rank's
/// mean time per call in each block, reported as the median block (and the best), with algorithm bandwidth
/// (bytes / time) and bus bandwidth as nccl-tests define it for all-reduce, algbw · 2(N − 1)/N — the per-link rate a
/// ring would need, comparable across rank counts. Each size's result is checked once (rank r contributes r + 1).
/// Medians, because a shared machine's load stalls whole blocks.
/// </summary>
internal static class BenchAllreduce
{
    public static Command Create()
    {
        var minBytes = new Option<string>("--min") { DefaultValueFactory = _ => "4K", Description = "Smallest message (bytes, K or M suffix)" };
        var maxBytes = new Option<string>("--max") { DefaultValueFactory = _ => "64M", Description = "Largest message" };
        var seconds = new Option<double>("--seconds") { DefaultValueFactory = _ => 0.5, Description = "Timed time per size (iterations adapt to it)" };
        var repeats = new Option<int>("--repeats") { DefaultValueFactory = _ => 5, Description = "Timed blocks per size (median reported)" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object" };
        var cmd = new Command("allreduce", "Time MPI all-reduce (run under mpirun -np N): time, algbw and busbw per message size")
            { minBytes, maxBytes, seconds, repeats, json };
        cmd.SetAction(parse => DistributedRun.Run(true, world => CliErrors.Run(() =>
        {
            long lo = ParseSize(parse.GetValue(minBytes)!, "--min"), hi = ParseSize(parse.GetValue(maxBytes)!, "--max");
            if (lo < 4 || hi < lo) throw new ArgumentException($"--min {lo} and --max {hi}: need 4 ≤ min ≤ max");
            int blocks = parse.GetValue(repeats);
            if (blocks < 1) throw new ArgumentException($"--repeats {blocks} must be positive");
            var rows = Run(world!, lo, hi, parse.GetValue(seconds), blocks);
            if (world!.Rank != 0) return 0;
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new { ranks = world.Size, library = MpiWorld.LibraryVersion, rows },
                    new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }));
                return 0;
            }
            Console.WriteLine($"all-reduce (float sum, in place) over {world.Size} ranks, {MpiWorld.LibraryVersion}");
            Console.WriteLine($"load average {BenchDataParallel.LoadAverage():F1}; median of {rows[0].Repeats} blocks per size");
            Console.WriteLine("      bytes    floats   iters    time (us)   algbw (GB/s)   busbw (GB/s)   best (us)");
            foreach (var r in rows)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{r.Bytes,11} {r.Floats,9} {r.Iterations,7} {r.MicrosecondsPerCall,12:F1} {r.AlgorithmGBs,14:F3} {r.BusGBs,14:F3} {r.BestMicroseconds,11:F1}"));
            return 0;
        })));
        return cmd;
    }

    internal sealed record Row(long Bytes, long Floats, int Iterations, int Repeats, double MicrosecondsPerCall, double AlgorithmGBs, double BusGBs,
        double BestMicroseconds);

    internal static unsafe List<Row> Run(MpiWorld world, long minBytes, long maxBytes, double seconds, int repeats)
    {
        var rows = new List<Row>();
        long maxFloats = maxBytes / sizeof(float);
        float* buffer = (float*)NativeMemory.AlignedAlloc((nuint)maxFloats * sizeof(float), 64);
        try
        {
            for (long bytes = minBytes; bytes <= maxBytes; bytes *= 4)
            {
                int n = checked((int)(bytes / sizeof(float)));
                var span = new Span<float>(buffer, n);
                span.Fill(world.Rank + 1);
                world.AllreduceSum(buffer, n);
                float expected = world.Size * (world.Size + 1) / 2f;
                if (span[0] != expected || span[n - 1] != expected)
                    throw new MpiException($"all-reduce of {bytes} bytes gave {span[0]}/{span[n - 1]}, expected {expected}");
                span.Clear();
                // Calibrate: every rank must run the same iteration count, so the ranks agree on the largest estimate.
                // The probe count itself must be collective: a rank that decided alone to run one more probe would pair
                // its n-float all-reduce with the other ranks' 1-double one (MPI_ERR_TRUNCATE). Rounds of 3 probes, then
                // every rank learns whether any of them has reached 50 ms.
                var clock = Stopwatch.StartNew();
                int probe = 0;
                Span<double> reached = [0];
                while (reached[0] == 0)
                {
                    for (int i = 0; i < 3; i++) world.AllreduceSum(buffer, n);
                    probe += 3;
                    reached[0] = clock.Elapsed.TotalSeconds >= 0.05 ? 1 : 0;
                    world.Allreduce(reached, ReduceOperation.Max);
                }
                Span<double> iterations = [Math.Clamp(seconds / repeats / (clock.Elapsed.TotalSeconds / probe), 2, 100_000)];
                world.Allreduce(iterations, ReduceOperation.Max);
                int iters = (int)iterations[0];
                var blocks = new double[repeats];
                for (int b = 0; b < repeats; b++)
                {
                    world.Barrier();
                    long t0 = Stopwatch.GetTimestamp();
                    for (int i = 0; i < iters; i++) world.AllreduceSum(buffer, n);
                    Span<double> elapsed = [Stopwatch.GetElapsedTime(t0).TotalSeconds / iters];
                    world.Allreduce(elapsed, ReduceOperation.Max);
                    blocks[b] = elapsed[0];
                }
                Array.Sort(blocks);
                double median = blocks[repeats / 2];
                double algbw = bytes / median / 1e9;
                rows.Add(new Row(bytes, n, iters, repeats, median * 1e6, algbw, algbw * 2.0 * (world.Size - 1) / world.Size, blocks[0] * 1e6));
            }
        }
        finally
        {
            NativeMemory.AlignedFree(buffer);
        }
        return rows;
    }

    internal static long ParseSize(string text, string option)
    {
        string t = text.Trim().ToUpperInvariant().TrimEnd('B');
        long scale = t.EndsWith('K') ? 1024 : t.EndsWith('M') ? 1024 * 1024 : 1;
        if (scale > 1) t = t[..^1];
        if (!long.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out long v) || v <= 0)
            throw new ArgumentException($"{option} '{text}' is not a size like 4096, 4K or 64M");
        return v * scale;
    }
}
