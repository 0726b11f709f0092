using System.Diagnostics;
using System.Text.Json;
using CrateIL.Crate.Checkpoints;
using CrateIL.Crate.Data;
using CrateIL.Crate.IO;
using CrateIL.Crate.Models;
using CrateIL.Crate.Training;
using CrateIL.Testing;
using Xunit;
using Xunit.Abstractions;

namespace CrateIL.Crate.Tests;

/// <summary>
/// The loss curve of 224 training steps equals PyTorch's. tools/reference/loss_curve_fixtures.py trains a tiny CRATE
/// (dim 24, depth 2, heads 2, CLS pooling) and a tiny ViT (same sizes, mean pooling) in float64 from float32-exact
/// initial weights on 256 fixed 16×16 images (batch 8, a stored batch order, label smoothing 0.1, AdamW with the
/// Trainer's warm-up + cosine schedule); here the Trainer's own step (Accumulate + ApplyStep) replays the same
/// batches in float32 from the same weights, and every step's loss must stay within the measured band of the reference.
/// </summary>
public class LossCurveParityTests(ITestOutputHelper output)
{
    private const string Fixture = "loss_curve.json";

    public static TheoryData<string, string> BackendsAndRuns()
    {
        var data = new TheoryData<string, string>();
        foreach (var backend in new[] { Backends.Cpu, Backends.IlgpuCpu, Backends.OpenCL, Backends.Cuda })
            foreach (var run in new[] { "loss_curve_crate", "loss_curve_vit" })
                data.Add(backend, run);
        return data;
    }

    [SkippableTheory]
    [MemberData(nameof(BackendsAndRuns))]
    public void LossCurve_TracksPyTorchStepByStep(string backend, string run)
    {
        // The simulator needed 329 s for 16 ViT steps on the shared 2-core machine (~20 s a step); its forward, backward
        // and AdamW step are compared with PyTorch by ModelTests and ModelAdamWParityTests on the same fixtures' kind.
        Skip.If(Backends.IsSimulator(backend), "ILGPU CPU simulator: ~20 s per training step, 224 steps do not fit a test run");
        var device = Backends.Get(backend);
        using var doc = JsonDocument.Parse(File.ReadAllText(CheckpointFixtures.PathOf(Fixture)));
        var root = doc.RootElement;
        var reference = root.GetProperty("runs").GetProperty(run);
        var config = CrateConfig.FromJson(reference.GetProperty("config").GetRawText(), Fixture);
        double[] expectedLoss = Doubles(reference.GetProperty("losses"));
        double[] expectedRate = Doubles(reference.GetProperty("learning_rates"));
        int[] labels = CheckpointFixtures.Ints(root.GetProperty("labels"));
        int[] order = CheckpointFixtures.Ints(root.GetProperty("order"));
        int batch = root.GetProperty("batch").GetInt32(), steps = root.GetProperty("steps").GetInt32();
        Assert.Equal(steps, expectedLoss.Length);
        Assert.Equal(steps * batch, order.Length);

        var images = Npy.Read(CheckpointFixtures.PathOf("loss_curve_images.npy"));
        IDataset dataset = new ArrayDataset(images.Data, images.Shape, labels, source: "loss_curve_images.npy");
        int stepsPerEpoch = dataset.Count / batch;
        string dir = TrainingTestKit.TempDirectory();
        var options = new TrainerOptions
        {
            Optimizer = OptimizerKind.AdamW, LearningRate = root.GetProperty("base_lr").GetDouble(),
            WarmupSteps = root.GetProperty("warmup_steps").GetInt32(), WeightDecay = root.GetProperty("weight_decay").GetDouble(),
            Beta1 = root.GetProperty("beta1").GetDouble(), Beta2 = root.GetProperty("beta2").GetDouble(),
            LabelSmoothing = (float)root.GetProperty("label_smoothing").GetDouble(), ClipNorm = null,
            // The schedule's length is epochs·steps per epoch; the reference's 224 steps are 7 epochs of 256/8.
            Epochs = steps / stepsPerEpoch, BatchSize = batch, Seed = 0, Workers = 0, ProbeImages = 0, OutputDirectory = dir,
        };
        Assert.Equal(steps, options.Epochs * stepsPerEpoch);
        using var trainer = new Trainer(config, dataset, dataset, options, device);

        var initial = Safetensors.Read(CheckpointFixtures.PathOf(run + "_init.safetensors"));
        Assert.Equal(initial.Names.Order(StringComparer.Ordinal), trainer.Model.Parameters.Parameters.Select(p => p.Name).Order(StringComparer.Ordinal));
        foreach (var p in trainer.Model.Parameters.Parameters) p.Value.CopyFrom(initial[p.Name].Data);
        trainer.Model.Parameters.ZeroGrads();
        trainer.Model.Training = true;

        int length = dataset.SampleLength;
        var batchImages = new float[batch * length];
        var batchLabels = new int[batch];
        var losses = new double[steps];
        int replayed = 0;
        var budget = backend == Backends.Cpu ? TimeSpan.MaxValue : ReplayBudget;
        var clock = new Stopwatch();
        for (int t = 0; t < steps && clock.Elapsed < budget; t++, replayed++)
        {
            // The budget starts after the first step: that one includes the backend's one-time kernel compilation
            // (measured 25 s under PoCL, against 9 s for all 224 steps once compiled).
            if (t == 1) clock.Start();
            for (int i = 0; i < batch; i++)
            {
                int index = order[t * batch + i];
                images.Data.AsSpan(index * length, length).CopyTo(batchImages.AsSpan(i * length));
                batchLabels[i] = labels[index];
            }
            losses[t] = trainer.Accumulate(batchImages, batchLabels, batch, 1f, epoch: t / stepsPerEpoch, micro: 0);
            trainer.ApplyStep(t / stepsPerEpoch);
            // The schedule is part of what is compared: the rate the step used is the reference's lr(t).
            Assert.True(Math.Abs(trainer.Optimizer.LearningRate - expectedRate[t]) <= 1e-12 * options.LearningRate,
                $"{run} step {t}: learning rate {trainer.Optimizer.LearningRate} vs reference {expectedRate[t]}");
        }
        clock.Stop();
        Directory.Delete(dir, recursive: true);

        double worstRatio = 0;
        int worstStep = 0;
        for (int t = 0; t < replayed; t++)
        {
            double ratio = Math.Abs(losses[t] - expectedLoss[t]) / Band(t);
            if (ratio > worstRatio) (worstRatio, worstStep) = (ratio, t);
        }
        output.WriteLine($"{run} on {backend}: {replayed} steps ({replayed - 1} after the first) in {clock.Elapsed.TotalSeconds:F2} s; max |Δloss| steps 0–49 " +
                         $"{MaxDelta(losses, expectedLoss, 0, Math.Min(50, replayed)):E2}, steps 50–{replayed - 1} {MaxDelta(losses, expectedLoss, Math.Min(50, replayed), replayed):E2}; " +
                         $"closest to the band at step {worstStep} ({worstRatio:P1} of it)");
        for (int t = 0; t < replayed; t++)
            Assert.True(Math.Abs(losses[t] - expectedLoss[t]) <= Band(t),
                $"{run} on {backend} step {t}: loss {losses[t]:F6} vs PyTorch {expectedLoss[t]:F6} (|Δ| {Math.Abs(losses[t] - expectedLoss[t]):E3} > band {Band(t):E3})");

        // The run must have learnt something, on both sides.
        Skip.If(replayed < steps, $"{backend}: the first {replayed} of {steps} steps matched PyTorch within the band; the rest does not fit " +
                                  $"this backend's {ReplayBudget.TotalSeconds:F0} s budget");
        double first = losses[0], last20 = losses[^20..].Average(), referenceLast20 = expectedLoss[^20..].Average();
        Assert.True(last20 < 0.5 * first, $"{run} on {backend}: the last 20 losses average {last20:F4}, not below half the first {first:F4}");
        Assert.True(referenceLast20 < 0.5 * expectedLoss[0], $"{run}: the reference itself did not learn ({expectedLoss[0]:F4} → {referenceLast20:F4})");
    }

