using CrateIL.Crate.Checkpoints;
using CrateIL.Crate.Training;
using Xunit;

namespace CrateIL.Crate.Tests;

public class CheckpointRotationTests
{
    [Fact]
    public void KeepsTheNewestEpochFilesAndWritesLastAndBest()
    {
        using var device = TrainingTestKit.Cpu();
        string dir = TrainingTestKit.TempDirectory();
        var options = TrainingTestKit.Options(dir) with { Epochs = 4, KeepEpochCheckpoints = 2 };
        using var trainer = new Trainer(TrainingTestKit.Config, TrainingTestKit.Train(), TrainingTestKit.Validation(), options, device);
        var kept = new List<IReadOnlyList<int>>();
        trainer.EpochCompleted = _ => kept.Add(trainer.Checkpoints.EpochFiles());
        var metrics = trainer.Run();
        Assert.Equal(new[] { new[] { 1 }, new[] { 1, 2 }, new[] { 2, 3 }, new[] { 3, 4 } }, kept.Select(k => k.ToArray()));
        string last = Path.Combine(dir, CheckpointRotation.LastName), best = Path.Combine(dir, CheckpointRotation.BestName);
        Assert.Equal(File.ReadAllBytes(trainer.CheckpointPath(4)), File.ReadAllBytes(last));
        Assert.Equal(Path.GetFullPath(last), trainer.LastCheckpoint);
        // best holds the first epoch with the highest top-1 (ties keep the earlier one).
        double bestTop1 = metrics.Max(m => m.Top1);
        int bestEpoch = metrics.First(m => m.Top1 == bestTop1).Epoch;
        Assert.Equal(bestEpoch, trainer.BestEpoch);
        var bestState = TrainingCheckpoint.ReadState(best);
        Assert.Equal(bestEpoch, bestState.EpochsCompleted);
        Assert.Equal(bestTop1, bestState.BestTop1);
        Assert.Equal(Safetensors.ReadHeader(last).Metadata["crate_config"], Safetensors.ReadHeader(best).Metadata["crate_config"]);
        Assert.Empty(Directory.GetFiles(dir, "*.tmp"));
    }

    [Fact]
    public void KeepZeroWritesNoEpochFiles()
    {
        using var device = TrainingTestKit.Cpu();
        string dir = TrainingTestKit.TempDirectory();
        using var trainer = new Trainer(TrainingTestKit.Config, TrainingTestKit.Train(), TrainingTestKit.Validation(),
            TrainingTestKit.Options(dir) with { KeepEpochCheckpoints = 0 }, device);
        trainer.Run();
        Assert.Equal(new[] { CheckpointRotation.BestName, CheckpointRotation.LastName },
            Directory.GetFiles(dir, "*.safetensors").Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void NegativeKeepIsRejected() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => (TrainingTestKit.Options("x") with { KeepEpochCheckpoints = -1 }).Validate());

    [Fact]
    public void TemporaryNamesAreRecognisedAndNothingElse()
    {
        Assert.True(AtomicFile.IsTemporaryName(AtomicFile.TemporaryName("epoch-0001.safetensors")));
        Assert.True(AtomicFile.IsTemporaryName(".last.safetensors.0123456789abcdef0123456789abcdef.tmp"));
        foreach (string other in new[]
                 {
                     "notes.tmp", ".tmp", "..0123456789abcdef0123456789abcdef.tmp", ".a.0123456789ABCDEF0123456789abcdef.tmp",
                     "a.0123456789abcdef0123456789abcdef.tmp", ".a.0123456789abcdef0123456789abcde.tmp", ".a.0123456789abcdef0123456789abcdeg.tmp",
                     ".a.0123456789abcdef0123456789abcdef.tmp.bak", "last.safetensors",
                 })
            Assert.False(AtomicFile.IsTemporaryName(other), other);
    }

    [Fact]
    public void StaleTemporaryFilesAreRemovedAtStartAndOnResumeButNothingElse()
    {
        using var device = TrainingTestKit.Cpu();
        string dir = TrainingTestKit.TempDirectory();
        string[] ours = [AtomicFile.TemporaryName("epoch-0001.safetensors"), AtomicFile.TemporaryName("last.safetensors")];
        string[] others = ["notes.tmp", ".hidden.tmp", ".a.0123456789ABCDEF0123456789ABCDEF.tmp", "keep.txt"];
        foreach (string name in ours.Concat(others)) File.WriteAllText(Path.Combine(dir, name), "partial");
        var options = TrainingTestKit.Options(dir) with { Epochs = 1 };
        using (var trainer = new Trainer(TrainingTestKit.Config, TrainingTestKit.Train(), TrainingTestKit.Validation(), options, device))
        {
            Assert.Empty(trainer.RemovedTemporaryFiles);
            trainer.Run();
            Assert.Equal(ours.Order(StringComparer.Ordinal), trainer.RemovedTemporaryFiles);
        }
        foreach (string name in ours) Assert.False(File.Exists(Path.Combine(dir, name)), name);
        foreach (string name in others) Assert.True(File.Exists(Path.Combine(dir, name)), name);

        string killed = AtomicFile.TemporaryName("epoch-0002.safetensors");
        File.WriteAllText(Path.Combine(dir, killed), "partial");
        using var resumed = Trainer.Resume(Path.Combine(dir, CheckpointRotation.LastName), TrainingTestKit.Train(), TrainingTestKit.Validation(),
            options with { Epochs = 2 }, device);
        resumed.Run();
        Assert.Equal(new[] { killed }, resumed.RemovedTemporaryFiles);
        Assert.False(File.Exists(Path.Combine(dir, killed)));
        foreach (string name in others) Assert.True(File.Exists(Path.Combine(dir, name)), name);
    }
}
