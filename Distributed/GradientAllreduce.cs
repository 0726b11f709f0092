using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using CrateIL.Compute.Tensors;

namespace CrateIL.Distributed;

/// <summary>One all-reduce unit: the element range [Start, Start + Length) of the gradient buffer.</summary>
public readonly record struct GradientBucket(long Start, long Length);

/// <summary>Cumulative timings of a <see cref="GradientAllreduce"/> (seconds on the training thread).</summary>
public sealed class AllreduceStats
{
    /// <summary>Steps whose gradients were reduced.</summary>
    public long Steps { get; internal set; }

    /// <summary>Time starting non-blocking all-reduces and polling them while the backward pass still runs.</summary>
    public double OverlappedCallSeconds { get; internal set; }

    /// <summary>
    /// Time after the backward pass waiting for the reduction to finish (the flat path's whole blocking all-reduce):
    /// the communication the step could not hide.
    /// </summary>
    public double ExposedSeconds { get; internal set; }

    /// <summary>Time copying gradients between the device and the host staging buffer (non-CPU devices).</summary>
    public double StagingSeconds { get; internal set; }

    /// <summary>Floats reduced per step.</summary>
    public long Elements { get; internal set; }

    public void Reset()
    {
        Steps = 0;
        OverlappedCallSeconds = ExposedSeconds = StagingSeconds = 0;
    }
}

/// <summary>
/// Sums a model's contiguous gradient buffer over every rank of an <see cref="MpiWorld"/>, in buckets that start as
/// soon as the backward pass has finished them (overlap), or as one blocking all-reduce after the backward (flat, the
/// comparison baseline).
/// <para>
/// The backward pass finishes parameters from the end of the buffer towards its start (head, last layer, …, patch
/// embedding; CrateModel registers them in forward order), so it reports progress as "every gradient at offset ≥ o
/// is final" (<see cref="GradientsFinalFrom"/>). Buckets are unions of consecutive parts (part = the span between two
/// reported offsets) of at least <c>bucketElements</c>, built from the end; each bucket's MPI_Iallreduce starts when
/// its lowest part is final, and every later report polls the outstanding ones (MPI_Test), which is what moves Open
/// MPI's non-blocking collectives forward while the training thread computes.
/// </para>
/// <para>
/// CPU tensors are reduced in place in their own native memory. Other devices go through one host staging buffer in
/// native memory (never moved by the GC): a finished bucket is copied down (this waits for the device's queued work),
/// reduced on the host and copied back in <see cref="Complete"/>. Page-locked (cudaHostRegister) staging and a
/// CUDA-aware or NCCL path are later work (docs/distributed.md).
/// </para>
/// Reduction order: Open MPI sums rank buffers in an order fixed by the algorithm and the rank count, so the result is
/// identical on every rank; with 2 ranks it is a + b, bit for bit the same as one process accumulating the two halves.
/// </summary>
public sealed unsafe class GradientAllreduce : IDisposable
{
    private readonly MpiWorld _world;
    private readonly Tensor _gradients;
    private readonly GradientBucket[] _buckets;
    private readonly Tensor?[] _bucketViews;
    private readonly MpiRequest[] _requests;
    private readonly bool[] _started;
    private readonly float* _host;
    private readonly bool _staged;
    private int _nextBucket;
    private bool _armed, _disposed;

    /// <param name="world">The job.</param>
    /// <param name="gradients">The contiguous gradient buffer (all parameters).</param>
    /// <param name="partStarts">
    /// The offsets the backward pass reports, in the order it reports them (descending, the last one 0).
    /// </param>
    /// <param name="bucketElements">Minimum floats per bucket (the last bucket, at offset 0, may be smaller).</param>
    /// <param name="overlap">Buckets during the backward pass (true) or one blocking all-reduce after it (false).</param>
    public GradientAllreduce(MpiWorld world, Tensor gradients, IReadOnlyList<long> partStarts, long bucketElements, bool overlap)
    {
        ArgumentNullException.ThrowIfNull(world);
        ArgumentNullException.ThrowIfNull(gradients);
        ArgumentNullException.ThrowIfNull(partStarts);
        _world = world;
        _gradients = gradients;
        Overlap = overlap;
        _buckets = overlap ? PlanBuckets(gradients.Length, partStarts, bucketElements) : [new GradientBucket(0, gradients.Length)];
        foreach (var b in _buckets)
            if (b.Length > int.MaxValue) throw new ArgumentOutOfRangeException(nameof(bucketElements), $"a bucket of {b.Length} floats exceeds MPI's int count");
        _requests = new MpiRequest[_buckets.Length];
        _started = new bool[_buckets.Length];
        _staged = !gradients.Device.IsHost;
        _bucketViews = new Tensor?[_buckets.Length];
        if (_staged)
        {
            _host = (float*)NativeMemory.AlignedAlloc((nuint)gradients.Length * sizeof(float), 64);
            for (int i = 0; i < _buckets.Length; i++)
                _bucketViews[i] = gradients.Slice(_buckets[i].Start, checked((int)_buckets[i].Length));
        }
        else
        {
            _host = (float*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(gradients.AsSpan()));
        }
        Stats.Elements = gradients.Length;
    }

