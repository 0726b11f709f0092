using CrateIL.Crate.Data;
using CrateIL.Crate.Training;
using Xunit;

namespace CrateIL.Crate.Tests;

/// <summary>The pieces a mid-epoch resume and the training curves rely on: starting an epoch at a batch, reading metrics back.</summary>
public class ResumeSupportTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(3)]
    public void AnEpochStartedAtBatchKYieldsTheFullEpochsBatchesFromK(int workers)
    {
        var data = new ShapesInClutter(45, seed: 21, imageSize: 32, patchSize: 8, pipeline: new ImagePipeline(new RandomResizedCrop(16)));
        var loader = new DataLoader(data, batchSize: 7, seed: 3, workers: workers, prefetch: 2);
        var full = loader.Epoch(2).Select(b => (b.Number, b.IndicesSpan.ToArray(), b.ImagesSpan.ToArray())).ToList();
        foreach (int first in new[] { 0, 1, 4, 6, 7 })
        {
            var tail = loader.Epoch(2, first).Select(b => (b.Number, b.IndicesSpan.ToArray(), b.ImagesSpan.ToArray())).ToList();
            Assert.Equal(full.Count - first, tail.Count);
            for (int i = 0; i < tail.Count; i++)
            {
                Assert.Equal(full[first + i].Number, tail[i].Number);
                Assert.Equal(full[first + i].Item2, tail[i].Item2);
                Assert.Equal(full[first + i].Item3, tail[i].Item3);
            }
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => loader.Epoch(2, 8));
        Assert.Throws<ArgumentOutOfRangeException>(() => loader.Epoch(2, -1));
    }

    [Fact]
    public void MetricsReadBackAsWrittenWithTheLatestRecordOfARepeatedEpochAndCutLinesSkipped()
    {
        string dir = TrainingTestKit.TempDirectory();
        var log = new MetricsLog(dir, depth: 2);
        LayerProbe[] probes = [new(0, [1.5, 2.25], 3.75, 0.5), new(1, [0.125, 1e-7], 0.1250001, 0.75)];
        var first = new EpochMetrics(1, 10, 1e-3, 2.1234567890123, 2.0, 0.25, 0.75, 123.45, 1.5, probes);
        var second = first with { Epoch = 2, Step = 20, TrainLoss = 1.9, Top1 = 0.5 };
        var repeated = second with { TrainLoss = 1.8 };
        log.Append(first);
        log.Append(second);
        File.AppendAllText(log.JsonPath, "{\"epoch\": 3, \"step\"\n"); // a line cut short by a killed process
        log.Append(repeated); // epoch 2 again, after resuming from epoch 1's checkpoint
        var read = MetricsLog.Read(dir);
        Assert.Equal(2, read.Count);
        Assert.Equal(first.Json(), read[0].Json());
        Assert.Equal(repeated.Json(), read[1].Json());
        Assert.Equal(first.TrainLoss, read[0].TrainLoss);
        Assert.Equal(probes[1].CodingRatePerHead, read[0].Probes[1].CodingRatePerHead);
        Assert.Empty(MetricsLog.Read(Path.Combine(dir, "absent")));
    }
}
