using CrateIL.Crate.Data;
using Xunit;

namespace CrateIL.Crate.Tests;

public class DataLoaderTests
{
    private static ShapesInClutter Shapes(int count) =>
        new(count, seed: 21, imageSize: 32, patchSize: 8, pipeline: new ImagePipeline(new RandomResizedCrop(16)));

    private static List<(float[] Images, int[] Labels, int[] Indices, int Number)> Collect(DataLoader loader, int epoch) =>
        loader.Epoch(epoch).Select(b => (b.ImagesSpan.ToArray(), b.LabelsSpan.ToArray(), b.IndicesSpan.ToArray(), b.Number)).ToList();

    [Fact]
    public void Batches_are_identical_across_runs_and_worker_counts()
    {
        var ds = Shapes(45);
        var inline = Collect(new DataLoader(ds, batchSize: 7, seed: 3, workers: 0), epoch: 1);
        var three = Collect(new DataLoader(ds, batchSize: 7, seed: 3, workers: 3, prefetch: 2), epoch: 1);
        var again = Collect(new DataLoader(ds, batchSize: 7, seed: 3, workers: 2, prefetch: 5), epoch: 1);
        Assert.Equal(7, inline.Count);
        Assert.Equal(3, inline[^1].Labels.Length);
        for (int b = 0; b < inline.Count; b++)
        {
            Assert.Equal(b, three[b].Number);
            Assert.Equal(inline[b].Indices, three[b].Indices);
            Assert.Equal(inline[b].Labels, three[b].Labels);
            Assert.Equal(inline[b].Images, three[b].Images);
            Assert.Equal(inline[b].Images, again[b].Images);
        }
        // The seed and the epoch both change the order and the augmentation.
        var otherEpoch = Collect(new DataLoader(ds, batchSize: 7, seed: 3, workers: 2), epoch: 2);
        Assert.NotEqual(inline[0].Indices, otherEpoch[0].Indices);
        var otherSeed = Collect(new DataLoader(ds, batchSize: 7, seed: 4, workers: 2), epoch: 1);
        Assert.NotEqual(inline[0].Indices, otherSeed[0].Indices);
    }

