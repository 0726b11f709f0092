using System.Text.Json;
using CrateIL.Crate.Checkpoints;
using CrateIL.Crate.Data;
using CrateIL.Crate.Training;
using Xunit;

namespace CrateIL.Crate.Tests;

public class TrainerTests
{
    [Fact]
    public void LossDecreasesWhenFittingOneBatch()
    {
        string dir = TrainingTestKit.TempDirectory();
        using var device = TrainingTestKit.Cpu();
        var data = TrainingTestKit.Train(16);
        var options = TrainingTestKit.Options(dir) with { BatchSize = 16, Epochs = 25, WarmupSteps = 0, LearningRate = 3e-3, LabelSmoothing = 0.1f };
        using var trainer = new Trainer(TrainingTestKit.Config, data, TrainingTestKit.Validation(), options, device);
        var (images, labels) = Load(data, 16);
        var losses = new List<double>();
        for (int step = 0; step < 25; step++)
        {
            losses.Add(trainer.Accumulate(images, labels, 16, 1f, 0, 0));
            trainer.ApplyStep(0);
        }
        Assert.All(losses, l => Assert.True(double.IsFinite(l)));
        Assert.True(losses[^1] < 0.8 * losses[0], $"loss {losses[0]:F4} → {losses[^1]:F4} did not fall by 20% over 25 steps on one batch");
    }

    [Fact]
    public void AccumulatingTwoHalfBatchesEqualsOneFullBatch()
    {
        using var device = TrainingTestKit.Cpu();
        var data = TrainingTestKit.Train(16);
        var (images, labels) = Load(data, 16);
        float[] Gradients(int k)
        {
            var options = TrainingTestKit.Options(TrainingTestKit.TempDirectory()) with { BatchSize = 16, AccumulationSteps = k };
            using var trainer = new Trainer(TrainingTestKit.Config, data, TrainingTestKit.Validation(), options, device);
            trainer.Model.Parameters.ZeroGrads();
            int micro = 16 / k, length = data.SampleLength;
            for (int j = 0; j < k; j++)
                trainer.Accumulate(images.AsSpan(j * micro * length), labels.AsSpan(j * micro), micro, 1f / k, 0, j);
            return trainer.Model.Parameters.Grads.ToArray();
        }
        var full = Gradients(1);
        var halves = Gradients(2);
        double maxAbs = full.Max(MathF.Abs);
        Assert.True(maxAbs > 0, "the gradient is zero");
        for (int i = 0; i < full.Length; i++)
            Assert.True(Math.Abs(full[i] - halves[i]) <= 1e-5 * maxAbs + 1e-4 * Math.Abs(full[i]),
                $"gradient {i}: one batch {full[i]} vs two half batches {halves[i]}");
    }

    [Fact]
    public void WritesCheckpointsAndMetricsWithTheExpectedContents()
    {
        string dir = TrainingTestKit.TempDirectory();
        using var device = TrainingTestKit.Cpu();
        var options = TrainingTestKit.Options(dir) with { Optimizer = OptimizerKind.Lion, LearningRate = 1e-3, Beta2 = 0.99, ClipNorm = 1f };
        using var trainer = new Trainer(TrainingTestKit.Config, TrainingTestKit.Train(), TrainingTestKit.Validation(), options, device);
        var lines = new List<EpochMetrics>();
        trainer.EpochCompleted = lines.Add;
        var metrics = trainer.Run();
        Assert.Equal(2, metrics.Count);
        Assert.Equal(2, lines.Count);
        Assert.Equal(8, trainer.Step); // 32 images / batch 8 = 4 steps per epoch

        string path = trainer.CheckpointPath(2);
        var file = Safetensors.Read(path);
        var state = JsonDocument.Parse(file.Metadata[TrainingCheckpoint.StateKey]).RootElement;
        foreach (var key in new[] { "epochs_completed", "step", "optimizer", "optimizer_step_count", "seed", "schedule_position", "learning_rate", "best_top1", "best_epoch" })
            Assert.True(state.TryGetProperty(key, out _), $"metadata lacks {key}");
        Assert.Equal(2, state.GetProperty("epochs_completed").GetInt32());
        Assert.Equal(8, state.GetProperty("optimizer_step_count").GetInt64());
        Assert.Equal("Lion", state.GetProperty("optimizer").GetString());
        Assert.Equal(5, state.GetProperty("seed").GetInt32());
        Assert.True(file.Metadata.ContainsKey("crate_config"));
        var exp = file["optimizer.exp_avg"];
        Assert.Equal(trainer.Model.Parameters.Count, exp.Data.Length);
        Assert.Equal(trainer.Optimizer.State[0].Tensor.ToArray(), exp.Data);
        Assert.Contains(exp.Data, v => v != 0f);
        Assert.Equal(trainer.Model.Parameters["cls_token"].Value.ToArray(), file["cls_token"].Data);
        Assert.True(File.Exists(trainer.CheckpointPath(1)));
        Assert.Empty(Directory.GetFiles(dir, "*.tmp"));

        using var reloaded = TrainingCheckpoint.LoadModel(path, device);
        Assert.Equal(trainer.Model.Parameters.Values.ToArray(), reloaded.Parameters.Values.ToArray());

        var csv = File.ReadAllLines(Path.Combine(dir, MetricsLog.CsvName));
        Assert.Equal("epoch,step,lr,train_loss,val_loss,top1,top5,images_per_s,grad_norm,coding_rate_l0,coding_rate_l1,sparsity_l0,sparsity_l1", csv[0]);
        Assert.Equal(3, csv.Length);
        Assert.All(csv.Skip(1), row => Assert.Equal(13, row.Split(',').Length));
        var json = File.ReadAllLines(Path.Combine(dir, MetricsLog.JsonName));
        Assert.Equal(2, json.Length);
        var last = JsonDocument.Parse(json[1]).RootElement;
        Assert.Equal(2, last.GetProperty("epoch").GetInt32());
        Assert.Equal(2, last.GetProperty("probes").GetArrayLength());
        Assert.Equal(2, last.GetProperty("probes")[0].GetProperty("coding_rate_per_head").GetArrayLength());
        foreach (var m in metrics)
        {
            Assert.True(double.IsFinite(m.TrainLoss) && double.IsFinite(m.ValLoss) && double.IsFinite(m.GradNorm) && m.GradNorm > 0);
            Assert.InRange(m.Top1, 0, 1);
            Assert.InRange(m.Top5, m.Top1, 1);
            Assert.True(m.ImagesPerSecond > 0);
        }
    }

