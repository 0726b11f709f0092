using System.Diagnostics;
using CrateIL.Crate.Data;
using CrateIL.Crate.Models;
using CrateIL.Crate.Training;
using CrateIL.Testing;
using Xunit;
using Xunit.Abstractions;

namespace CrateIL.Crate.Tests;

/// <summary>
/// Training provably learns: CRATE and the ViT baseline memorise 256 fixed ShapesInClutter images (≥ 99 % train top-1,
/// evaluated in eval mode on the very images trained on) within a step budget, on every backend.
/// <para>
/// Model size. The CLI's CI model (32×32, patch 4, dim 192, depth 6, heads 3) was measured on the CPU backend of the
/// shared 2-core machine: ~2.8 s per epoch of 256 images at batch 32, and after 24 epochs (192 AdamW steps, lr 1e-3,
/// cosine to 0) it had reached only 77 % train top-1 in 67 s: too slow for the suite's < 60 s target. So the test uses
/// the smallest model that still has to memorise: 16×16 images, patch 4 (16 tokens + CLS), dim 32, depth 2, heads 2,
/// ~20k (CRATE) / ~60k (ViT) parameters for 256 cluttered images of 10 classes; the clutter and random placement
/// leave no shortcut, so 99 % means fitting the set.
/// </para>
/// Measured on the shared 2-core machine (eval after every epoch, first epoch reaching ≥ 99 %): CPU backend, 256 images:
/// CRATE 36 epochs (288 steps) in 3.1–5.2 s, ViT 18 epochs (144 steps) in 2.9–8.2 s; OpenCL (PoCL), 128 images: CRATE 32
/// epochs (128 steps) in 27 s, ViT 22 epochs (88 steps) in 24 s. The budget is 60 epochs (480 steps at 256 images).
/// </summary>
public class OverfitTests(ITestOutputHelper output)
{
    private const int ImageSize = 16, Batch = 32, MaxEpochs = 60;

    /// <summary>
    /// 256 images, except under OpenCL: PoCL on the 2-core machine ran the 256-image runs in 45 s (CRATE, 36 epochs) and
    /// 32 s (ViT, 18 epochs), ~12× the CPU backend, so there half the set keeps the test inside the suite's budget.
    /// </summary>
    private static int ImagesFor(string backend) => backend == Backends.OpenCL ? 128 : 256;

    /// <summary>
    /// Wall-clock budget on backends other than the CPU one. Running out of time (not of steps) skips visibly; running
    /// out of steps below 99 % fails everywhere.
    /// </summary>
    private static readonly TimeSpan Budget = TimeSpan.FromSeconds(60);

    public static TheoryData<string, CrateVariant> BackendsAndVariants()
    {
        var data = new TheoryData<string, CrateVariant>();
        foreach (var backend in new[] { Backends.Cpu, Backends.IlgpuCpu, Backends.OpenCL, Backends.Cuda })
            foreach (var variant in new[] { CrateVariant.Crate, CrateVariant.Vit })
                data.Add(backend, variant);
        return data;
    }

    [SkippableTheory]
    [MemberData(nameof(BackendsAndVariants))]
    public void MemorisesTheTrainingSet(string backend, CrateVariant variant)
    {
        // The simulator runs one batch-8 training step of this size in ~20 s (LossCurveParityTests measured 329 s for
        // 16 ViT steps): even one epoch of 256 images would take minutes. Its kernels are covered by the per-layer
        // and whole-model parity tests; memorisation is checked on the real backends.
        Skip.If(Backends.IsSimulator(backend), "ILGPU CPU simulator: ~20 s per training step, a memorisation run needs hundreds");
        var device = Backends.Get(backend);
        var config = new CrateConfig
        {
            ImageHeight = ImageSize, ImageWidth = ImageSize, PatchSize = 4, Channels = 3, Classes = ShapesInClutter.ShapeCount,
            Dim = 32, Depth = 2, Heads = 2, Variant = variant, Pool = variant == CrateVariant.Vit ? Nn.Layers.Pooling.Mean : Nn.Layers.Pooling.Cls,
        };
        int images = ImagesFor(backend);
        var train = new ShapesInClutter(images, seed: 31, imageSize: ImageSize, patchSize: 4);
        string dir = TrainingTestKit.TempDirectory();
        // Memorisation, not generalisation: no label smoothing (it caps confidence, not accuracy, but slows the fit),
        // no weight decay, no augmentation (ShapesInClutter renders each index identically every time).
        var options = new TrainerOptions
        {
            Optimizer = OptimizerKind.AdamW, LearningRate = 3e-3, WeightDecay = 0, Beta1 = 0.9, Beta2 = 0.999,
            WarmupSteps = 10, LabelSmoothing = 0f, Epochs = MaxEpochs, BatchSize = Batch, EvalBatchSize = 64,
            Seed = 7, Workers = 0, ProbeImages = 0, OutputDirectory = dir,
        };
        using var trainer = new Trainer(config, train, train, options, device);
        var loader = new DataLoader(train, Batch, shuffle: true, seed: options.Seed, workers: 0, dropLast: true);
        var budget = backend == Backends.Cpu ? TimeSpan.MaxValue : Budget;
        var clock = Stopwatch.StartNew();
        double top1 = 0;
        int epochs = 0;
        trainer.Model.Parameters.ZeroGrads();
        while (epochs < MaxEpochs && top1 < 0.99 && clock.Elapsed < budget)
        {
            trainer.Model.Training = true;
            foreach (var batch in loader.Epoch(epochs))
            {
                trainer.Accumulate(batch.ImagesSpan, batch.LabelsSpan, batch.Count, 1f, epochs, 0);
                trainer.ApplyStep(epochs);
            }
            epochs++;
            top1 = trainer.Evaluate().Top1; // eval mode, the very images trained on
        }
        clock.Stop();
        Directory.Delete(dir, recursive: true);
        output.WriteLine($"{variant} on {backend}: train top-1 {top1:P2} on {images} images after {epochs} epochs ({trainer.Step} steps) in {clock.Elapsed.TotalSeconds:F1} s");
        Skip.If(top1 < 0.99 && epochs < MaxEpochs,
            $"{variant} on {backend}: {top1:P2} after {epochs} epochs when the {Budget.TotalSeconds:F0} s budget ran out (the CPU backend needs ≤ 40 epochs, ~3 s)");
        Assert.True(top1 >= 0.99, $"{variant} on {backend}: train top-1 {top1:P2} after {trainer.Step} steps ({config})");
    }
}
