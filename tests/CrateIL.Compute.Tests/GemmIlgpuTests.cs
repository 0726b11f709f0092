using CrateIL.Compute.Devices;
using CrateIL.Compute.Ops;
using CrateIL.Compute.Tensors;
using CrateIL.Testing;
using Xunit;

namespace CrateIL.Compute.Tests;

/// <summary>
/// The ILGPU SGEMM kernels against the float64 reference, on the ILGPU CPU simulator (tiny shapes: one OS thread
/// per group thread), OpenCL (PoCL on CPU: moderate shapes) and CUDA when present.
/// </summary>
public class GemmIlgpuTests
{
    /// <summary>One operand's storage: total length, offset of matrix 0, leading dimension, batch stride.</summary>
    private readonly record struct Layout(long Length, long Offset, int Ld, long BatchStride);

    private sealed record Case(int Batch, int M, int N, int K, bool TransA, bool TransB, float Alpha, float Beta,
        Layout A, Layout B, Layout C, int Seed);

    /// <summary>Dense row-major operands, one matrix after another.</summary>
    private static Case Dense(int batch, int m, int n, int k, bool ta, bool tb, float alpha = 1f, float beta = 0f, int seed = 1)
    {
        int ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
        return new Case(batch, m, n, k, ta, tb, alpha, beta,
            new Layout((long)batch * ar * ac, 0, ac, (long)ar * ac),
            new Layout((long)batch * br * bc, 0, bc, (long)br * bc),
            new Layout((long)batch * m * n, 0, n, (long)m * n), seed);
    }

    /// <summary>fp32 accumulation over k terms of magnitude ≤ 1 against the float64 reference.</summary>
    private static Tolerance For(Case c) => new(Abs: 2e-6 * Math.Max(c.K, 1) * Math.Max(Math.Abs(c.Alpha), 1f), Rel: 1e-5);

    private const float Poison = float.NaN;
    /// <summary>Fills C elements that no matrix entry covers (padding between rows): they must stay untouched.</summary>
    private const float Untouched = -12345.5f;

    /// <summary>Runs one case on the device (through the public entry, or a forced kernel) and checks all of C.</summary>
    private static void Verify(Device dev, Case c, GemmKernelVariant variant = GemmKernelVariant.Auto)
    {
        var a = TestData.Uniform(c.Seed, c.A.Length);
        var b = TestData.Uniform(c.Seed + 1, c.B.Length);
        var c0 = TestData.Uniform(c.Seed + 2, c.C.Length);
        var covered = new bool[c.C.Length];
        for (int bt = 0; bt < c.Batch; bt++)
            for (int i = 0; i < c.M; i++)
                for (int j = 0; j < c.N; j++)
                    covered[c.C.Offset + bt * c.C.BatchStride + (long)i * c.C.Ld + j] = true;
        for (int i = 0; i < c0.Length; i++)
            if (!covered[i]) c0[i] = Untouched;
            else if (c.Beta == 0f) c0[i] = Poison;   // β = 0: C must not be read

        using var ta = dev.FromHost(a, (int)c.A.Length);
        using var tb = dev.FromHost(b, (int)c.B.Length);
        using var tc = dev.FromHost(c0, (int)c.C.Length);
        var opA = new MatrixOperand(ta, c.A.Offset, c.A.Ld, c.A.BatchStride);
        var opB = new MatrixOperand(tb, c.B.Offset, c.B.Ld, c.B.BatchStride);
        var opC = new MatrixOperand(tc, c.C.Offset, c.C.Ld, c.C.BatchStride);
        var args = Gemm.Resolve(c.Batch, c.M, c.N, c.K, c.Alpha, opA, c.TransA, opB, c.TransB, c.Beta, opC);
        if (variant == GemmKernelVariant.Auto)
            Gemm.Batched(c.Batch, c.M, c.N, c.K, c.Alpha, opA, c.TransA, opB, c.TransB, c.Beta, opC);
        else
            GemmIlgpu.Run((IlgpuDevice)dev, ta, tb, tc, args, variant);

        var expected = TestData.ToDouble(c0);
        GemmReference.Run(args, a, b, expected);
        Check.Close(tc.ToArray(), expected, For(c),
            $"{c.Batch}×{c.M}×{c.N}×{c.K} {(c.TransA ? 'T' : 'N')}{(c.TransB ? 'T' : 'N')} α={c.Alpha} β={c.Beta} on {dev.Spec} ({variant})");
    }

    private static readonly (bool A, bool B)[] Transposes = [(false, false), (false, true), (true, false), (true, true)];

