using System.Collections;
using System.Runtime.ExceptionServices;

namespace CrateIL.Crate.Data;

/// <summary>
/// One batch: <see cref="Count"/> samples as float32 NCHW in <see cref="Images"/> (the first Count·SampleLength floats),
/// their labels and dataset indices. Buffers are reused: a batch is valid until the enumerator moves on.
/// </summary>
public sealed class Batch
{
    internal Batch(int capacity, int sampleLength)
    {
        Images = new float[capacity * sampleLength];
        Labels = new int[capacity];
        Indices = new int[capacity];
        SampleLength = sampleLength;
    }

    /// <summary>Capacity·SampleLength floats; samples j &lt; Count are at [j·SampleLength, (j + 1)·SampleLength).</summary>
    public float[] Images { get; }
    public int[] Labels { get; }

    /// <summary>The dataset index of each sample.</summary>
    public int[] Indices { get; }

    public int SampleLength { get; }
    public int Count { get; internal set; }

    /// <summary>Position of the batch within its epoch.</summary>
    public int Number { get; internal set; }

    public int Epoch { get; internal set; }

    public Span<float> ImagesSpan => Images.AsSpan(0, Count * SampleLength);
    public Span<int> LabelsSpan => Labels.AsSpan(0, Count);
    public Span<int> IndicesSpan => Indices.AsSpan(0, Count);

    internal Exception? Error;
}

/// <summary>
/// Batches of a dataset for one epoch at a time. The order is a Fisher–Yates shuffle keyed by (seed, epoch) (or the
/// dataset order), and sample i of epoch e is loaded with the random stream (seed, e, i), so the batches are identical
/// across runs whatever the thread timing. <see cref="Workers"/> threads each fill whole batches; batches are handed out
/// in order. At most <see cref="Prefetch"/> batches are prepared ahead of the one the consumer holds, in a fixed pool of
/// Prefetch + 1 buffers allocated once per loader, so a steady epoch allocates nothing per batch besides what decoding
/// does. Workers = 0 loads on the consumer's thread.
/// </summary>
public sealed class DataLoader
{
    private readonly Batch[] _buffers;
    private readonly int[] _order;
    private EpochRun? _active;