    [Fact]
    public void NanInputStopsWithATypedErrorBeforeAnyCheckpoint()
    {
        string dir = TrainingTestKit.TempDirectory();
        using var device = TrainingTestKit.Cpu();
        var good = TrainingTestKit.Train(16);
        var images = new float[16 * good.SampleLength];
        var labels = new int[16];
        for (int i = 0; i < 16; i++)
        {
            var r = SampleRandom.For(0, 0, i);
            labels[i] = good.Load(i, images.AsSpan(i * good.SampleLength, good.SampleLength), ref r);
        }
        images[5] = float.NaN;
        var poisoned = new ArrayDataset(images, [16, 3, 16, 16], labels, good.ClassNames);
        var options = TrainingTestKit.Options(dir) with { BatchSize = 16, Epochs = 1, WarmupSteps = 0 };
        using var trainer = new Trainer(TrainingTestKit.Config, poisoned, TrainingTestKit.Validation(), options, device);
        var e = Assert.Throws<TrainingDivergedException>(() => trainer.Run());
        Assert.Equal("loss", e.Quantity);
        Assert.Equal(0, e.Epoch);
        Assert.Equal(0, e.Step);
        Assert.Null(e.LastCheckpoint);
        Assert.Empty(Directory.GetFiles(dir, "*.safetensors"));
    }

    [Fact]
    public void AbsurdLearningRateDivergesAndKeepsTheLastGoodCheckpoint()
    {
        string dir = TrainingTestKit.TempDirectory();
        using var device = TrainingTestKit.Cpu();
        var options = TrainingTestKit.Options(dir) with { Epochs = 1 };
        string first;
        using (var trainer = new Trainer(TrainingTestKit.Config, TrainingTestKit.Train(), TrainingTestKit.Validation(), options, device))
        {
            trainer.Run();
            first = trainer.LastCheckpoint!;
        }
        var before = File.ReadAllBytes(first);
        var absurd = options with { Epochs = 2, LearningRate = 1e30, WeightDecay = 0 };
        using var resumed = Trainer.Resume(first, TrainingTestKit.Train(), TrainingTestKit.Validation(), absurd, device);
        var e = Assert.Throws<TrainingDivergedException>(() => resumed.Run());
        Assert.Equal(1, e.Epoch);
        Assert.Contains(e.Quantity, new[] { "loss", "gradient norm", "weights' L2 norm" });
        Assert.Equal(Path.GetFullPath(first), e.LastCheckpoint);
        Assert.Contains("epoch 1", e.Message);
        Assert.Equal(before, File.ReadAllBytes(first));
        Assert.False(File.Exists(resumed.CheckpointPath(2)));
    }

    internal static (float[] Images, int[] Labels) Load(IDataset data, int count)
    {
        var images = new float[count * data.SampleLength];
        var labels = new int[count];
        for (int i = 0; i < count; i++)
        {
            var r = SampleRandom.For(0, 0, i);
            labels[i] = data.Load(i, images.AsSpan(i * data.SampleLength, data.SampleLength), ref r);
        }
        return (images, labels);
    }
}
