using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using CrateIL.Cli.Distributed;
using CrateIL.Compute.Devices;
using CrateIL.Crate.Models;
using CrateIL.Distributed;
using CrateIL.Nn.Losses;
using CrateIL.Nn.Optim;

namespace CrateIL.Cli.Commands;

/// <summary>
/// <c>crate bench data-parallel</c>: the data-parallel training step — forward, loss, backward, gradient all-reduce,
/// AdamW — of a global batch split over the ranks of <c>mpirun -np N</c> (or one process, no communication). With
/// N &gt; 1 it times, interleaved in the same sitting, the flat all-reduce (one blocking call after the backward) and
/// the bucketed one (buckets started during the backward), and reports per mode the median step, the communication
/// the step waits for after the backward (exposed), the time spent starting/polling buckets during the backward, the
/// communication fraction (flat exposed / flat step) and the overlap achieved by the buckets:
/// 1 − (bucketed exposed + bucketed polling) / flat exposed.
/// </summary>
internal static class BenchDataParallel
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { DefaultValueFactory = _ => "ci", Description = "'ci' (32×32, patch 4, dim 192, depth 6, heads 3) or a preset (crate-t, …)" };
        var patch = new Option<int?>("--patch") { Description = "Patch size (default: the preset's)" };
        var imageSize = new Option<int>("--image-size") { DefaultValueFactory = _ => 224, Description = "Square image side (presets)" };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 32, Description = "Global images per step (split over the ranks)" };
        var threads = new Option<int>("--threads") { DefaultValueFactory = _ => 1, Description = "CPU threads per rank" };
        var device = new Option<string?>("--device") { Description = "Per-rank device (default: GPU local rank mod count, else cpu)" };
        var bucketMb = new Option<double>("--bucket-mb") { DefaultValueFactory = _ => 4.0, Description = "Bucket size (MB)" };
        var iters = new Option<int>("--iters") { DefaultValueFactory = _ => 6, Description = "Timed steps per mode and round" };
        var rounds = new Option<int>("--rounds") { DefaultValueFactory = _ => 2, Description = "Rounds of flat, bucketed (interleaved)" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object" };
        var cmd = new Command("data-parallel", "Time a data-parallel training step (run under mpirun -np N, or alone): step, exposed communication, overlap")
            { model, patch, imageSize, batch, threads, device, bucketMb, iters, rounds, json };
        cmd.SetAction(parse => DistributedRun.Run(MpiWorld.LaunchedByMpirun, world => CliErrors.Run(() =>
        {
            string name = parse.GetValue(model)!;
            var config = name == TrainCommand.CiModel ? TrainCommand.CiConfig()
                : BenchModel.MakeConfig(name, parse.GetValue(patch), parse.GetValue(imageSize), null, null, null, null);
            var r = Run(world, config, name, parse.GetValue(batch), parse.GetValue(threads), parse.GetValue(device), parse.GetValue(bucketMb),
                parse.GetValue(iters), parse.GetValue(rounds));
            if (world is not null && world.Rank != 0) return 0;
            if (parse.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(r, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }));
            else
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{r.Model}: {r.Parameters} parameters ({r.Parameters * 4 / 1048576.0:F1} MB of gradients), global batch {r.GlobalBatch} = {r.Ranks} rank(s) × {r.GlobalBatch / r.Ranks}, {r.Threads} thread(s) per rank on {r.Device}, {r.Buckets} bucket(s); load average {r.LoadAverage:F1}"));
                foreach (var m in r.Modes)
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"  {m.Mode,-8} step {m.StepMs,8:F1} ms  {m.ImagesPerS,7:F1} img/s  exposed comm {m.ExposedMs,7:F2} ms  polling during backward {m.OverlappedCallMs,6:F2} ms"));
                if (r.CommunicationFraction is double f)
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"  communication fraction (flat) {f * 100:F1}%, overlap achieved by buckets {r.Overlap * 100:F1}%"));
            }
            return 0;
        })));
        return cmd;
    }

    /// <summary>The 1-minute load average (Linux), printed beside timings taken on a shared machine.</summary>
    internal static double LoadAverage() =>
        File.Exists("/proc/loadavg") ? double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], CultureInfo.InvariantCulture) : double.NaN;

    internal sealed record ModeResult(string Mode, double StepMs, double ImagesPerS, double ExposedMs, double OverlappedCallMs);

    internal sealed record Result(string Model, long Parameters, int GlobalBatch, int Ranks, int Threads, string Device, int Buckets,
        IReadOnlyList<ModeResult> Modes, double? CommunicationFraction, double? Overlap, double LoadAverage);

    internal static Result Run(MpiWorld? world, CrateConfig config, string name, int globalBatch, int threads, string? spec, double bucketMb,
        int iters, int rounds)
    {
        int ranks = world?.Size ?? 1;
        if (globalBatch < ranks || globalBatch % ranks != 0) throw new ArgumentException($"--batch {globalBatch} does not split over {ranks} ranks");
        if (iters < 1 || rounds < 1) throw new ArgumentException("--iters and --rounds must be positive");
        int batch = globalBatch / ranks;
        using var dev = world is null ? DeviceRegistry.Open(spec ?? "cpu", threads) : DistributedRun.OpenDevice(spec ?? "cpu", threads);
        using var net = new CrateModel(config, dev, seed: 1);
        using var optimizer = new AdamW(net.Parameters, learningRate: 1e-4, weightDecay: 0.05);
        using var loss = new SoftmaxCrossEntropyLoss();
        var rng = new Random(3 + (world?.Rank ?? 0));
        var pixels = new float[(long)batch * config.Channels * config.ImageHeight * config.ImageWidth];
        for (long i = 0; i < pixels.Length; i++) pixels[i] = (float)(rng.NextDouble() * 4 - 2);
        var labels = new int[batch];
        for (int i = 0; i < batch; i++) labels[i] = rng.Next(config.Classes);
        using var images = dev.FromHost(pixels, batch, config.Channels, config.ImageHeight, config.ImageWidth);
        using var dLogits = dev.Allocate(batch, config.Classes);
        net.Training = true;
        long bucket = Math.Max(1, (long)(bucketMb * 1048576 / sizeof(float)));
        using var flat = world is null ? null : new GradientAllreduce(world, net.Parameters.Grads, net.BackwardPartStarts, bucket, overlap: false);
        using var bucketed = world is null ? null : new GradientAllreduce(world, net.Parameters.Grads, net.BackwardPartStarts, bucket, overlap: true);

        double Step(GradientAllreduce? reduce)
        {
            long t0 = Stopwatch.GetTimestamp();
            net.Parameters.ZeroGrads();
            var logits = net.Forward(images);
            loss.ForwardBackward(logits, labels, dLogits);
            reduce?.Arm();
            net.GradientsFinal = reduce is null ? null : reduce.GradientsFinalFrom;
            net.Backward(dLogits);
            reduce?.Complete();
            optimizer.Step();
            dev.Synchronize();
            return Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        }

        var modes = world is null ? new (string Name, GradientAllreduce? Reduce)[] { ("local", null) }
            : [("flat", flat), ("bucketed", bucketed)];
        var warm = Stopwatch.StartNew();
        for (int i = 0; i < 2 || warm.Elapsed.TotalSeconds < 1.0; i++)
            foreach (var m in modes) Step(m.Reduce);
        var times = modes.ToDictionary(m => m.Name, _ => new List<double>());
        var exposed = modes.ToDictionary(m => m.Name, _ => 0.0);
        var polled = modes.ToDictionary(m => m.Name, _ => 0.0);
        for (int round = 0; round < rounds; round++)
            foreach (var (mode, reduce) in modes)
            {
                reduce?.Stats.Reset();
                world?.Barrier();
                for (int i = 0; i < iters; i++) times[mode].Add(Step(reduce));
                exposed[mode] += reduce?.Stats.ExposedSeconds ?? 0;
                polled[mode] += reduce?.Stats.OverlappedCallSeconds ?? 0;
            }
        int total = rounds * iters;
        var results = modes.Select(m =>
        {
            var sorted = times[m.Name].Order().ToArray();
            double median = sorted[sorted.Length / 2];
            return new ModeResult(m.Name, median, globalBatch * 1000.0 / median, exposed[m.Name] * 1000 / total, polled[m.Name] * 1000 / total);
        }).ToArray();
        double? fraction = null, overlap = null;
        if (world is not null)
        {
            var f = results[0];
            var b = results[1];
            fraction = f.ExposedMs / f.StepMs;
            overlap = 1 - (b.ExposedMs + b.OverlappedCallMs) / f.ExposedMs;
        }
        double load = LoadAverage();
        return new Result(name, net.Parameters.Values.Length, globalBatch, ranks, threads, dev.Spec, bucketed?.Buckets.Count ?? 0,
            results, fraction, overlap, load);
    }
}
