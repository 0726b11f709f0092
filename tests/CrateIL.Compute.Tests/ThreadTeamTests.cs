using CrateIL.Compute.Cpu;
using CrateIL.Compute.Devices;
using CrateIL.Testing;
using Xunit;

namespace CrateIL.Compute.Tests;

/// <summary>
/// The CPU thread team under nesting: a parallel region started from inside another one on the same team must run
/// on the calling thread. Member 0 of a team is the caller of <see cref="CpuThreadTeam.TryRun"/>, so a nested call
/// from member 0 comes from the thread that already runs the team's job; the team must refuse it like any other
/// call made while it is busy (it once re-entered, restarted the workers on the inner job while they were still in
/// the outer one, and then hung on a pending count of −1 or skipped the inner job's other chunks).
/// </summary>
public class ThreadTeamTests
{
    /// <summary>
    /// ParallelFor inside ParallelFor on one 2-thread device, many times over (the outer chunks of both members nest an
    /// inner loop): every inner index runs exactly once per outer index, nothing hangs, nothing throws.
    /// </summary>
    [Theory]
    [InlineData(2, 2, 7)]
    [InlineData(2, 3, 290)]
    [InlineData(3, 5, 33)]
    public async Task NestedParallelForRunsEveryIndexOnceAndFinishes(int threads, int outer, int inner)
    {
        var device = CpuDevice.Create(threads);
        const int repeats = 3000;
        var counts = new int[outer * inner];
        await TimeLimit.Within(() =>
        {
            // The row-op driver (RowMath.ForChunks over the device's team), nested: the inner call must run inline.
            for (int r = 0; r < repeats; r++)
                RowMath.ForChunks(device, outer, outer, new OuterKernel(device, counts, inner));
        }, $"{repeats} nested ForChunks({outer}) ∘ ForChunks({inner}) on {threads} threads");
        Assert.All(counts, c => Assert.Equal(repeats, c));
    }

    /// <summary>A job that calls TryRun on its own team from every member: each nested call is refused (runs nothing).</summary>
    [Fact]
    public async Task TryRunFromInsideTheTeamsOwnJobIsRefused()
    {
        var team = CpuThreadTeam.Get(2);
        var job = new NestingJob();
        await TimeLimit.Within(() =>
        {
            for (int r = 0; r < 1000; r++)
                while (!team.TryRun(job)) Thread.Yield();   // other tests may be using the shared 2-thread team
        }, "1000 team runs with nested TryRun calls");
        Assert.Equal(2000, job.Outer);
        Assert.Equal(0, job.NestedAccepted);
        Assert.Equal(0, job.InnerRuns);
    }

    /// <summary>
    /// CpuParallel.For runs every unit exactly once in aligned pieces, on 1–4 threads and odd sizes; and when a member
    /// is held up inside its first piece, the caller takes over the rest of that member's range instead of waiting.
    /// </summary>
    [Theory]
    [InlineData(2, 1, 1)]
    [InlineData(2, 3, 1)]
    [InlineData(2, 1001, 16)]
    [InlineData(3, 70_001, 16)]
    [InlineData(4, 97, 1)]
    public void ParallelForRunsEveryUnitOnceInAlignedPieces(int threads, int units, int align)
    {
        using var device = CpuDevice.Create(threads);
        var counts = new int[units];
        var starts = new System.Collections.Concurrent.ConcurrentBag<int>();
        for (int r = 0; r < 50; r++)
            CpuParallel.For(device, units, 1, new CountKernel(counts, starts, -1, 0), align);
        Assert.All(counts, c => Assert.Equal(50, c));
        Assert.All(starts, s => Assert.Equal(0, s % align));
    }

    [Fact]
    public void ParallelForLetsTheCallerTakeOverAStalledMembersPieces()
    {
        using var device = CpuDevice.Create(2);
        const int units = 4000;   // two ranges of 2000, four pieces of 500 each
        var counts = new int[units];
        var owners = new int[units];
        int caller = Environment.CurrentManagedThreadId;
        CpuParallel.For(device, units, 1, new CountKernel(counts, null, caller, 300, owners, new int[1]), 1);
        Assert.All(counts, c => Assert.Equal(1, c));
        // The other member is held up in the first piece it takes (whichever range it is in); the caller runs the rest.
        Assert.True(owners.Count(o => o != caller) <= 500, $"the other member ran {owners.Count(o => o != caller)} units, more than its one stalled piece");
    }

    /// <summary>Counts units; with <c>stallMs</c>, the first piece a thread other than <c>caller</c> takes sleeps that long.</summary>
    private readonly struct CountKernel(int[] counts, System.Collections.Concurrent.ConcurrentBag<int>? starts, int caller, int stallMs,
        int[]? owners = null, int[]? stalled = null) : IRangeKernel
    {
        public void Execute(int start, int count)
        {
            starts?.Add(start);
            int me = Environment.CurrentManagedThreadId;
            if (stallMs > 0 && me != caller && stalled is not null && Interlocked.Exchange(ref stalled[0], 1) == 0) Thread.Sleep(stallMs);
            for (int i = start; i < start + count; i++)
            {
                Interlocked.Increment(ref counts[i]);
                if (owners is not null) owners[i] = me;
            }
        }
    }

    private readonly struct OuterKernel(CpuDevice device, int[] counts, int inner) : IRowChunkKernel
    {
        public void Execute(int chunk, int start, int end)
        {
            // Some work before the nested region so the other member is still inside the outer job.
            if (chunk != 0) Thread.SpinWait(200);
            RowMath.ForChunks(device, inner, inner, new InnerKernel(counts, chunk * inner));
        }
    }

    private readonly struct InnerKernel(int[] counts, int offset) : IRowChunkKernel
    {
        public void Execute(int chunk, int start, int end) => Interlocked.Increment(ref counts[offset + chunk]);
    }

    private sealed class NestingJob : ITeamJob
    {
        public int Outer, NestedAccepted, InnerRuns;
        private readonly InnerJob _inner;

        public NestingJob() => _inner = new InnerJob(this);

        public void Execute(int thread, CpuThreadTeam team)
        {
            Interlocked.Increment(ref Outer);
            if (team.TryRun(_inner)) Interlocked.Increment(ref NestedAccepted);
        }

        private sealed class InnerJob(NestingJob owner) : ITeamJob
        {
            public void Execute(int thread, CpuThreadTeam team) => Interlocked.Increment(ref owner.InnerRuns);
        }
    }
}
