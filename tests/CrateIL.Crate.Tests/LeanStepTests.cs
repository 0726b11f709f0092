using CrateIL.Compute.Devices;
using CrateIL.Crate.Data;
using CrateIL.Crate.Models;
using CrateIL.Nn.Losses;
using CrateIL.Nn.Optim;
using CrateIL.Crate.Training;
using Xunit;

namespace CrateIL.Crate.Tests;

/// <summary>
/// The lean training step: the loss and gradient norm are read from the device once per logging interval
/// (<see cref="TrainerOptions.LogEvery"/>), which changes neither the weights nor the metrics; divergence is still caught,
/// named with its steps, before anything is written; an interrupt in the middle of an interval reads it first.
/// </summary>
public class LeanStepTests
{
    // 64 images, batch 8 → 8 steps per epoch, 2 epochs.
    private static TrainerOptions Options(string dir, int accumulation, float? clip, int? logEvery) =>
        TrainingTestKit.Options(dir) with { AccumulationSteps = accumulation, ClipNorm = clip, LogEvery = logEvery };

    private sealed record Outcome(float[] Weights, float[] State, IReadOnlyList<EpochMetrics> Metrics, List<StepProgress> Reports, long LabelUploads);

    private static Outcome Train(int accumulation, float? clip, int? logEvery)
    {
        using var device = TrainingTestKit.Cpu();
        using var trainer = new Trainer(TrainingTestKit.Config, TrainingTestKit.Train(64), TrainingTestKit.Validation(),
            Options(TrainingTestKit.TempDirectory(), accumulation, clip, logEvery), device);
        var reports = new List<StepProgress>();
        trainer.StepCompleted = reports.Add;
        var metrics = trainer.Run();
        return new Outcome(trainer.Model.Parameters.Values.ToArray(), trainer.Optimizer.State[0].Tensor.ToArray(), metrics, reports, trainer.LabelUploads);
    }

    [Theory]
    [InlineData(1, null)]
    [InlineData(2, 0.05f)] // two micro-batches per step, clipping active
    public void TheLogIntervalChangesNeitherWeightsNorEpochMetrics(int accumulation, float? clip)
    {
        var every = Train(accumulation, clip, 1);
        Assert.Equal(Enumerable.Range(1, 16).Select(i => (long)i), every.Reports.Select(r => r.Step));
        Assert.All(every.Reports, r => Assert.Equal(1, r.Steps));
        // One label upload per micro-batch: 16 steps × k.
        Assert.Equal(16 * accumulation, every.LabelUploads);
        if (clip is not null) Assert.Contains(every.Reports, r => r.GradNorm > clip.Value); // the clip really acted

        foreach (int logEvery in new[] { 3, 7 })
        {
            var sparse = Train(accumulation, clip, logEvery);
            string what = $"--log-every {logEvery}, accumulation {accumulation}";
            Assert.True(every.Weights.AsSpan().SequenceEqual(sparse.Weights), what + ": weights differ from --log-every 1");
            Assert.True(every.State.AsSpan().SequenceEqual(sparse.State), what + ": optimizer state differs");
            Assert.Equal(16 * accumulation, sparse.LabelUploads);
            for (int e = 0; e < 2; e++)
            {
                var a = every.Metrics[e];
                var b = sparse.Metrics[e];
                Assert.Equal((a.TrainLoss, a.GradNorm, a.ValLoss, a.Top1, a.Top5, a.Step), (b.TrainLoss, b.GradNorm, b.ValLoss, b.Top1, b.Top5, b.Step));
            }
            // Intervals count within the epoch and end with it.
            long[] ends = logEvery == 3 ? [3, 6, 8, 11, 14, 16] : [7, 8, 15, 16];
            Assert.Equal(ends, sparse.Reports.Select(r => r.Step));
            Assert.Equal(16, sparse.Reports.Sum(r => r.Steps));
            // Each report is its steps' mean: the per-step reports of the same steps averaged.
            foreach (var r in sparse.Reports)
            {
                var covered = every.Reports.Where(s => s.Step > r.Step - r.Steps && s.Step <= r.Step).ToList();
                Assert.Equal(r.Steps, covered.Count);
                Assert.Equal(covered.Average(s => s.Loss), r.Loss, 1e-12);
                Assert.Equal(covered.Average(s => s.GradNorm), r.GradNorm, 1e-12);
                Assert.Equal(covered[^1].LearningRate, r.LearningRate);
            }
        }
    }

    [Fact]
    public void DivergenceIsCaughtWhenItsIntervalIsReadNamingTheStepsAndNothingIsWritten()
    {
        string dir = TrainingTestKit.TempDirectory();
        using var device = TrainingTestKit.Cpu();
        var options = Options(dir, 1, null, 5) with { Epochs = 1, LearningRate = 1e30, WeightDecay = 0, WarmupSteps = 0 };
        using var trainer = new Trainer(TrainingTestKit.Config, TrainingTestKit.Train(64), TrainingTestKit.Validation(), options, device);
        var reports = new List<StepProgress>();
        trainer.StepCompleted = reports.Add;
        var e = Assert.Throws<TrainingDivergedException>(() => trainer.Run());
        Assert.Contains(e.Quantity, new[] { "loss", "gradient norm" });
        Assert.False(double.IsFinite(e.Value));
        // Read at the end of the first interval (steps 0–4) or of the epoch's last (5–7).
        Assert.True((e.FirstStep, e.LastStep) is (0, 4) or (5, 7), $"steps {e.FirstStep}–{e.LastStep}");
        Assert.InRange(e.Step, e.FirstStep, e.LastStep);
        Assert.Contains($"optimizer steps {e.FirstStep}–{e.LastStep}", e.Message);
        Assert.Contains("no checkpoint was written yet", e.Message);
        Assert.DoesNotContain(reports, r => r.Step > e.FirstStep); // the bad interval was never reported
        Assert.Empty(Directory.GetFiles(dir, "*.safetensors"));
        Assert.False(File.Exists(Path.Combine(dir, MetricsLog.JsonName)));
    }

