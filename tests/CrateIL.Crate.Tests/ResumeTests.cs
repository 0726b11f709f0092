using CrateIL.Crate.Training;
using Xunit;

namespace CrateIL.Crate.Tests;

public class ResumeTests
{
    [Theory]
    [InlineData(OptimizerKind.AdamW, 1)]
    [InlineData(OptimizerKind.Lion, 2)]
    public void ResumingFromEpochOneReproducesTheUninterruptedRunBitForBit(OptimizerKind optimizer, int accumulation)
    {
        using var device = TrainingTestKit.Cpu();
        string straightDir = TrainingTestKit.TempDirectory(), resumedDir = TrainingTestKit.TempDirectory();
        var options = TrainingTestKit.Options(straightDir) with
        {
            Optimizer = optimizer, AccumulationSteps = accumulation, Epochs = 2,
            Beta2 = optimizer == OptimizerKind.Lion ? 0.99 : 0.999,
        };
        float[] straight, straightState;
        string epochOne;
        using (var trainer = new Trainer(TrainingTestKit.Config, TrainingTestKit.Train(), TrainingTestKit.Validation(), options, device))
        {
            trainer.Run();
            straight = trainer.Model.Parameters.Values.ToArray();
            straightState = trainer.Optimizer.State[0].Tensor.ToArray();
            epochOne = trainer.CheckpointPath(1);
        }
        string copied = Path.Combine(resumedDir, "from.safetensors");
        File.Copy(epochOne, copied);
        using var resumed = Trainer.Resume(copied, TrainingTestKit.Train(), TrainingTestKit.Validation(),
            options with { OutputDirectory = resumedDir, Seed = 999 }, device);
        Assert.Equal(1, resumed.EpochsCompleted);
        Assert.Equal(5, resumed.Options.Seed);
        var metrics = resumed.Run();
        Assert.Single(metrics);
        Assert.Equal(2, metrics[0].Epoch);
        Assert.Equal(straight, resumed.Model.Parameters.Values.ToArray());
        Assert.Equal(straightState, resumed.Optimizer.State[0].Tensor.ToArray());
        Assert.Equal(File.ReadAllBytes(Path.Combine(straightDir, "epoch-0002.safetensors")),
            File.ReadAllBytes(Path.Combine(resumedDir, "epoch-0002.safetensors")));
    }
}
