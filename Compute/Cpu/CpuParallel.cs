using CrateIL.Compute.Devices;

namespace CrateIL.Compute.Cpu;

/// <summary>A piece of work over a range of units [start, start + count) that can run on any thread.</summary>
internal interface IRangeKernel
{
    void Execute(int start, int count);
}

/// <summary>
/// Splits [0, units) into one contiguous chunk per thread of a <see cref="CpuDevice"/> when there is enough work
/// (each run in pieces that a member done early may take over, see <see cref="RangeJob{TKernel}"/>), and runs
/// everything on the calling thread otherwise. The kernel is a struct, so the single-threaded path is
/// a direct, inlinable call; the multi-threaded path runs on the device's <see cref="CpuThreadTeam"/> with a
/// per-thread reusable job object, so neither path allocates. When the team is already busy (a nested call from
/// inside another parallel region) the work runs on the calling thread instead of oversubscribing the cores.
/// </summary>
internal static class CpuParallel
{
    /// <summary>Elements per thread below which splitting a cheap elementwise op costs more than it saves.</summary>
    public const int ElementGrain = 1 << 15;

    /// <param name="units">Number of work units (elements, rows, column tiles).</param>
    /// <param name="grain">Minimum units per thread; fewer units than 2·grain run single-threaded.</param>
    /// <param name="align">Chunk boundaries are multiples of this (e.g. 16 elements = one cache line), so
    /// neighbouring threads never write the same cache line and every chunk but the last is SIMD-aligned.</param>
    public static void For<TKernel>(CpuDevice device, int units, int grain, in TKernel kernel, int align = 1)
        where TKernel : struct, IRangeKernel
    {
        if (units <= 0) return;
        int threads = (int)Math.Min(device.Threads, (long)units / Math.Max(1, grain));
        if (threads <= 1)
        {
            kernel.Execute(0, units);
            return;
        }
        int chunk = (units + threads - 1) / threads;
        chunk = (chunk + align - 1) / align * align;
        int chunks = (units + chunk - 1) / chunk;
        var job = RangeJob<TKernel>.Rent(kernel, units, chunk, chunks, align);
        try
        {
            if (!CpuThreadTeam.Get(device.Threads).TryRun(job)) kernel.Execute(0, units);
        }
        finally
        {
            job.Return();
        }
    }

    /// <summary>Pieces each thread's range is cut into, so that a member done early can take what is left of another's.</summary>
    internal const int PiecesPerRange = 4;

    /// <summary>
    /// Carries a struct kernel to the thread team without a closure per call. Member t owns contiguous range t (as a
    /// static split) and works through it in <see cref="PiecesPerRange"/> pieces taken from a counter of its own;
    /// a member done with its ranges takes the pieces left in the others' (the same counters), so one that the machine
    /// stalls — another process, a host preempting a virtual CPU — does less instead of holding up the join. Piece
    /// boundaries depend only on the units, the range size and the alignment, never on timing, so results are the
    /// same whichever member runs a piece.
    /// </summary>
    private sealed class RangeJob<TKernel> : ITeamJob where TKernel : struct, IRangeKernel
    {
        [ThreadStatic] private static RangeJob<TKernel>? _free;

        /// <summary>Ints per counter: one 64-byte line each, so members taking from their own ranges never share a line.</summary>
        private const int Stride = 16;

        private TKernel _kernel;
        private int _units, _chunk, _chunks, _piece;
        private int[] _next = [];

        public void Execute(int thread, CpuThreadTeam team)
        {
            // The grain chose how many members take part (_chunks ranges); the others stay out.
            if (thread >= _chunks) return;
            for (int c = thread; c < _chunks; c += team.Size) RunRange(c);
            for (int k = 1; k < _chunks; k++) RunRange((thread + k) % _chunks);
        }

        public static RangeJob<TKernel> Rent(in TKernel kernel, int units, int chunk, int chunks, int align)
        {
            // Nested use on the same thread finds the slot empty and makes a fresh job.
            var job = _free ?? new RangeJob<TKernel>();
            _free = null;
            job._kernel = kernel;
            job._units = units;
            job._chunk = chunk;
            job._chunks = chunks;
            int piece = (chunk + PiecesPerRange - 1) / PiecesPerRange;
            job._piece = Math.Min(chunk, (piece + align - 1) / align * align);
            if (job._next.Length < chunks * Stride) job._next = new int[chunks * Stride];
            else Array.Clear(job._next, 0, chunks * Stride);
            return job;
        }

        public void Return()
        {
            _kernel = default;
            _free = this;
        }

        private void RunRange(int range)
        {
            // In long: a range near int.MaxValue units must not wrap past its end.
            long start = (long)range * _chunk, end = Math.Min(_units, start + _chunk);
            long pieces = (end - start + _piece - 1) / _piece;
            while (true)
            {
                int p = Interlocked.Increment(ref _next[range * Stride]) - 1;
                if (p >= pieces) return;
                long s = start + (long)p * _piece;
                _kernel.Execute((int)s, (int)Math.Min(_piece, end - s));
            }
        }
    }
}
