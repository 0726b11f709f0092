using CrateIL.Compute.Cpu;
using CrateIL.Compute.Devices;
using CrateIL.Compute.Ops;
using CrateIL.Compute.Tensors;
using CrateIL.Testing;
using Xunit;

namespace CrateIL.Compute.Tests;

public class GemmTests
{
    /// <summary>
    /// One GEMM call: sizes, transposes, α/β, padding of the leading dimensions, element offsets and gaps between
    /// batch entries. C is NaN-poisoned where it is written when β = 0, and holds a sentinel outside the written
    /// region, which must survive.
    /// </summary>
    public sealed record Case(int Batch, int M, int N, int K, bool TransA, bool TransB, float Alpha = 1f, float Beta = 0f,
        int PadA = 0, int PadB = 0, int PadC = 0, long OffsetA = 0, long OffsetB = 0, long OffsetC = 0, int Gap = 0)
    {
        public override string ToString() =>
            $"{Batch}x{M}x{N}x{K} {(TransA ? 'T' : 'N')}{(TransB ? 'T' : 'N')} a={Alpha} b={Beta} pad={PadA},{PadB},{PadC} off={OffsetA},{OffsetB},{OffsetC} gap={Gap}";
    }

    private const float Sentinel = 7.25f;

    /// <summary>Float32 accumulation over k terms of size ≤ 1: error grows like √k.</summary>
    private static Tolerance TolFor(int k) => OpTolerances.Gemm(k);

    private static readonly bool[] Bools = [false, true];

    private static IEnumerable<(int M, int N, int K)> OddShapes(bool simulator) => simulator
        ? [(1, 1, 1), (7, 5, 3), (1, 7, 9), (9, 1, 7), (5, 7, 1), (17, 18, 19)]
        : [(1, 1, 1), (1, 7, 65), (7, 1, 127), (65, 127, 1), (127, 65, 7), (1, 785, 127), (785, 1, 65),
           (7, 785, 65), (785, 7, 127), (65, 127, 785), (127, 65, 300), (300, 257, 520)];