    public DataLoader(IDataset dataset, int batchSize, bool shuffle = true, long seed = 0, int workers = -1, int prefetch = -1,
        bool dropLast = false, DataShard? shard = null)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), $"batch size {batchSize} must be positive");
        if (dataset.Count == 0) throw new ArgumentException("the dataset is empty", nameof(dataset));
        Dataset = dataset;
        BatchSize = batchSize;
        Shuffle = shuffle;
        Seed = seed;
        Workers = workers < 0 ? Math.Max(1, Environment.ProcessorCount) : workers;
        Prefetch = prefetch < 0 ? Math.Max(2, 2 * Workers) : Math.Max(1, prefetch);
        DropLast = dropLast;
        BatchesPerEpoch = dropLast ? dataset.Count / batchSize : (dataset.Count + batchSize - 1) / batchSize;
        if (BatchesPerEpoch == 0) throw new ArgumentException($"dropLast with {dataset.Count} samples < batch size {batchSize} leaves no batch", nameof(dropLast));
        if (shard is not null)
        {
            // Data-parallel: this rank's batches of whole global steps (the global order is this loader's order).
            if (!dropLast) throw new ArgumentException("a sharded loader drops the last partial batch (dropLast: true)", nameof(shard));
            Shard = shard.Validate();
            BatchesPerEpoch = shard.LocalBatches(BatchesPerEpoch);
            if (BatchesPerEpoch == 0) throw new ArgumentException($"{dataset.Count} samples do not fill one global step of {shard.Ranks} ranks × {shard.BatchesPerStep} batches of {batchSize}", nameof(shard));
        }
        _buffers = new Batch[Workers == 0 ? 1 : Prefetch + 1];
        for (int i = 0; i < _buffers.Length; i++) _buffers[i] = new Batch(batchSize, dataset.SampleLength);
        _order = new int[dataset.Count];
    }

    public IDataset Dataset { get; }
    public int BatchSize { get; }
    public bool Shuffle { get; }
    public long Seed { get; }
    public int Workers { get; }
    public int Prefetch { get; }
    public bool DropLast { get; }
    public int BatchesPerEpoch { get; }

    /// <summary>This rank's shard of every global step (null: the whole order).</summary>
    public DataShard? Shard { get; }

    /// <summary>The order in which epoch <paramref name="epoch"/> visits the samples.</summary>
    public void GetOrder(int epoch, Span<int> order)
    {
        if (order.Length != Dataset.Count) throw new ArgumentException($"order holds {order.Length} entries; the dataset {Dataset.Count}", nameof(order));
        for (int i = 0; i < order.Length; i++) order[i] = i;
        if (!Shuffle) return;
        var rng = SampleRandom.For(Seed, epoch, -1);
        for (int i = order.Length - 1; i > 0; i--)
        {
            int j = rng.NextInt(i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
    }

    /// <summary>The random stream sample <paramref name="index"/> is loaded with in epoch <paramref name="epoch"/>.</summary>
    public SampleRandom SampleStream(int epoch, int index) => SampleRandom.For(Seed, epoch, index);

    /// <summary>
    /// The batches of one epoch, from batch <paramref name="firstBatch"/> on (a run resumed mid-epoch skips those it
    /// already trained on without loading them). Only one epoch may be enumerated at a time (the buffers are shared);
    /// disposing the enumerator (foreach does) stops the workers.
    /// </summary>
    public IEnumerable<Batch> Epoch(int epoch, int firstBatch = 0)
    {
        if ((uint)firstBatch > (uint)BatchesPerEpoch)
            throw new ArgumentOutOfRangeException(nameof(firstBatch), firstBatch, $"an epoch has {BatchesPerEpoch} batches");
        return new EpochEnumerable(this, epoch, firstBatch);
    }

    private sealed class EpochEnumerable(DataLoader loader, int epoch, int firstBatch) : IEnumerable<Batch>
    {
        public IEnumerator<Batch> GetEnumerator() => new EpochRun(loader, epoch, firstBatch);
        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }

    private void Fill(Batch batch, int epoch, int number)
    {
        int start = (Shard?.GlobalBatch(number) ?? number) * BatchSize;
        int count = Math.Min(BatchSize, Dataset.Count - start);
        int length = Dataset.SampleLength;
        batch.Epoch = epoch;
        batch.Number = number;
        batch.Count = count;
        batch.Error = null;
        for (int j = 0; j < count; j++)
        {
            int index = _order[start + j];
            var rng = SampleStream(epoch, index);
            batch.Indices[j] = index;
            batch.Labels[j] = Dataset.Load(index, batch.Images.AsSpan(j * length, length), ref rng);
        }
    }

    private sealed class EpochRun : IEnumerator<Batch>
    {
        private readonly DataLoader _loader;
        private readonly int _epoch;
        private readonly object _gate = new();
        private readonly Stack<Batch> _free;
        private readonly Batch?[] _ready;
        private readonly Thread[] _threads;
        private int _nextClaim, _nextDeliver;
        private bool _stopping, _disposed;
        private Batch? _current;

        public EpochRun(DataLoader loader, int epoch, int firstBatch)
        {
            lock (loader._buffers)
            {
                if (loader._active is not null) throw new InvalidOperationException("another epoch of this DataLoader is still being enumerated; dispose it first");
                loader._active = this;
            }
            _loader = loader;
            _epoch = epoch;
            _nextClaim = _nextDeliver = firstBatch;
            loader.GetOrder(epoch, loader._order);
            _free = new Stack<Batch>(loader._buffers);
            _ready = new Batch?[loader._buffers.Length];
            _threads = new Thread[loader.Workers];
            for (int t = 0; t < _threads.Length; t++)
            {
                _threads[t] = new Thread(Work) { IsBackground = true, Name = $"DataLoader worker {t}" };
                _threads[t].Start();
            }
        }

        public Batch Current => _current ?? throw new InvalidOperationException("no current batch: call MoveNext first");
        object IEnumerator.Current => Current;

        private void Work()
        {
            while (true)
            {
                Batch batch;
                int number;
                lock (_gate)
                {
                    while (!_stopping && _nextClaim < _loader.BatchesPerEpoch && _free.Count == 0) Monitor.Wait(_gate);
                    if (_stopping || _nextClaim >= _loader.BatchesPerEpoch) return;
                    batch = _free.Pop();
                    number = _nextClaim++;
                }
                try
                {
                    _loader.Fill(batch, _epoch, number);
                }
                catch (Exception ex)
                {
                    batch.Error = ex;
                }
                lock (_gate)
                {
                    _ready[number % _ready.Length] = batch;
                    Monitor.PulseAll(_gate);
                }
            }
        }

        public bool MoveNext()
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_threads.Length == 0) return MoveNextInline();
            Exception? error;
            lock (_gate)
            {
                if (_current is not null)
                {
                    _free.Push(_current);
                    _current = null;
                    Monitor.PulseAll(_gate);
                }
                if (_nextDeliver >= _loader.BatchesPerEpoch) return false;
                int slot = _nextDeliver % _ready.Length;
                while (_ready[slot] is null) Monitor.Wait(_gate);
                var batch = _ready[slot]!;
                _ready[slot] = null;
                _nextDeliver++;
                // Read the error before the buffer goes back to the pool: a worker refilling it clears the error.
                error = batch.Error;
                if (error is not null)
                {
                    _free.Push(batch);
                    Monitor.PulseAll(_gate);
                }
                else
                {
                    _current = batch;
                }
            }
            if (error is not null) ExceptionDispatchInfo.Capture(error).Throw();
            return true;
        }

        private bool MoveNextInline()
        {
            _current = null;
            if (_nextDeliver >= _loader.BatchesPerEpoch) return false;
            var batch = _free.Peek();
            _loader.Fill(batch, _epoch, _nextDeliver++);
            _current = batch;
            return true;
        }

        public void Reset() => throw new NotSupportedException("start a new epoch enumeration instead");

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            lock (_gate)
            {
                _stopping = true;
                Monitor.PulseAll(_gate);
            }
            foreach (var t in _threads) t.Join();
            lock (_loader._buffers) _loader._active = null;
        }
    }
}