    /// <summary>
    /// Wall-clock budget of the replay after its first step on backends other than the CPU one (which always replays
    /// all 224 steps: 1.6–2.4 s per model measured on the shared 2-core machine). PoCL replayed all 224 ViT steps in 9 s.
    /// A slower backend compares the steps that fit and then skips visibly.
    /// </summary>
    private static readonly TimeSpan ReplayBudget = TimeSpan.FromSeconds(20);

    /// <summary>
    /// The allowed |Δloss| at step t: 5e-6·(1 + t/50), i.e. 5e-6 at the first step growing linearly to 2.7e-5 at step 223.
    /// Measured on the CPU backend (float32 against the float64 reference): max |Δloss| 1.7e-7 (CRATE) and 1.3e-7 (ViT)
    /// over steps 0–49, 1.1e-6 (CRATE) and 7.0e-7 (ViT) over steps 50–223; OpenCL (PoCL): 2.1e-7 / 2.1e-7 and 1.0e-6 /
    /// 8.2e-7; ILGPU CPU simulator, ViT, steps 0–15: 2.1e-7. The closest any step came was 6.7 % of the band (CRATE, CPU,
    /// step 116). The band grows linearly because float32 rounding differences compound slowly through Adam's normalised
    /// updates, and leaves ~15× headroom for other backends' summation orders. It still separates real mistakes: in the
    /// reference, training the CRATE run without its weight decay moves the curve by 1.7e-3 within 50 steps (> 1e-4 from
    /// step 9), and label smoothing 0.11 instead of 0.1 by 6.9e-3 (> 1e-4 at step 0).
    /// </summary>
    private static double Band(int t) => 5e-6 * (1 + t / 50.0);

    private static double MaxDelta(double[] a, double[] b, int from, int to)
    {
        double m = 0;
        for (int t = from; t < to; t++) m = Math.Max(m, Math.Abs(a[t] - b[t]));
        return m;
    }

    private static double[] Doubles(JsonElement array) => array.EnumerateArray().Select(e => e.GetDouble()).ToArray();
}
