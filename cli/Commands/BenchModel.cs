using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using CrateIL.Compute.Cpu;
using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;
using CrateIL.Crate.Models;
using CrateIL.Nn.Losses;
using CrateIL.Nn.Optim;

namespace CrateIL.Cli.Commands;

/// <summary>
/// <c>crate bench model</c>: times one full CRATE step on random images: <c>train</c> = forward + softmax
/// cross-entropy + backward + AdamW step (gradients zeroed first, as a training loop does), <c>infer</c> = forward
/// only. A preset (<c>--model crate-t</c>) or a custom model (<c>--dim --depth --heads</c>). After warm-up steps,
/// the median of <c>--iters</c> timed steps is reported, split into data (the host images copied into the device
/// input, as the trainer does every micro-batch), forward (+ loss), backward, optimizer and other (zeroing, the rest),
/// with the managed bytes allocated per step. FLOPs are the reference model's GEMM FLOPs (patch embedding, MSSA
/// projections, scores and P·V, ISTA's two dictionary products, head; a train step = 3× forward), reported with the
/// fraction of the FMA peak sampled on the same threads afterwards (CPU only). Peer: benchmarks/peer/torch_model.py.
/// </summary>
internal static class BenchModel
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { DefaultValueFactory = _ => "crate-t", Description = "Preset (crate-t, crate-s, crate-b, crate-l, crate-demo, vit-*) or 'custom' (with --dim --depth --heads)" };
        var patch = new Option<int?>("--patch") { Description = "Patch size (default: the preset's)" };
        var imageSize = new Option<int>("--image-size") { DefaultValueFactory = _ => 224, Description = "Square image side" };
        var classes = new Option<int?>("--classes") { Description = "Classes (default: the preset's)" };
        var dim = new Option<int?>("--dim") { Description = "Feature width (overrides the preset; selects a custom model)" };
        var depth = new Option<int?>("--depth") { Description = "Layers (overrides the preset)" };
        var heads = new Option<int?>("--heads") { Description = "Heads (overrides the preset; head width = dim / heads)" };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 8, Description = "Images per step" };
        var mode = new Option<string>("--mode") { DefaultValueFactory = _ => "train", Description = "train (forward + backward + AdamW) or infer (forward)" };
        var threads = new Option<int>("--threads") { DefaultValueFactory = _ => Environment.ProcessorCount, Description = "CPU threads" };
        var device = new Option<string>("--device") { DefaultValueFactory = _ => "cpu", Description = "cpu, cuda, opencl or ilgpu-cpu[:index]" };
        var warmup = new Option<int>("--warmup") { DefaultValueFactory = _ => 2, Description = "Untimed steps first (at least 32 and one second of them, then until the JIT has gone quiet)" };
        var iters = new Option<int>("--iters") { DefaultValueFactory = _ => 5, Description = "Timed steps (the median is reported)" };
        var frozen = new Option<bool>("--frozen") { DefaultValueFactory = _ => true, Description = "infer: freeze the weights first, as an inference app does (ParameterStore.Freeze: GEMM weights packed once); false derives them per call, as training does" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object" };
        var cmd = new Command("model", "Time a full CRATE training step (forward, backward, AdamW) or inference step")
            { model, patch, imageSize, classes, dim, depth, heads, batch, mode, threads, device, warmup, iters, frozen, json };
        cmd.SetAction(parse => CliErrors.Run(() =>
        {
            var config = MakeConfig(parse.GetValue(model)!, parse.GetValue(patch), parse.GetValue(imageSize), parse.GetValue(classes),
                parse.GetValue(dim), parse.GetValue(depth), parse.GetValue(heads));
            var r = Run(config, parse.GetValue(model)!, parse.GetValue(batch), ParseTrain(parse.GetValue(mode)!), parse.GetValue(threads),
                parse.GetValue(device)!, parse.GetValue(warmup), parse.GetValue(iters), parse.GetValue(frozen));
            if (parse.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(r, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }));
            else
            {
                Console.WriteLine(FormattableString.Invariant(
                    $"{r.Model} dim {r.Dim} depth {r.Depth} heads {r.Heads} patch {r.Patch} @{r.ImageSize} {r.Mode}{(r.FrozenWeights ? " (frozen weights)" : "")} batch {r.Batch} on {r.Device} ({r.Threads} threads, {r.GemmKernel}): {r.MsPerStep:F1} ms/step, {r.ImagesPerS:F1} img/s (median of {r.Iters}; best {r.BestMs:F1} ms); {r.GflopPerStep:F2} GFLOP counted, {r.Gflops:F1} GFLOP/s")
                    + (r.PeakGflops is { } peak ? FormattableString.Invariant($", {100 * r.FractionOfPeak:F0} % of the {peak:F1} GFLOP/s FMA peak sampled after the steps ({r.PeakBeforeGflops:F1} before)") : ""));
                Console.WriteLine(FormattableString.Invariant(
                    $"  split (median step): data {r.DataMs:F1} ms, forward+loss {r.ForwardMs:F1} ms, backward {r.BackwardMs:F1} ms, optimizer {r.OptimizerMs:F1} ms, other {r.OtherMs:F1} ms; {r.AllocatedBytesPerStep} B allocated per step; {r.JitMethodsDuringSteps} methods JIT-compiled during the timed steps"));
            }
            return 0;
        }));
        return cmd;
    }

    internal static bool ParseTrain(string s) => s.ToLowerInvariant() switch
    {
        "train" => true,
        "infer" or "inference" => false,
        _ => throw new ArgumentException($"--mode must be train or infer, not '{s}'"),
    };

    internal static CrateConfig MakeConfig(string model, int? patch, int imageSize, int? classes, int? dim, int? depth, int? heads)
    {
        bool custom = model.Equals("custom", StringComparison.OrdinalIgnoreCase);
        var c = custom ? CrateConfig.Tiny(classes ?? 1000, patch ?? 16, imageSize) : CrateConfig.Preset(model, classes, patch, imageSize);
        if (custom && (dim is null || depth is null || heads is null))
            throw new ArgumentException("--model custom needs --dim, --depth and --heads");
        int d = dim ?? c.Dim, h = heads ?? c.Heads;
        if (dim is not null || heads is not null)
        {
            if (d % h != 0) throw new ArgumentException($"--dim {d} is not a multiple of --heads {h}");
            c = c with { Dim = d, Heads = h, DimHead = d / h };
        }
        if (depth is not null) c = c with { Depth = depth.Value };
        return c.Validate();
    }

    internal sealed record Result(string Model, int Dim, int Depth, int Heads, int Patch, int ImageSize, int Classes, string Mode,
        int Batch, int Threads, string Device, string GemmKernel, long Parameters, int Iters, double MsPerStep, double ImagesPerS,
        double BestMs, double DataMs, double ForwardMs, double BackwardMs, double OptimizerMs, double OtherMs, long AllocatedBytesPerStep,
        double GflopPerStep, double Gflops, double? PeakGflops, double? FractionOfPeak, double? PeakBeforeGflops, long JitMethodsDuringSteps,
        bool FrozenWeights);

    /// <summary>
    /// The reference model's forward GEMM FLOPs (2·m·n·k) for <paramref name="batch"/> images: patch embedding,
    /// per layer the MSSA projections (qkv, out), scores and P·V, and ISTA's two dictionary products, then the head
    /// on the class token. Elementwise work, LayerNorms and softmax are not counted (as in the issue's % of peak).
    /// </summary>
    internal static double ForwardFlops(CrateConfig c, int batch)
    {
        double n = c.Patches + 1, d = c.Dim, inner = c.Inner;
        double embed = 2.0 * c.Patches * (c.Channels * c.PatchSize * c.PatchSize) * d;
        double mssa = 2 * (2.0 * n * d * inner) + 2 * (2.0 * c.Heads * n * n * c.DimHead);
        double ista = 2 * (2.0 * n * d * d);
        double head = 2.0 * d * c.Classes;
        return batch * (embed + c.Depth * (mssa + ista) + head);
    }

    internal static Result Run(CrateConfig config, string name, int batch, bool train, int threads, string spec, int warmup, int iters, bool frozen = true)
    {
        if (batch < 1 || iters < 1 || warmup < 0) throw new ArgumentException("--batch and --iters must be positive, --warmup not negative");
        using var dev = CliErrors.OpenDevice(spec, threads);
        bool cpu = dev is CpuDevice;
        using var model = new CrateModel(config, dev, seed: 1);
        using var optimizer = new AdamW(model.Parameters, learningRate: 1e-4, weightDecay: 0.05);
        using var loss = new SoftmaxCrossEntropyLoss();
        using var lossValue = dev.Allocate(1);
        var rng = new Random(3);
        var pixels = new float[(long)batch * config.Channels * config.ImageHeight * config.ImageWidth];
        for (long i = 0; i < pixels.Length; i++) pixels[i] = (float)(rng.NextDouble() * 4 - 2);
        var labels = new int[batch];
        for (int i = 0; i < batch; i++) labels[i] = rng.Next(config.Classes);
        using var images = dev.FromHost(pixels, batch, config.Channels, config.ImageHeight, config.ImageWidth);
        using var dLogits = dev.Allocate(batch, config.Classes);
        model.Training = train;
        bool freeze = frozen && !train;
        if (freeze) model.Parameters.Freeze();

        double dataMs = 0, fwdMs = 0, bwdMs = 0, optMs = 0;
        // Each phase is synchronised so that its time is its own (an ILGPU device runs asynchronously).
        double Step()
        {
            long t0 = Stopwatch.GetTimestamp();
            images.CopyFrom(pixels);
            dev.Synchronize();
            long t1 = Stopwatch.GetTimestamp();
            var logits = model.Forward(images);
            if (train)
            {
                // As the trainer: the labels uploaded once for both passes, the loss left on the device.
                loss.Forward(logits, labels, lossValue);
                loss.Backward(dLogits);
            }
            dev.Synchronize();
            long t2 = Stopwatch.GetTimestamp();
            dataMs = Stopwatch.GetElapsedTime(t0, t1).TotalMilliseconds;
            fwdMs = Stopwatch.GetElapsedTime(t1, t2).TotalMilliseconds;
            if (!train) return Stopwatch.GetElapsedTime(t0, t2).TotalMilliseconds;
            model.Backward(dLogits);
            dev.Synchronize();
            long t3 = Stopwatch.GetTimestamp();
            optimizer.Step();
            dev.Synchronize();
            long t4 = Stopwatch.GetTimestamp();
            // Zeroed once per step (the trainer does it before the step's first backward); counted as "other".
            model.Parameters.ZeroGrads();
            dev.Synchronize();
            long t5 = Stopwatch.GetTimestamp();
            bwdMs = Stopwatch.GetElapsedTime(t2, t3).TotalMilliseconds;
            optMs = Stopwatch.GetElapsedTime(t3, t4).TotalMilliseconds;
            return Stopwatch.GetElapsedTime(t0, t5).TotalMilliseconds;
        }

        // Warm up for at least the given steps (32 at least) and one second, then until the tiered JIT has gone quiet (BenchWarmup).
        if (cpu) FmaPeak.MeasureGflops(threads, repeats: 1, millisecondsPerRepeat: 10);   // the peak's own code compiles before the warm-up
        BenchWarmup.UntilJitQuiet(() => Step(), warmup);
        // The peak is sampled before the steps too: on a shared host it drifts, and the two samples show by how much.
        double? peakBefore = cpu ? FmaPeak.MeasureGflops(threads, repeats: 5, millisecondsPerRepeat: 100) : null;
        var steps = new List<(double Total, double Data, double Fwd, double Bwd, double Opt)>(iters);
        long allocated0 = GC.GetTotalAllocatedBytes(precise: true);
        long compiled0 = System.Runtime.JitInfo.GetCompiledMethodCount();
        for (int i = 0; i < iters; i++)
        {
            double total = Step();
            steps.Add((total, dataMs, fwdMs, train ? bwdMs : 0, train ? optMs : 0));
        }
        long compiled = BenchWarmup.CompiledSince(compiled0);
        long allocated = (GC.GetTotalAllocatedBytes(precise: true) - allocated0) / iters;
        var sorted = steps.OrderBy(s => s.Total).ToList();
        var median = sorted[sorted.Count / 2];
        double flop = ForwardFlops(config, batch) * (train ? 3 : 1);
        double gflops = flop / median.Total / 1e6;
        double? peak = cpu ? FmaPeak.MeasureGflops(threads, repeats: 5, millisecondsPerRepeat: 100) : null;
        return new Result(name, config.Dim, config.Depth, config.Heads, config.PatchSize, config.ImageHeight, config.Classes,
            train ? "train" : "infer", batch, cpu ? threads : 0, dev.Spec, cpu ? CpuSgemm.KernelName : dev.Name,
            model.Parameters.Values.Length, iters, median.Total, batch * 1000.0 / median.Total, sorted[0].Total,
            median.Data, median.Fwd, median.Bwd, median.Opt, median.Total - median.Data - median.Fwd - median.Bwd - median.Opt, allocated,
            flop / 1e9, gflops, peak, peak is null ? null : gflops / peak, peakBefore, compiled, freeze);
    }
}
