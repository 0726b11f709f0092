using System.Collections.Concurrent;

namespace CrateIL.Compute.Cpu;

/// <summary>One piece of work run by every member of a <see cref="CpuThreadTeam"/> at once.</summary>
internal interface ITeamJob
{
    /// <summary>Runs member <paramref name="thread"/>'s share. Members may meet at <see cref="CpuThreadTeam.Barrier"/>;
    /// every member must reach every barrier, so a job must not throw between barriers.</summary>
    void Execute(int thread, CpuThreadTeam team);
}

/// <summary>
/// A fixed team of threads (the caller plus <c>Size − 1</c> dedicated workers) that run one job together and can
/// synchronise with a cheap spinning barrier. The thread pool cannot promise that all members run at the same time
/// (a barrier there can wait for the pool to inject a thread), so BLIS-style cooperative kernels use this instead.
/// Idle workers spin briefly, then sleep on a monitor. Teams are cached per size and live for the process.
/// </summary>
internal sealed class CpuThreadTeam
{
    private static readonly ConcurrentDictionary<int, CpuThreadTeam> Teams = new();

    private readonly object _wakeLock = new();
    private int _busy;   // 1 while a job runs: taken by compare-exchange, so (unlike a monitor) the running caller cannot re-enter
    private ITeamJob? _job;
    private int _generation;
    private int _pending;
    private Exception? _failure;
    private int _barrierCount;
    private int _barrierSense;

    /// <summary>
    /// Worker spin time before sleeping, in Stopwatch ticks (default 50 µs; env CRATEIL_TEAM_SPIN_US): back-to-back calls
    /// find workers awake. A sleeping worker takes about 90 µs to wake on the KVM guest we measure on, but spinning
    /// 1 ms instead made no measurable difference to whole models there (quiet sitting, session 15), so idle
    /// processes stay cheap.
    /// </summary>
    private static readonly long SpinTicks = System.Diagnostics.Stopwatch.Frequency / 1_000_000 *
        (long.TryParse(Environment.GetEnvironmentVariable("CRATEIL_TEAM_SPIN_US"), out long us) && us >= 0 ? us : 50);

    /// <summary>
    /// How long a wait pause-spins (Thread.SpinWait) before it falls back to <see cref="SpinWait"/>, in Stopwatch ticks
    /// (20 µs). SpinWait yields the processor (a sched_yield system call) on every call past its tenth, a few
    /// microseconds in: on dedicated cores that only costs a system call and delays noticing the flag, and most waits
    /// of a team (a join, a barrier, the next job) end within a few tens of microseconds. Past this a wait yields as
    /// before, so a team larger than the machine's cores still lets the member it waits for run.
    /// </summary>
    private static readonly long PauseTicks = System.Diagnostics.Stopwatch.Frequency / 50_000;

    /// <summary>Waits while <c>location == value</c> is <paramref name="equal"/>: pause-spinning first, then SpinWait until <paramref name="deadline"/> (Stopwatch ticks; long.MaxValue: no limit). Returns false at the deadline.</summary>
    private static bool SpinWhile(ref int location, int value, bool equal, long deadline = long.MaxValue)
    {
        if ((Volatile.Read(ref location) == value) != equal) return true;
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        long pauseEnd = start + PauseTicks;
        while ((Volatile.Read(ref location) == value) == equal)
        {
            Thread.SpinWait(20);
            long now = System.Diagnostics.Stopwatch.GetTimestamp();
            if (now >= deadline) return false;
            if (now < pauseEnd) continue;
            var spin = new SpinWait();
            while ((Volatile.Read(ref location) == value) == equal)
            {
                if (System.Diagnostics.Stopwatch.GetTimestamp() >= deadline) return false;
                spin.SpinOnce(sleep1Threshold: -1);
            }
            return true;
        }
        return true;
    }

    private CpuThreadTeam(int size)
    {
        Size = size;
        for (int i = 1; i < size; i++)
        {
            int member = i;
            var t = new Thread(() => WorkerLoop(member)) { IsBackground = true, Name = $"CrateIL CPU team {size}/{member}" };
            t.Start();
        }
    }

    /// <summary>Number of members, the caller included.</summary>
    public int Size { get; }

    /// <summary>The process-wide team of <paramref name="size"/> threads.</summary>
    public static CpuThreadTeam Get(int size)
    {
        if (size < 1) throw new ArgumentOutOfRangeException(nameof(size), size, "a team has at least one thread");
        return Teams.GetOrAdd(size, s => new CpuThreadTeam(s));
    }

    /// <summary>
    /// Runs <paramref name="job"/> on every member (the caller is member 0) and waits for all of them.
    /// Returns false without running anything when the team is busy with a job, so that callers never queue behind
    /// each other (they run single-threaded instead). That includes a call made from inside the running job by any
    /// member, member 0 too: member 0 is the thread that called TryRun, and a re-entrant start would overwrite the
    /// job and pending count while the other members are still in the outer job (they would then count their outer
    /// share as done for the inner job, skip its chunks, and later drive the pending count to −1, so the outer
    /// caller spins forever). This is why the busy flag is not a <see cref="Monitor"/>, which is re-entrant.
    /// </summary>
    public bool TryRun(ITeamJob job)
    {
        if (Interlocked.CompareExchange(ref _busy, 1, 0) != 0) return false;
        try
        {
            if (Size == 1)
            {
                job.Execute(0, this);
                return true;
            }
            _failure = null;
            _job = job;
            Volatile.Write(ref _pending, Size - 1);
            lock (_wakeLock)
            {
                Volatile.Write(ref _generation, _generation + 1);
                Monitor.PulseAll(_wakeLock);
            }
            Exception? own = null;
            try { job.Execute(0, this); }
            catch (Exception e) { own = e; }
            SpinWhile(ref _pending, 0, equal: false);
            _job = null;
            var failure = own ?? _failure;
            if (failure is not null) throw new AggregateException("A CPU team member failed", failure);
            return true;
        }
        finally
        {
            Volatile.Write(ref _busy, 0);
        }
    }

    /// <summary>Waits until every member of the running job has arrived (sense-reversing spin barrier).</summary>
    public void Barrier()
    {
        if (Size == 1) return;
        int sense = Volatile.Read(ref _barrierSense);
        if (Interlocked.Increment(ref _barrierCount) == Size)
        {
            Volatile.Write(ref _barrierCount, 0);
            Volatile.Write(ref _barrierSense, sense ^ 1);
            return;
        }
        SpinWhile(ref _barrierSense, sense, equal: true);
    }

    private void WorkerLoop(int member)
    {
        int seen = 0;
        while (true)
        {
            SpinWhile(ref _generation, seen, equal: true, System.Diagnostics.Stopwatch.GetTimestamp() + SpinTicks);
            if (Volatile.Read(ref _generation) == seen)
            {
                lock (_wakeLock)
                {
                    while (_generation == seen) Monitor.Wait(_wakeLock);
                }
            }
            seen = Volatile.Read(ref _generation);
            try { _job!.Execute(member, this); }
            catch (Exception e) { _failure = e; }
            Interlocked.Decrement(ref _pending);
        }
    }
}