    /// <summary>Buckets in the order they start (from the end of the buffer).</summary>
    public IReadOnlyList<GradientBucket> Buckets => _buckets;

    public bool Overlap { get; }

    public AllreduceStats Stats { get; } = new();

    /// <summary>
    /// Groups consecutive backward parts into buckets of at least <paramref name="bucketElements"/> floats, from the
    /// end of the buffer; every bucket boundary is a reported part start, so a bucket is final exactly when the
    /// backward pass reports its start.
    /// </summary>
    public static GradientBucket[] PlanBuckets(long length, IReadOnlyList<long> partStarts, long bucketElements)
    {
        ArgumentNullException.ThrowIfNull(partStarts);
        if (bucketElements < 1) throw new ArgumentOutOfRangeException(nameof(bucketElements), bucketElements, "a bucket holds at least one float");
        if (partStarts.Count == 0 || partStarts[^1] != 0)
            throw new ArgumentException("the backward parts must end with offset 0 (the whole buffer final)", nameof(partStarts));
        var buckets = new List<GradientBucket>();
        long end = length;
        long previous = length;
        foreach (long start in partStarts)
        {
            if (start < 0 || start > previous) throw new ArgumentException($"part starts must descend within [0, {length}]; got {start} after {previous}", nameof(partStarts));
            previous = start;
            if (end - start >= bucketElements || start == 0)
            {
                if (end > start) buckets.Add(new GradientBucket(start, end - start));
                end = start;
            }
        }
        return [.. buckets];
    }

    /// <summary>The next backward pass produces the step's final gradients (the last micro-batch): reduce them.</summary>
    public void Arm()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _armed = true;
        _nextBucket = 0;
        Array.Clear(_started);
    }

    /// <summary>
    /// Backward progress: every gradient at offset ≥ <paramref name="offset"/> is final. Starts the buckets that
    /// became final and polls the ones in flight. Does nothing unless armed and overlapping.
    /// </summary>
    public void GradientsFinalFrom(long offset)
    {
        if (!_armed || !Overlap) return;
        long t0 = Stopwatch.GetTimestamp();
        while (_nextBucket < _buckets.Length && _buckets[_nextBucket].Start >= offset) Start(_nextBucket++);
        for (int i = 0; i < _nextBucket; i++) _world.Test(ref _requests[i]);
        Stats.OverlappedCallSeconds += Stopwatch.GetElapsedTime(t0).TotalSeconds;
    }

    /// <summary>
    /// After the step's last backward pass: starts what has not started, waits for every bucket and leaves the sum
    /// over all ranks in the gradient buffer.
    /// </summary>
    public void Complete()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        long t0 = Stopwatch.GetTimestamp();
        if (Overlap)
        {
            while (_nextBucket < _buckets.Length) Start(_nextBucket++);
            for (int i = 0; i < _buckets.Length; i++) _world.Wait(ref _requests[i]);
        }
        else
        {
            Stage(0);
            _world.AllreduceSum(_host, checked((int)_gradients.Length));
        }
        if (_staged)
        {
            long s0 = Stopwatch.GetTimestamp();
            for (int i = 0; i < _buckets.Length; i++)
                _bucketViews[i]!.CopyFrom(new ReadOnlySpan<float>(_host + _buckets[i].Start, (int)_buckets[i].Length));
            Stats.StagingSeconds += Stopwatch.GetElapsedTime(s0).TotalSeconds;
        }
        Stats.ExposedSeconds += Stopwatch.GetElapsedTime(t0).TotalSeconds;
        Stats.Steps++;
        _armed = false;
    }

    private void Start(int i)
    {
        Stage(i);
        var b = _buckets[i];
        _requests[i] = _world.StartAllreduceSum(_host + b.Start, (int)b.Length);
        _started[i] = true;
    }

    private void Stage(int i)
    {
        if (!_staged) return;
        long t0 = Stopwatch.GetTimestamp();
        if (Overlap) _bucketViews[i]!.CopyTo(new Span<float>(_host + _buckets[i].Start, (int)_buckets[i].Length));
        else _gradients.CopyTo(new Span<float>(_host, checked((int)_gradients.Length)));
        Stats.StagingSeconds += Stopwatch.GetElapsedTime(t0).TotalSeconds;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var v in _bucketViews) v?.Dispose();
        if (_staged) NativeMemory.AlignedFree(_host);
    }
}
