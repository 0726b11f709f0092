using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace CrateIL.Compute.Cpu;

/// <summary>
/// Measures this machine's fused multiply-add peak (GFLOP/s) on a number of threads, with the vector width the
/// CPU SGEMM uses, so GEMM speed can be reported as a fraction of what the cores can do right now (on a shared or
/// throttled machine the nominal peak is meaningless; measuring both in one run makes the ratio robust).
/// </summary>
public static class FmaPeak
{
    /// <summary>Vector width (bits) of the FMA instructions in the CPU SGEMM micro-kernel on this machine.</summary>
    public static int GemmVectorBits => CpuSgemm.VectorBits;

    /// <summary>
    /// Best-of-<paramref name="repeats"/> FMA throughput with <paramref name="threads"/> threads running together,
    /// each repeat lasting about <paramref name="millisecondsPerRepeat"/> ms. Vector bits 0 = the GEMM's width.
    /// </summary>
    public static double MeasureGflops(int threads, int vectorBits = 0, int repeats = 5, int millisecondsPerRepeat = 100)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        if (vectorBits == 0) vectorBits = GemmVectorBits;
        if (vectorBits is not (256 or 512)) throw new ArgumentOutOfRangeException(nameof(vectorBits), vectorBits, "256 or 512");
        if (vectorBits == 512 && !Avx512F.IsSupported) throw new PlatformNotSupportedException("Vector512 FMA needs AVX-512F");
        var job = new Job(vectorBits);
        var team = CpuThreadTeam.Get(threads);
        // Calibrate the chunk so that one chunk takes about the requested time (also warms up the JIT's tier 1).
        long iterations = 1 << 16;
        double seconds = 0;
        for (int i = 0; i < 20 && seconds < millisecondsPerRepeat / 4000.0; i++)
        {
            seconds = Time(team, job, iterations);
            if (seconds < millisecondsPerRepeat / 4000.0) iterations *= 2;
        }
        iterations = Math.Max(iterations, (long)(iterations * (millisecondsPerRepeat / 1000.0) / Math.Max(seconds, 1e-9)));
        double best = 0;
        for (int r = 0; r < repeats; r++)
        {
            double s = Time(team, job, iterations);
            best = Math.Max(best, threads * job.FlopsPerIteration * iterations / s / 1e9);
        }
        return best;
    }

    /// <summary>
    /// Short peak samples of a fixed length, to interleave one-for-one with the calls of another benchmark: on a
    /// shared machine both then see the same load, and best-of over the same number of equally long samples
    /// gives a fair ratio.
    /// </summary>
    public sealed class Sampler
    {
        private readonly Job _job;
        private readonly CpuThreadTeam _team;
        private readonly int _threads;

        /// <summary>Calibrates a sample to take about <paramref name="seconds"/> on <paramref name="threads"/> threads.</summary>
        public Sampler(int threads, double seconds, int vectorBits = 0)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
            _threads = threads;
            _job = new Job(vectorBits == 0 ? GemmVectorBits : vectorBits);
            _team = CpuThreadTeam.Get(threads);
            long iterations = 1024;
            double best = double.MaxValue;
            for (int i = 0; i < 40; i++)
            {
                best = Math.Min(best, Time(_team, _job, iterations));
                if (i >= 3 && best >= seconds / 2) break;
                if (best < seconds / 2) { iterations *= 2; best = double.MaxValue; }
            }
            _job.Iterations = Math.Max(1, (long)(iterations * seconds / best));
        }

        /// <summary>Wall-clock seconds of the last sample.</summary>
        public double LastSeconds { get; private set; }

        /// <summary>Runs one sample; returns its GFLOP/s.</summary>
        public double Sample()
        {
            LastSeconds = Time(_team, _job, _job.Iterations);
            return _threads * _job.FlopsPerIteration * _job.Iterations / LastSeconds / 1e9;
        }
    }

    /// <summary>Runs <paramref name="iterations"/> of the FMA chains on each of <paramref name="threads"/> threads; returns the flops done.</summary>
    internal static double Run(int threads, long iterations, int vectorBits = 0)
    {
        var job = new Job(vectorBits == 0 ? GemmVectorBits : vectorBits) { Iterations = iterations };
        var team = CpuThreadTeam.Get(threads);
        while (!team.TryRun(job)) Thread.Yield();
        return threads * job.FlopsPerIteration * iterations;
    }

    private static double Time(CpuThreadTeam team, Job job, long iterations)
    {
        job.Iterations = iterations;
        long t0 = Stopwatch.GetTimestamp();
        while (!team.TryRun(job)) Thread.Yield();
        return Stopwatch.GetElapsedTime(t0).TotalSeconds;
    }

    private sealed class Job(int bits) : ITeamJob
    {
        public long Iterations;
        public float Sink;
        /// <summary>12 independent FMA chains per iteration, 2 flops per lane.</summary>
        public double FlopsPerIteration => 12.0 * 2 * (bits / 32);

        public void Execute(int thread, CpuThreadTeam team)
        {
            team.Barrier();
            float s = bits == 512 ? Chains512(Iterations) : Chains256(Iterations);
            if (s == 12345.678f) Sink = s;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> F256(Vector256<float> a, Vector256<float> b, Vector256<float> c) =>
        Fma.IsSupported ? Fma.MultiplyAdd(a, b, c) : a * b + c;

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Chains256(long n)
    {
        var m = Vector256.Create(0.9999999f);
        var d = Vector256.Create(1e-7f);
        Vector256<float> a0 = Vector256.Create(1f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0,
            a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
        for (long i = 0; i < n; i++)
        {
            a0 = F256(a0, m, d); a1 = F256(a1, m, d); a2 = F256(a2, m, d);
            a3 = F256(a3, m, d); a4 = F256(a4, m, d); a5 = F256(a5, m, d);
            a6 = F256(a6, m, d); a7 = F256(a7, m, d); a8 = F256(a8, m, d);
            a9 = F256(a9, m, d); a10 = F256(a10, m, d); a11 = F256(a11, m, d);
        }
        return Vector256.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Chains512(long n)
    {
        var m = Vector512.Create(0.9999999f);
        var d = Vector512.Create(1e-7f);
        Vector512<float> a0 = Vector512.Create(1f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0,
            a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
        for (long i = 0; i < n; i++)
        {
            a0 = Avx512F.FusedMultiplyAdd(a0, m, d); a1 = Avx512F.FusedMultiplyAdd(a1, m, d); a2 = Avx512F.FusedMultiplyAdd(a2, m, d);
            a3 = Avx512F.FusedMultiplyAdd(a3, m, d); a4 = Avx512F.FusedMultiplyAdd(a4, m, d); a5 = Avx512F.FusedMultiplyAdd(a5, m, d);
            a6 = Avx512F.FusedMultiplyAdd(a6, m, d); a7 = Avx512F.FusedMultiplyAdd(a7, m, d); a8 = Avx512F.FusedMultiplyAdd(a8, m, d);
            a9 = Avx512F.FusedMultiplyAdd(a9, m, d); a10 = Avx512F.FusedMultiplyAdd(a10, m, d); a11 = Avx512F.FusedMultiplyAdd(a11, m, d);
        }
        return Vector512.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }
}
