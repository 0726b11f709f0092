using CrateIL.Crate.Training;
using Xunit;

namespace CrateIL.Crate.Tests;

/// <summary>Cancelling between optimizer steps writes a mid-epoch checkpoint from which a resumed run continues exactly.</summary>
public class InterruptResumeTests
{
    // The kit's run: 32 images, batch 8 → 4 steps per epoch, 2 epochs (8 steps).
    [Theory]
    [InlineData(OptimizerKind.AdamW, 1, 2, 0)] // mid epoch 1
    [InlineData(OptimizerKind.AdamW, 1, 4, 0)] // after epoch 1's last step, before its evaluation
    [InlineData(OptimizerKind.Lion, 2, 6, 0)]  // mid epoch 2, two micro-batches per step
    [InlineData(OptimizerKind.Lion, 1, 3, 2)]  // two loader threads start at the resumed batch
    public void InterruptAtStepKThenResumeReproducesTheUninterruptedRunBitForBit(OptimizerKind optimizer, int accumulation, int stopAfter, int workers)
    {
        using var device = TrainingTestKit.Cpu();
        string straightDir = TrainingTestKit.TempDirectory(), interruptedDir = TrainingTestKit.TempDirectory();
        var options = TrainingTestKit.Options(straightDir) with
        {
            Optimizer = optimizer, AccumulationSteps = accumulation, Workers = workers,
            Beta2 = optimizer == OptimizerKind.Lion ? 0.99 : 0.999,
        };
        float[] straight, straightState;
        IReadOnlyList<EpochMetrics> straightMetrics;
        using (var trainer = new Trainer(TrainingTestKit.Config, TrainingTestKit.Train(), TrainingTestKit.Validation(), options, device))
        {
            straightMetrics = trainer.Run();
            straight = trainer.Model.Parameters.Values.ToArray();
            straightState = trainer.Optimizer.State[0].Tensor.ToArray();
        }

        var interruptedOptions = options with { OutputDirectory = interruptedDir };
        string checkpoint;
        using (var trainer = new Trainer(TrainingTestKit.Config, TrainingTestKit.Train(), TrainingTestKit.Validation(), interruptedOptions, device))
        {
            using var cancel = new CancellationTokenSource();
            trainer.StepCompleted = s => { if (s.Step == stopAfter) cancel.Cancel(); };
            var e = Assert.Throws<TrainingInterruptedException>(() => trainer.Run(cancel.Token));
            Assert.Equal(stopAfter, e.Step);
            Assert.Equal(stopAfter, trainer.Step);
            Assert.Equal((stopAfter - 1) / 4, e.Epoch);
            Assert.Equal(stopAfter - 4 * e.Epoch, e.StepInEpoch);
            Assert.Equal(Path.Combine(trainer.Checkpoints.Directory, CheckpointRotation.LastName), e.Checkpoint);
            Assert.Contains($"epoch {e.Epoch + 1} after step {e.StepInEpoch} of 4", e.Message);
            checkpoint = e.Checkpoint;
        }
        var state = TrainingCheckpoint.ReadState(checkpoint);
        Assert.Equal(stopAfter, state.Step);
        Assert.Equal(stopAfter - 4 * ((stopAfter - 1) / 4), state.StepInEpoch);
        Assert.NotNull(state.Partial);
        Assert.Equal(state.StepInEpoch * accumulation, state.Partial!.MicroBatches);

        using var resumed = Trainer.Resume(checkpoint, TrainingTestKit.Train(), TrainingTestKit.Validation(), interruptedOptions, device);
        Assert.Equal(state.StepInEpoch, resumed.StepInEpoch);
        var steps = new List<long>();
        resumed.StepCompleted = s => steps.Add(s.Step);
        var metrics = resumed.Run();
        Assert.Equal(Enumerable.Range(stopAfter + 1, 8 - stopAfter).Select(i => (long)i), steps);
        Assert.Equal(straight, resumed.Model.Parameters.Values.ToArray());
        Assert.Equal(straightState, resumed.Optimizer.State[0].Tensor.ToArray());
        Assert.Equal(File.ReadAllBytes(Path.Combine(straightDir, "epoch-0002.safetensors")),
            File.ReadAllBytes(Path.Combine(interruptedDir, "epoch-0002.safetensors")));
        // The interrupted epoch's metrics carry the steps taken before the interrupt: the same numbers as the straight run's.
        var last = metrics[^1];
        var expected = straightMetrics[^1];
        Assert.Equal(expected.TrainLoss, last.TrainLoss);
        Assert.Equal(expected.GradNorm, last.GradNorm);
        Assert.Equal(expected.ValLoss, last.ValLoss);
        Assert.Equal(expected.Top1, last.Top1);
        Assert.Equal(2, File.ReadAllLines(Path.Combine(interruptedDir, MetricsLog.JsonName)).Length);
    }

    [Fact]
    public void CancelledBeforeTheFirstStepWritesTheStartingStateAndResumesFromIt()
    {
        using var device = TrainingTestKit.Cpu();
        string dir = TrainingTestKit.TempDirectory();
        var options = TrainingTestKit.Options(dir);
        using var cancel = new CancellationTokenSource();
        cancel.Cancel();
        using (var trainer = new Trainer(TrainingTestKit.Config, TrainingTestKit.Train(), TrainingTestKit.Validation(), options, device))
        {
            var e = Assert.Throws<TrainingInterruptedException>(() => trainer.Run(cancel.Token));
            Assert.Equal(0, e.Step);
            Assert.Equal(0, e.StepInEpoch);
        }
        using var resumed = Trainer.Resume(Path.Combine(dir, CheckpointRotation.LastName), TrainingTestKit.Train(), TrainingTestKit.Validation(), options, device);
        Assert.Equal(0, resumed.Step);
        Assert.Equal(2, resumed.Run().Count);
        Assert.Equal(8, resumed.Step);
    }

    [Fact]
    public void AMidEpochCheckpointRefusesADifferentBatchSize()
    {
        using var device = TrainingTestKit.Cpu();
        string dir = TrainingTestKit.TempDirectory();
        var options = TrainingTestKit.Options(dir) with { AccumulationSteps = 2 };
        using (var trainer = new Trainer(TrainingTestKit.Config, TrainingTestKit.Train(), TrainingTestKit.Validation(), options, device))
        {
            using var cancel = new CancellationTokenSource();
            trainer.StepCompleted = s => { if (s.Step == 1) cancel.Cancel(); };
            Assert.Throws<TrainingInterruptedException>(() => trainer.Run(cancel.Token));
        }
        var e = Assert.Throws<CrateIL.Crate.Checkpoints.CheckpointFormatException>(() =>
            Trainer.Resume(Path.Combine(dir, CheckpointRotation.LastName), TrainingTestKit.Train(), TrainingTestKit.Validation(),
                options with { AccumulationSteps = 1 }, device));
        Assert.Contains("interrupted mid-epoch", e.Message);
    }
}