    public static TheoryData<string, string> IlgpuByVariant
    {
        get
        {
            var data = new TheoryData<string, string>();
            foreach (var backend in new[] { Backends.IlgpuCpu, Backends.OpenCL, Backends.Cuda })
                foreach (var v in new[] { GemmKernelVariant.Tile64, GemmKernelVariant.Tile128 })
                    data.Add(backend, v.ToString());
            return data;
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.Ilgpu), MemberType = typeof(Backends))]
    public void OddSizesAllTransposesBetaZeroIgnoresNanC(string backend)
    {
        var dev = Backends.Get(backend);
        (int M, int N, int K)[] shapes = Backends.IsSimulator(backend)
            ? [(1, 1, 1), (7, 65, 9)]
            : [(1, 1, 1), (1, 127, 7), (7, 1, 65), (127, 65, 33), (65, 127, 1)];
        foreach (var (ta, tb) in Transposes)
            foreach (var (m, n, k) in shapes)
                Verify(dev, Dense(1, m, n, k, ta, tb, alpha: 1f, beta: 0f));
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.Ilgpu), MemberType = typeof(Backends))]
    public void AlphaAndBetaScaleAndAccumulate(string backend)
    {
        var dev = Backends.Get(backend);
        var (m, n, k) = Backends.IsSimulator(backend) ? (17, 23, 19) : (65, 127, 33);
        foreach (var (ta, tb) in Transposes)
            Verify(dev, Dense(1, m, n, k, ta, tb, alpha: -1.75f, beta: 0.5f, seed: 7));
        Verify(dev, Dense(1, m, n, k, false, false, alpha: 0f, beta: -2f, seed: 9));   // α = 0: C = β·C exactly
        // k = 0: no k-tiles at all, C = β·C
        Verify(dev, new Case(1, 5, 7, 0, false, false, 1f, 0.5f, new Layout(1, 0, 1, 0), new Layout(1, 0, 7, 0), new Layout(35, 0, 7, 35), 10));
    }

    /// <summary>Per-head attention products over column slices of [tokens, heads·d] matrices (lda = heads·d, offset h·d).</summary>
    [SkippableTheory]
    [MemberData(nameof(Backends.Ilgpu), MemberType = typeof(Backends))]
    public void BatchedPerHeadColumnSlices(string backend)
    {
        var dev = Backends.Get(backend);
        var (tokens, heads, d) = Backends.IsSimulator(backend) ? (9, 3, 5) : (65, 4, 17);
        long qkv = (long)tokens * heads * d;
        var slice = new Layout(qkv, 0, heads * d, d);                  // Q_h, K_h or V_h: columns h·d … h·d + d − 1
        var scores = new Layout((long)heads * tokens * tokens, 0, tokens, (long)tokens * tokens);
        // S_h = α·Q_h·K_hᵀ
        Verify(dev, new Case(heads, tokens, tokens, d, false, true, 1f / MathF.Sqrt(d), 0f, slice, slice, scores, 11));
        // O_h = P_h·V_h (+ β·O_h) into a padded, offset output: ldc > n and an offset exercise the guarded stores
        var padded = new Layout(3 + (long)heads * tokens * (d + 2), 3, d + 2, (long)tokens * (d + 2));
        Verify(dev, new Case(heads, tokens, d, tokens, false, false, 1f, 0f, scores, slice, padded, 12));
        Verify(dev, new Case(heads, tokens, d, tokens, false, false, 0.5f, 1f, scores, slice, padded, 13));
        // Sᵀ_h·V_h: transposed batched A with a shared (batch stride 0) B offset into the middle of its tensor
        var sharedB = new Layout(5 + (long)tokens * d, 5, d, 0);
        Verify(dev, new Case(heads, tokens, d, tokens, true, false, 1f, 0f, scores, sharedB,
            new Layout((long)heads * tokens * d, 0, d, (long)tokens * d), 14));
    }

    /// <summary>Both kernels on every backend, whatever the automatic choice would be.</summary>
    [SkippableTheory]
    [MemberData(nameof(IlgpuByVariant))]
    public void EachKernelVariantMatchesReference(string backend, string variantName)
    {
        var dev = Backends.Get(backend);
        var variant = Enum.Parse<GemmKernelVariant>(variantName);
        if (Backends.IsSimulator(backend))
        {
            // One group per matrix for the 128 tile; a few k-steps and a ragged edge.
            foreach (var (ta, tb) in Transposes)
                Verify(dev, Dense(2, 13, 70, 21, ta, tb, alpha: 0.75f, beta: 0f, seed: 21), variant);
            Verify(dev, Dense(1, 70, 66, 17, false, true, alpha: 1f, beta: 0.25f, seed: 22), variant);
            return;
        }
        foreach (var (ta, tb) in Transposes)
            Verify(dev, Dense(1, 127, 65, 33, ta, tb, alpha: 1.25f, beta: 0f, seed: 23), variant);
        Verify(dev, Dense(3, 129, 131, 40, true, false, alpha: 1f, beta: -0.5f, seed: 24), variant);
        Verify(dev, Dense(1, 785, 64, 64, false, false, alpha: 1f, beta: 0f, seed: 25), variant);
    }
}