    [Fact]
    public void AnInterruptInsideAnIntervalReadsItFirstAndResumesBitForBit()
    {
        using var device = TrainingTestKit.Cpu();
        string straightDir = TrainingTestKit.TempDirectory(), interruptedDir = TrainingTestKit.TempDirectory();
        var options = Options(straightDir, 1, 1f, 3);
        float[] straight;
        IReadOnlyList<EpochMetrics> straightMetrics;
        using (var trainer = new Trainer(TrainingTestKit.Config, TrainingTestKit.Train(64), TrainingTestKit.Validation(), options, device))
        {
            straightMetrics = trainer.Run();
            straight = trainer.Model.Parameters.Values.ToArray();
        }

        // The cancel arrives while step 5's images load (no loader threads: loading runs on the training thread),
        // between the interval reads after steps 3 and 6.
        using var cancel = new CancellationTokenSource();
        var data = new CancelOnLoad(TrainingTestKit.Train(64), 4 * 8 + 1, cancel);
        var interruptedOptions = options with { OutputDirectory = interruptedDir };
        string checkpoint;
        var reports = new List<StepProgress>();
        using (var trainer = new Trainer(TrainingTestKit.Config, data, TrainingTestKit.Validation(), interruptedOptions, device))
        {
            trainer.StepCompleted = reports.Add;
            var e = Assert.Throws<TrainingInterruptedException>(() => trainer.Run(cancel.Token));
            Assert.NotEqual(0, e.Step % 3);
            checkpoint = e.Checkpoint;
            // The interval cut short is reported too, so the reports cover every step taken.
            Assert.Equal(e.Step, reports.Sum(r => r.Steps));
            Assert.Equal(e.Step, reports[^1].Step);
        }
        var state = TrainingCheckpoint.ReadState(checkpoint);
        Assert.Equal(state.StepInEpoch, state.Partial!.MicroBatches);
        using var resumed = Trainer.Resume(checkpoint, TrainingTestKit.Train(64), TrainingTestKit.Validation(), interruptedOptions, device);
        var metrics = resumed.Run();
        Assert.True(straight.AsSpan().SequenceEqual(resumed.Model.Parameters.Values.ToArray()));
        Assert.Equal((straightMetrics[^1].TrainLoss, straightMetrics[^1].GradNorm), (metrics[^1].TrainLoss, metrics[^1].GradNorm));
        Assert.Equal((straightMetrics[0].TrainLoss, straightMetrics[0].GradNorm), (metrics[0].TrainLoss, metrics[0].GradNorm));
    }

    /// <summary>A dataset that signals <paramref name="cancel"/> when its <paramref name="loads"/>-th sample is loaded.</summary>
    private sealed class CancelOnLoad(IDataset inner, int loads, CancellationTokenSource cancel) : IDataset
    {
        private int _loaded;
        public int Count => inner.Count;
        public int ClassCount => inner.ClassCount;
        public IReadOnlyList<string> ClassNames => inner.ClassNames;
        public int Channels => inner.Channels;
        public int Height => inner.Height;
        public int Width => inner.Width;
        public int GetLabel(int index) => inner.GetLabel(index);

        public int Load(int index, Span<float> destination, ref SampleRandom random)
        {
            if (Interlocked.Increment(ref _loaded) == loads) cancel.Cancel();
            return inner.Load(index, destination, ref random);
        }
    }

    /// <summary>
    /// After warm-up, a whole CPU training step (forward, loss, backward, AdamW, zeroing) and an inference forward
    /// allocate nothing on the calling thread, on one thread and on two (rows × width large enough that LayerNorm's
    /// backward splits rows and sums per-range dγ/dβ partials: its scratch was a pooled tensor whose wrapper cost
    /// 144 bytes per call).
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void SteadyStateStepsAllocateNothing(int threads)
    {
        var config = new CrateConfig
        {
            ImageHeight = 32, ImageWidth = 32, PatchSize = 4, Channels = 3, Classes = 10, Dim = 64, Depth = 2, Heads = 2,
        };
        const int batch = 8;
        using var device = CpuDevice.Create(threads);
        using var model = new CrateModel(config, device, seed: 1);
        using var optimizer = new AdamW(model.Parameters, learningRate: 1e-4, weightDecay: 0.05);
        using var loss = new SoftmaxCrossEntropyLoss();
        using var lossValue = device.Allocate(1);
        using var images = device.FromHost(Testing.TestData.Uniform(3, batch * 3 * 32 * 32), batch, 3, 32, 32);
        using var dLogits = device.Allocate(batch, config.Classes);
        int[] labels = [0, 1, 2, 3, 4, 5, 6, 7];
        void TrainStep()
        {
            var logits = model.Forward(images);
            loss.Forward(logits, labels, lossValue);
            loss.Backward(dLogits);
            model.Backward(dLogits);
            optimizer.Step();
            model.Parameters.ZeroGrads();
        }
        model.Training = true;
        for (int i = 0; i < 3; i++) TrainStep();
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 3; i++) TrainStep();
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);

        model.Training = false;
        for (int i = 0; i < 3; i++) model.Forward(images);
        before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 3; i++) model.Forward(images);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