    [Fact]
    public void Each_sample_is_the_dataset_sample_under_its_own_stream()
    {
        var ds = Shapes(10);
        var loader = new DataLoader(ds, batchSize: 4, seed: 9, workers: 2);
        var expected = new float[ds.Channels * ds.Height * ds.Width];
        foreach (var batch in loader.Epoch(5))
        {
            for (int j = 0; j < batch.Count; j++)
            {
                var rng = loader.SampleStream(5, batch.Indices[j]);
                Assert.Equal(batch.Labels[j], ds.Load(batch.Indices[j], expected, ref rng));
                Assert.Equal(expected, batch.Images.AsSpan(j * batch.SampleLength, batch.SampleLength).ToArray());
            }
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Every_sample_appears_exactly_once_per_epoch(bool dropLast)
    {
        var ds = new ArrayDataset(new float[103 * 2], [103, 2, 1, 1], Enumerable.Range(0, 103).Select(i => i % 4).ToArray());
        var loader = new DataLoader(ds, batchSize: 10, seed: 1, workers: 3, prefetch: 3, dropLast: dropLast);
        Assert.Equal(dropLast ? 10 : 11, loader.BatchesPerEpoch);
        for (int epoch = 0; epoch < 3; epoch++)
        {
            var seen = new List<int>();
            foreach (var b in loader.Epoch(epoch))
            {
                seen.AddRange(b.IndicesSpan.ToArray());
                for (int j = 0; j < b.Count; j++) Assert.Equal(b.Indices[j] % 4, b.Labels[j]);
            }
            if (dropLast)
            {
                Assert.Equal(100, seen.Count);
                Assert.Equal(100, seen.Distinct().Count());
            }
            else
            {
                Assert.Equal(Enumerable.Range(0, 103), seen.Order());
                Assert.NotEqual(Enumerable.Range(0, 103), seen);
            }
        }
        var ordered = new DataLoader(ds, batchSize: 10, shuffle: false, workers: 2);
        Assert.Equal(Enumerable.Range(0, 103), ordered.Epoch(0).SelectMany(b => b.IndicesSpan.ToArray()));
    }

    /// <summary>Records, for each load, which batch the consumer was holding then.</summary>
    private sealed class ObservedDataset(int count, Func<int> consumerPosition, int batchSize) : IDataset
    {
        public int MaxAhead = int.MinValue;
        public int Count => count;
        public int ClassCount => 1;
        public IReadOnlyList<string> ClassNames => ["x"];
        public int Channels => 1;
        public int Height => 1;
        public int Width => 1;
        public int GetLabel(int index) => 0;

        public int Load(int index, Span<float> destination, ref SampleRandom random)
        {
            int ahead = index / batchSize - consumerPosition();
            InterlockedMax(ref MaxAhead, ahead);
            destination[0] = index;
            return 0;
        }

        private static void InterlockedMax(ref int target, int value)
        {
            int seen;
            while (value > (seen = Volatile.Read(ref target)) && Interlocked.CompareExchange(ref target, value, seen) != seen) { }
        }
    }

    [Fact]
    public void Prefetch_is_bounded()
    {
        const int B = 4, Prefetch = 3;
        // The batch the consumer holds or is about to take (batch 0 before the first MoveNext).
        int holding = 0;
        var ds = new ObservedDataset(80, () => Volatile.Read(ref holding), B);
        var loader = new DataLoader(ds, batchSize: B, shuffle: false, workers: 4, prefetch: Prefetch);
        int batches = 0;
        foreach (var batch in loader.Epoch(0))
        {
            Volatile.Write(ref holding, batch.Number);
            Assert.Equal(batch.Number * B, (int)batch.Images[0]);
            Thread.Sleep(15); // a slow consumer: workers run ahead as far as they may
            batches++;
            Volatile.Write(ref holding, batch.Number + 1);
        }
        Assert.Equal(20, batches);
        // While the consumer holds (or is about to take) batch n, workers fill at most n + 1 .. n + Prefetch; with a slow
        // consumer they get there.
        Assert.InRange(ds.MaxAhead, Prefetch - 1, Prefetch);
    }

    private sealed class FailingDataset(int count, int bad) : IDataset
    {
        public int Count => count;
        public int ClassCount => 1;
        public IReadOnlyList<string> ClassNames => ["x"];
        public int Channels => 1;
        public int Height => 1;
        public int Width => 1;
        public int GetLabel(int index) => 0;

        public int Load(int index, Span<float> destination, ref SampleRandom random)
        {
            if (index == bad) throw new DatasetException($"sample{index}.png", "decoding failed");
            destination[0] = index;
            return 0;
        }
    }

    [Fact]
    public void A_failing_sample_surfaces_at_its_batch_in_order()
    {
        var loader = new DataLoader(new FailingDataset(50, bad: 23), batchSize: 5, shuffle: false, workers: 3, prefetch: 4);
        var delivered = new List<int>();
        using var e = loader.Epoch(0).GetEnumerator();
        var ex = Assert.Throws<DatasetException>(() =>
        {
            while (e.MoveNext()) delivered.Add(e.Current.Number);
        });
        Assert.Equal("sample23.png", ex.File);
        Assert.Equal([0, 1, 2, 3], delivered);
    }

    [Fact]
    public void Steady_state_allocates_no_batch_buffers()
    {
        // 400 batches of 10 samples of 192 floats: fresh buffers would take about 3 MB per epoch.
        var ds = new ArrayDataset(new float[4000 * 192], [4000, 3, 8, 8], new int[4000]);
        var loader = new DataLoader(ds, batchSize: 10, seed: 2, workers: 2, prefetch: 2);
        foreach (var _ in loader.Epoch(0)) { }
        long before = GC.GetTotalAllocatedBytes(precise: true);
        int n = 0;
        foreach (var b in loader.Epoch(1)) n += b.Count;
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        Assert.Equal(4000, n);
        Assert.True(allocated < 256 * 1024, $"{allocated} bytes allocated in an epoch of 400 batches");
    }

    [Fact]
    public void One_epoch_at_a_time_and_argument_checks()
    {
        var ds = new ArrayDataset(new float[20], [20, 1, 1, 1]);
        var loader = new DataLoader(ds, batchSize: 3, workers: 1);
        using (var first = loader.Epoch(0).GetEnumerator())
        {
            Assert.True(first.MoveNext());
            Assert.Throws<InvalidOperationException>(() => loader.Epoch(1).GetEnumerator());
        }
        Assert.Equal(7, loader.Epoch(1).Count());
        Assert.Equal(-1, loader.Epoch(0).First().Labels[0]);
        Assert.Throws<ArgumentOutOfRangeException>(() => new DataLoader(ds, batchSize: 0));
        Assert.Throws<ArgumentException>(() => new DataLoader(ds, batchSize: 30, dropLast: true));
    }
}