    /// <summary>Runs <paramref name="c"/> on <paramref name="device"/> (optionally with a chosen CPU micro-kernel) and checks it against the float64 reference.</summary>
    internal static void RunAndCheck(Device device, Case c, SgemmKernel? kernel = null)
    {
        int lda = (c.TransA ? c.M : c.K) + c.PadA, ldb = (c.TransB ? c.K : c.N) + c.PadB, ldc = c.N + c.PadC;
        long strideA = (long)(c.TransA ? c.K : c.M) * lda + c.Gap;
        long strideB = (long)(c.TransB ? c.N : c.K) * ldb + c.Gap;
        long strideC = (long)c.M * ldc + c.Gap;
        long lenA = c.OffsetA + c.Batch * strideA, lenB = c.OffsetB + c.Batch * strideB, lenC = c.OffsetC + c.Batch * strideC;
        var a = TestData.Uniform(11, Math.Max(lenA, 1));
        var b = TestData.Uniform(12, Math.Max(lenB, 1));
        var cInit = new float[Math.Max(lenC, 1)];
        Array.Fill(cInit, Sentinel);
        var init = TestData.Uniform(13, cInit.Length);
        for (int bt = 0; bt < c.Batch; bt++)
            for (int i = 0; i < c.M; i++)
                for (int j = 0; j < c.N; j++)
                {
                    long at = c.OffsetC + bt * strideC + (long)i * ldc + j;
                    cInit[at] = c.Beta == 0f ? float.NaN : init[at];
                }

        var expected = TestData.ToDouble(cInit);
        var args = new GemmArgs(c.Batch, c.M, c.N, c.K, c.Alpha, c.TransA, c.TransB, c.Beta,
            c.OffsetA, lda, strideA, c.OffsetB, ldb, strideB, c.OffsetC, ldc, strideC);
        GemmReference.Run(args, a, b, expected);

        using var ta = device.FromHost(a, a.Length);
        using var tb = device.FromHost(b, b.Length);
        using var tc = device.FromHost(cInit, cInit.Length);
        var opA = new MatrixOperand(ta, c.OffsetA, lda, strideA);
        var opB = new MatrixOperand(tb, c.OffsetB, ldb, strideB);
        var opC = new MatrixOperand(tc, c.OffsetC, ldc, strideC);
        if (kernel is SgemmKernel k)
            GemmCpu.Run((CpuDevice)device, ta, tb, tc,
                Gemm.Resolve(c.Batch, c.M, c.N, c.K, c.Alpha, opA, c.TransA, opB, c.TransB, c.Beta, opC), k);
        else
            Gemm.Batched(c.Batch, c.M, c.N, c.K, c.Alpha, opA, c.TransA, opB, c.TransB, c.Beta, opC);
        Check.Close(tc.ToArray(), expected, TolFor(c.K), $"GEMM {c} on {device.Spec}{(kernel is SgemmKernel kk ? " " + kk.Name : "")}");
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void AllTransposeCombosOnOddShapesMatchTheReference(string backend)
    {
        var dev = Backends.Get(backend);
        foreach (var (m, n, k) in OddShapes(Backends.IsSimulator(backend)))
            foreach (bool ta in Bools)
                foreach (bool tb in Bools)
                    RunAndCheck(dev, new Case(1, m, n, k, ta, tb));
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void AlphaBetaScaleAndAccumulate(string backend)
    {
        var dev = Backends.Get(backend);
        int s = Backends.IsSimulator(backend) ? 9 : 127;
        foreach (bool ta in Bools)
            foreach (bool tb in Bools)
            {
                RunAndCheck(dev, new Case(1, s, s - 2, s + 3, ta, tb, Alpha: 0.75f, Beta: -1.5f));
                RunAndCheck(dev, new Case(1, s, s + 1, s, ta, tb, Alpha: -2f, Beta: 1f));
            }
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void BetaZeroNeverReadsPoisonedC(string backend)
    {
        var dev = Backends.Get(backend);
        int s = Backends.IsSimulator(backend) ? 7 : 65;
        RunAndCheck(dev, new Case(1, s, s + 2, s - 3, false, false, Alpha: 1.5f, Beta: 0f));
        RunAndCheck(dev, new Case(2, s, 3, s, true, true, Alpha: 1f, Beta: 0f, PadC: 5, Gap: 3));
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void EmptyInnerDimensionOrZeroAlphaOnlyScalesC(string backend)
    {
        var dev = Backends.Get(backend);
        RunAndCheck(dev, new Case(1, 7, 9, 0, false, false, Beta: 0f));
        RunAndCheck(dev, new Case(2, 7, 9, 0, true, false, Beta: 0.5f, PadC: 2));
        RunAndCheck(dev, new Case(1, 5, 6, 7, false, true, Alpha: 0f, Beta: 2f));
        RunAndCheck(dev, new Case(1, 5, 6, 7, false, false, Alpha: 0f, Beta: 0f));
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void BatchedWithPaddingOffsetsAndGaps(string backend)
    {
        var dev = Backends.Get(backend);
        bool sim = Backends.IsSimulator(backend);
        foreach (bool ta in Bools)
            foreach (bool tb in Bools)
                RunAndCheck(dev, sim
                    ? new Case(3, 5, 7, 6, ta, tb, 0.5f, 0.25f, PadA: 1, PadB: 2, PadC: 3, OffsetA: 4, OffsetB: 5, OffsetC: 6, Gap: 7)
                    : new Case(5, 65, 127, 33, ta, tb, 0.5f, 0.25f, PadA: 3, PadB: 5, PadC: 7, OffsetA: 11, OffsetB: 13, OffsetC: 17, Gap: 19));
    }

    /// <summary>
    /// Attention per head over column slices of [N, heads·d] matrices: S_h = Q_h·K_hᵀ (lda = ldb = heads·d,
    /// offset h·d), then O_h = S_h·V_h written back into the columns of an [N, heads·d] output (ldc = heads·d).
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void PerHeadColumnSlicesOfAWideMatrix(string backend)
    {
        var dev = Backends.Get(backend);
        var (n, heads, d) = Backends.IsSimulator(backend) ? (9, 2, 4) : (197, 6, 64);
        int width = heads * d;
        var q = TestData.Uniform(21, n * width);
        var kk = TestData.Uniform(22, n * width);
        var v = TestData.Uniform(23, n * width);
        using var tq = dev.FromHost(q, n, width);
        using var tk = dev.FromHost(kk, n, width);
        using var tv = dev.FromHost(v, n, width);
        using var ts = dev.Allocate(heads, n, n);
        using var to = dev.Allocate(n, width);
        ts.Fill(float.NaN);
        to.Fill(float.NaN);
        Gemm.Batched(heads, n, n, d, 0.125f, new MatrixOperand(tq, 0, width, d), false,
            new MatrixOperand(tk, 0, width, d), true, 0f, new MatrixOperand(ts, 0, n, (long)n * n));
        Gemm.Batched(heads, n, d, n, 1f, new MatrixOperand(ts, 0, n, (long)n * n), false,
            new MatrixOperand(tv, 0, width, d), false, 0f, new MatrixOperand(to, 0, width, d));
        var s = ts.ToArray();
        var sExpected = new double[s.Length];
        var oExpected = new double[n * width];
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++)
                {
                    double acc = 0;
                    for (int p = 0; p < d; p++) acc += (double)q[i * width + h * d + p] * kk[j * width + h * d + p];
                    sExpected[((long)h * n + i) * n + j] = 0.125 * acc;
                }
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < n; i++)
                for (int p = 0; p < d; p++)
                {
                    double acc = 0;
                    for (int j = 0; j < n; j++) acc += (double)s[((long)h * n + i) * n + j] * v[j * width + h * d + p];
                    oExpected[i * width + h * d + p] = acc;
                }
        Check.Close(s, sExpected, TolFor(d), $"per-head scores on {dev.Spec}");
        Check.Close(to.ToArray(), oExpected, new Tolerance(1e-4 * Math.Sqrt(n) * 4, 1e-4), $"per-head outputs on {dev.Spec}");
    }

    public static TheoryData<string> CpuKernels()
    {
        var data = new TheoryData<string> { SgemmKernels.Avx2.Name };
        if (System.Runtime.Intrinsics.X86.Avx512F.IsSupported) data.Add(SgemmKernels.Avx512.Name);
        return data;
    }

    private static SgemmKernel KernelNamed(string name) => name == SgemmKernels.Avx512.Name ? SgemmKernels.Avx512 : SgemmKernels.Avx2;

    /// <summary>
    /// Every CPU micro-kernel (the portable Vector256 one even where AVX-512 exists) on 1, 2 and 3 threads, across
    /// block boundaries (KC, MC, NC), the team path, the batch-parallel path and its cooperative remainder, under
    /// each team schedule (shared packed B; private column, row or depth parts; the automatic choice), with a row-major
    /// op(A) packed and read in place.
    /// </summary>
    [Theory]
    [MemberData(nameof(CpuKernels))]
    public void CpuKernelsOnEveryThreadCountAndBlockBoundary(string kernelName)
    {
        var kernel = KernelNamed(kernelName);
        try
        {
            foreach (bool direct in Bools)
                foreach (var s in Enum.GetValues<TeamSchedule>())
                {
                    GemmCpu.Schedule = s;
                    GemmCpu.DirectA = direct;
                    try { RunEveryThreadCountAndBlockBoundary(kernel); }
                    catch (Xunit.Sdk.XunitException e)
                    {
                        throw new Xunit.Sdk.XunitException($"schedule {s}, op(A) {(direct ? "read in place" : "packed")}: {e.Message}", e);
                    }
                }
        }
        finally { GemmCpu.Schedule = null; GemmCpu.DirectA = null; }
    }

    private static void RunEveryThreadCountAndBlockBoundary(SgemmKernel kernel)
    {
        foreach (int threads in new[] { 1, 2, 3 })
        {
            using var dev = CpuDevice.Create(threads);
            foreach (bool ta in Bools)
                foreach (bool tb in Bools)
                {
                    RunAndCheck(dev, new Case(1, 300, 257, 520, ta, tb, 0.5f, 0.5f, PadA: 1, PadB: 2, PadC: 3), kernel);
                    RunAndCheck(dev, new Case(1, 7, kernel.NC + 37, 300, ta, tb, PadB: 1), kernel);
                    RunAndCheck(dev, new Case(3, 131, 129, 70, ta, tb, 1f, 0f, OffsetA: 3, OffsetB: 5, OffsetC: 7, Gap: 9), kernel);
                    // Fewer matrices than members (3 threads): every matrix through the team schedule, one after another.
                    RunAndCheck(dev, new Case(2, 131, 129, 70, ta, tb, 0.75f, 0.5f, OffsetA: 2, OffsetB: 1, OffsetC: 4, Gap: 3), kernel);
                }
            foreach (var (m, n, k) in OddShapes(false))
                RunAndCheck(dev, new Case(1, m, n, k, true, false), kernel);
        }
    }

    /// <summary>
    /// A prepacked op(B) (<see cref="Gemm.Pack"/>) gives the same bits as packing it per call, on every kernel, thread
    /// count and team schedule, across depth blocks (k &gt; KC) and column blocks (n &gt; NC), with padded and offset
    /// operands and one B shared by a batch; a copy packed for another kernel's panel width is ignored, not misread.
    /// </summary>
    [Theory]
    [MemberData(nameof(CpuKernels))]
    public void PrepackedBGivesTheBitsOfPackingPerCall(string kernelName)
    {
        var kernel = KernelNamed(kernelName);
        var other = kernel.NR == SgemmKernels.Avx2.NR ? (System.Runtime.Intrinsics.X86.Avx512F.IsSupported ? SgemmKernels.Avx512 : (SgemmKernel?)null) : SgemmKernels.Avx2;
        var shapes = new (int Batch, int M, int N, int K)[] { (1, 300, 257, 520), (1, 7, kernel.NC + 37, 300), (1, 197, 384, 384), (3, 131, 129, 70), (2, 1, 5, 3) };
        try
        {
            foreach (int threads in new[] { 1, 2, 3 })
            {
                using var dev = CpuDevice.Create(threads);
                foreach (var s in Enum.GetValues<TeamSchedule>())
                    foreach (bool direct in Bools)
                        foreach (bool tb in Bools)
                            foreach (var (batch, m, n, k) in shapes)
                            {
                                GemmCpu.Schedule = s;
                                GemmCpu.DirectA = direct;
                                string what = $"{kernel.Name} threads {threads} {s} direct={direct} {batch}x{m}x{n}x{k} transB={tb}";
                                int lda = k + 1, ldb = (tb ? k : n) + 2, ldc = n + 3;
                                long offB = 5, strideA = (long)m * lda + 1, strideC = (long)m * ldc + 2;
                                using var a = dev.FromHost(TestData.Uniform(31, batch * strideA), (int)(batch * strideA));
                                using var b = dev.FromHost(TestData.Uniform(32, offB + (long)(tb ? n : k) * ldb), (int)(offB + (long)(tb ? n : k) * ldb));
                                var init = TestData.Uniform(33, batch * strideC);
                                using var plain = dev.FromHost(init, init.Length);
                                using var packedC = dev.FromHost(init, init.Length);
                                var opA = new MatrixOperand(a, 0, lda, strideA);
                                var opB = new MatrixOperand(b, offB, ldb, 0);
                                var args = Gemm.Resolve(batch, m, n, k, 0.75f, opA, false, opB, tb, 0.5f, new MatrixOperand(plain, 0, ldc, strideC));
                                GemmCpu.Run(dev, a, b, plain, args, kernel);
                                using var packed = Gemm.Pack(opB, tb, k, n)!;
                                using var repacked = new PackedMatrix(b, offB, ldb, tb, k, n, kernel);
                                GemmCpu.Run(dev, a, b, packedC, args, kernel, repacked);
                                Assert.True(plain.ToArray().AsSpan().SequenceEqual(packedC.ToArray()), what);
                                if (other is SgemmKernel o)
                                {
                                    using var foreign = new PackedMatrix(b, offB, ldb, tb, k, n, o);
                                    packedC.CopyFrom(init);
                                    GemmCpu.Run(dev, a, b, packedC, args, kernel, foreign);
                                    Assert.True(plain.ToArray().AsSpan().SequenceEqual(packedC.ToArray()), what + " (packed for " + o.Name + ")");
                                }
                            }
            }
        }
        finally { GemmCpu.Schedule = null; GemmCpu.DirectA = null; }
    }

    /// <summary>The public entry: the packed call equals the plain one; a packed B of another operand, or disposed, is a clear error.</summary>
    [Fact]
    public void PackedBThroughGemmBatchedAndItsErrors()
    {
        using var dev = CpuDevice.Create(2);
        using var x = dev.FromHost(TestData.Uniform(1, 197 * 96), 197, 96);
        using var w = dev.FromHost(TestData.Uniform(2, 80 * 96), 80, 96);
        using var y0 = dev.Zeros(197, 80);
        using var y1 = dev.Zeros(197, 80);
        Gemm.Batched(1, 197, 80, 96, 1f, x, false, w, true, 0f, y0);
        using var pw = Gemm.Pack(w, true, 96, 80);
        Assert.NotNull(pw);
        Assert.Equal((96, 80, true), (pw!.K, pw.N, pw.TransB));
        Gemm.Batched(1, 197, 80, 96, 1f, x, false, w, true, 0f, y1, pw);
        Assert.Equal(y0.ToArray(), y1.ToArray());
        using var w2 = dev.FromHost(TestData.Uniform(2, 80 * 96), 80, 96);
        using var y2 = dev.Zeros(197, 96);
        Assert.Contains("was not packed from this op(B)", Assert.Throws<ArgumentException>(() =>
            Gemm.Batched(1, 197, 80, 96, 1f, x, false, w2, true, 0f, y1, pw)).Message);
        Assert.Contains("was not packed from this op(B)", Assert.Throws<ArgumentException>(() =>
            Gemm.Batched(1, 197, 96, 80, 1f, new MatrixOperand(x, 0, 96), false, w, false, 0f, y2, pw)).Message);
        Assert.Contains("operand B reaches", Assert.Throws<ArgumentException>(() => Gemm.Pack(new MatrixOperand(w, 1), true, 96, 80)).Message);
        pw.Dispose();
        Assert.Throws<ObjectDisposedException>(() => Gemm.Batched(1, 197, 80, 96, 1f, x, false, w, true, 0f, y1, pw));
    }

    [Fact]
    public void ConcurrentCallsOnOneDeviceAreCorrect()
    {
        using var dev = CpuDevice.Create(2);
        Parallel.For(0, 4, new ParallelOptions { MaxDegreeOfParallelism = 4 },
            i => RunAndCheck(dev, new Case(1, 160 + i, 150, 140, i % 2 == 0, i >= 2, Beta: 0.5f)));
    }

    /// <summary>After the first call has sized the per-thread packing buffers, calls allocate nothing on the caller.</summary>
    [Fact]
    public void SteadyStateCallsDoNotAllocate()
    {
        foreach (int threads in new[] { 1, 2 })
        {
            using var dev = CpuDevice.Create(threads);
            using var a = dev.FromHost(TestData.Uniform(1, 200 * 150), 200, 150);
            using var b = dev.FromHost(TestData.Uniform(2, 150 * 130), 150, 130);
            using var c = dev.Zeros(200, 130);
            using var small = dev.Zeros(7, 130);
            using var aSmall = dev.FromHost(TestData.Uniform(3, 7 * 150), 7, 150);
            for (int i = 0; i < 3; i++) { Gemm.MatMul(a, b, c); Gemm.MatMul(aSmall, b, small, beta: 1f); }
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 10; i++) { Gemm.MatMul(a, b, c); Gemm.MatMul(aSmall, b, small, beta: 1f); }
            Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        }
    }

    [Fact]
    public void BadArgumentsAreClearErrors()
    {
        using var dev = CpuDevice.Create(1);
        using var a = dev.Zeros(4, 5);
        using var b = dev.Zeros(6, 7);
        using var c = dev.Zeros(4, 7);
        var inner = Assert.Throws<ArgumentException>(() => Gemm.MatMul(a, b, c));
        Assert.Contains("Inner dimensions differ", inner.Message);
        using var b2 = dev.Zeros(5, 7);
        using var cBad = dev.Zeros(4, 6);
        Assert.Contains("must be 4×7", Assert.Throws<ArgumentException>(() => Gemm.MatMul(a, b2, cBad)).Message);
        using var a3 = dev.Zeros(2, 4, 5);
        Assert.Contains("three 2-D or three 3-D", Assert.Throws<ArgumentException>(() => Gemm.MatMul(a3, b2, c)).Message);
        Assert.Contains("Negative", Assert.Throws<ArgumentException>(() =>
            Gemm.Batched(1, -1, 7, 5, 1f, a, false, b2, false, 0f, c)).Message);
        Assert.Contains("lda=3", Assert.Throws<ArgumentException>(() =>
            Gemm.Batched(1, 4, 7, 5, 1f, new MatrixOperand(a, 0, 3), false, b2, false, 0f, c)).Message);
        Assert.Contains("ldc=6", Assert.Throws<ArgumentException>(() =>
            Gemm.Batched(1, 4, 7, 5, 1f, a, false, b2, false, 0f, new MatrixOperand(c, 0, 6))).Message);
        Assert.Contains("operand A reaches", Assert.Throws<ArgumentException>(() =>
            Gemm.Batched(1, 4, 7, 5, 1f, new MatrixOperand(a, 1), false, b2, false, 0f, c)).Message);
        Assert.Contains("operand B reaches", Assert.Throws<ArgumentException>(() =>
            Gemm.Batched(2, 4, 7, 5, 1f, new MatrixOperand(a, 0, 0, 0), false, new MatrixOperand(b2, 0, 0, 1), false, 0f, new MatrixOperand(c, 0, 7, 0))).Message);
        using var cBig = dev.Zeros(2, 4, 7);
        Assert.Contains("overlap", Assert.Throws<ArgumentException>(() =>
            Gemm.Batched(2, 4, 7, 5, 1f, new MatrixOperand(a, 0, 0, 0), false, new MatrixOperand(b2, 0, 0, 0), false, 0f, new MatrixOperand(cBig, 0, 7, 20))).Message);
        using var other = CpuDevice.Create(1);
        using var foreign = other.Zeros(5, 7);
        Assert.Contains("different devices", Assert.Throws<ArgumentException>(() => Gemm.MatMul(a, foreign, c)).Message);
    }

    [Fact]
    public void FmaPeakIsPositiveAndFinite()
    {
        double peak = FmaPeak.MeasureGflops(1, repeats: 1, millisecondsPerRepeat: 20);
        Assert.InRange(peak, 0.1, 1e5);
    }
}
