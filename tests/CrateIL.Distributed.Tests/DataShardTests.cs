using CrateIL.Crate.Data;
using Xunit;

namespace CrateIL.Distributed.Tests;

public class DataShardTests
{
    /// <summary>Labels = dataset index, so a batch's labels say which samples it holds.</summary>
    private sealed class IndexDataset(int count) : IDataset
    {
        public int Count => count;
        public int Channels => 1;
        public int Height => 1;
        public int Width => 1;
        public int ClassCount => count;
        public IReadOnlyList<string> ClassNames => [.. Enumerable.Range(0, count).Select(i => $"c{i}")];
        public int GetLabel(int index) => index;

        public int Load(int index, Span<float> destination, ref SampleRandom random)
        {
            destination[0] = (float)random.NextDouble();
            return index;
        }
    }

    private static List<(int[] Labels, float[] Pixels)> Read(DataLoader loader, int epoch) =>
        loader.Epoch(epoch).Select(b => (b.LabelsSpan.ToArray(), b.ImagesSpan.ToArray())).ToList();

    [Theory]
    [InlineData(2, 1, 4)]
    [InlineData(3, 2, 2)]
    [InlineData(4, 3, 1)]
    public void Ranks_read_disjoint_shards_of_the_single_process_steps_with_the_same_augmentation(int ranks, int k, int micro)
    {
        // 103 samples (odd): one process with batch B = ranks·k·micro; every step's images, split over the ranks.
        var data = new IndexDataset(103);
        int globalBatch = ranks * k * micro;
        var single = Read(new DataLoader(data, globalBatch, shuffle: true, seed: 7, workers: 0, dropLast: true), epoch: 2);
        var shards = Enumerable.Range(0, ranks)
            .Select(r => Read(new DataLoader(data, micro, shuffle: true, seed: 7, workers: 1, dropLast: true, shard: new DataShard(r, ranks, k)), epoch: 2))
            .ToArray();
        Assert.All(shards, s => Assert.Equal(single.Count * k, s.Count));
        var seen = new HashSet<int>();
        for (int step = 0; step < single.Count; step++)
        {
            var labels = new List<int>();
            var pixels = new List<float>();
            for (int r = 0; r < ranks; r++)
                for (int j = 0; j < k; j++)
                {
                    labels.AddRange(shards[r][step * k + j].Labels);
                    pixels.AddRange(shards[r][step * k + j].Pixels);
                }
            Assert.Equal(single[step].Labels, labels);
            Assert.Equal(single[step].Pixels, pixels);
            foreach (int i in labels) Assert.True(seen.Add(i), $"sample {i} seen twice in the epoch");
        }
        Assert.Equal(103 / globalBatch * globalBatch, seen.Count);
    }

    [Fact]
    public void A_shard_must_name_a_rank_of_the_job()
    {
        var data = new IndexDataset(16);
        Assert.Throws<ArgumentOutOfRangeException>(() => new DataLoader(data, 2, dropLast: true, shard: new DataShard(2, 2, 1)));
        Assert.Throws<ArgumentException>(() => new DataLoader(data, 2, dropLast: false, shard: new DataShard(0, 2, 1)));
        Assert.Throws<ArgumentException>(() => new DataLoader(data, 8, dropLast: true, shard: new DataShard(0, 4, 1)));
    }
}
