using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using CrateIL.Compute.Cpu;
using CrateIL.Compute.Devices;
using CrateIL.Compute.Ops;

namespace CrateIL.Nn.Layers;

/// <summary>
/// MSSA's attention (Q = K = V = w) on the CPU, fused and symmetric: per (batch entry, head) one thread walks the
/// pairs of T×T token tiles I ≤ J of the score matrix S = scale·w·wᵀ (S is symmetric, so each off-diagonal tile is
/// formed once and serves both S_IJ and S_JI = S_IJᵀ), exponentiates it in cache and multiplies it into the output
/// at once, FlashAttention-style: no N×N matrix is ever written to memory, and the backward recomputes each tile
/// from the saved per-row shift and normaliser.
/// <para>
/// Softmax without a row-max pass: by Cauchy–Schwarz S_ij ≤ scale·|w_i||w_j| = √(s_i·s_j) ≤ μ_i := √(s_i·s_max), with
/// s_i = scale·|w_i|² the diagonal, so exp(S_ij − μ_i) never overflows, and row i's own term exp(s_i − μ_i) ≥
/// exp(−s_max/4) keeps its normaliser Z_i away from underflow (for very peaked scores, s_max &gt; <see cref="MaxDiagonal"/>,
/// the exact row maxima are found by one more pass over the tiles instead). Tile (I, J) gives E = exp(S_IJ − μ_I) (row i's
/// unnormalised probabilities of the tokens of J) and F = exp(S_IJ − μ_J), whose transpose is the rows of J over the
/// tokens of I; O_I += E·w_J, O_J += Fᵀ·w_I, Z gathers the row and column sums, O_i /= Z_i at the end. Per pair the forward does 1 score GEMM for 2 tile positions plus 2 P·V GEMMs: 1.5 instead of
/// 2 tile-GEMMs per position. Where the shifts of a tile pair lie within <see cref="FactorSpread"/> of each other, F is
/// E scaled by exp(μ_i − μ_j) (one exponential per score instead of two; the backward likewise).
/// </para>
/// <para>
/// Backward (dw = scale·(dS + dSᵀ)·w + Pᵀ·dO, dS = P ⊙ (dO·wᵀ − D), D_i = dO_i·O_i): per pair the score tile is
/// recomputed, dP_IJ = dO_I·w_Jᵀ and dP_JIᵀ = w_I·dO_Jᵀ formed, G = scale·(dS_IJ + dS_JIᵀ) built in cache and
/// dw_I += G·w_J + P_JIᵀ·dO_J, dw_J += Gᵀ·w_I + P_IJᵀ·dO_I: 3.5 tile-GEMMs per position against the materialised
/// path's 3 plus its N×N passes (softmax backward, symmetrisation).
/// </para>
/// The B-side operands (wᵀ, w, dOᵀ, dO) are packed once per (entry, head) into the SGEMM micro-kernels' panel layouts;
/// the A side — rows of w and dO, and the E, G and P tiles in cache — is read in place (<c>RunDirect</c>), only the
/// transposed tiles (Fᵀ, Gᵀ, Pᵀ) are packed. Every tile product is a run of register-blocked micro-kernel calls;
/// scratch lives per thread and is reused.
/// </summary>
internal static unsafe class SymmetricAttentionCpu
{
    /// <summary>
    /// Largest diagonal score s_max = scale·max|w_i|² for which the bound √(s_i·s_max) serves as the row shift
    /// (row i's own term exp(s_i − μ_i) ≥ exp(−s_max/4) stays far above float's smallest normal); beyond it an extra
    /// pass over the score tiles finds the exact row maxima.
    /// </summary>
    public const float MaxDiagonal = 240f;

    /// <summary>Token tile side: a multiple of every micro-kernel's MR (6, 12) and NR (16, 32).</summary>
    public static readonly int Tile = TileFromEnvironment();

    /// <summary>Largest tile side and the leading dimension of the tile buffers: the last tile absorbs a remainder of less than half a tile.</summary>
    public static int TileLead => Tile + Tile / 2;

    /// <summary>
    /// End of the token tile that starts at <paramref name="start"/>: every tile starts at a multiple of <see cref="Tile"/>
    /// (so at a micro-panel boundary of the packed operands), and a last remainder shorter than half a tile joins the
    /// tile before it (785 tokens: eight tiles of 96 and one of 17 became seven of 96 and one of 113), so no tile pair
    /// runs micro-kernels over a sliver of a few tokens.
    /// </summary>
    private static int TileEnd(int start, int n)
    {
        int end = Math.Min(n, start + Tile);
        return n - end < Tile / 2 ? n : end;
    }

    private static int TileFromEnvironment() =>
        int.TryParse(Environment.GetEnvironmentVariable("CRATEIL_MSSA_TILE"), out int t) && t > 0 && t % 96 == 0 ? t : 96;

    /// <summary>Per-row state the forward saves for the backward: the shift μ_i and 1/Z_i, n of each per (entry, head).</summary>
    public sealed class Saved
    {
        public float[] Shift = [], InvZ = [];
        private int _next;

        /// <summary>Resets the unit counter before a parallel pass.</summary>
        public void Reset() => _next = 0;

        /// <summary>The next unclaimed unit.</summary>
        public int Claim() => Interlocked.Increment(ref _next) - 1;

        public void Ensure(int units, int n)
        {
            long len = (long)units * n + RowPad;
            if (Shift.Length < len) { Shift = new float[len]; InvZ = new float[len]; }
        }
    }

    /// <summary>Per-thread scratch: packed operands of one (entry, head) and the tile buffers.</summary>
    private sealed class Workspace
    {
        public readonly AlignedBuffer WBt = new(), WB = new(), OBt = new(), OB = new();
        public readonly AlignedBuffer S = new(), X = new(), Y = new(), G = new(), Pack = new(), Ragged = new(), Rows = new(), FactorJ = new();
    }

    [ThreadStatic] private static Workspace? t_workspace;

    /// <summary>
    /// Units u = b·heads + h are claimed one at a time from <c>Saved.Next</c> by every thread that runs a chunk
    /// (run it with one chunk per thread): a thread that other processes slow down simply takes fewer units.
    /// </summary>
    public readonly struct ForwardKernel(int units, int heads, int dh, int n, float scale, HeadColumns w, HeadColumns o, Saved saved) : IRangeKernel
    {
        public void Execute(int start, int count)
        {
            for (int u = saved.Claim(); u < units; u = saved.Claim()) ForwardUnit(u / heads, u % heads, u, dh, n, scale, w, o, saved);
        }
    }

    public readonly struct BackwardKernel(int units, int heads, int dh, int n, float scale, HeadColumns w, HeadColumns o, HeadColumns dO, HeadColumns dw, Saved saved) : IRangeKernel
    {
        public void Execute(int start, int count)
        {
            for (int u = saved.Claim(); u < units; u = saved.Claim())
                BackwardUnit(u / heads, u % heads, u, dh, n, scale, w, o, dO, dw, saved);
        }
    }

    private static float* Head(HeadColumns c, int b, int h, int n, int dh) =>
        c.Tensor.HostPointer + (long)b * n * c.Ld + c.Offset + (long)h * dh;

    /// <summary>Forward of one (entry, head).</summary>
    private static void ForwardUnit(int b, int h, int u, int dh, int n, float scale, HeadColumns wc, HeadColumns oc, Saved saved)
    {
        var kern = GemmCpu.Kernel;
        int mr = kern.MR, nr = kern.NR, T = Tile, L = TileLead;
        var ws = t_workspace ??= new Workspace();
        float* w = Head(wc, b, h, n, dh), o = Head(oc, b, h, n, dh);
        long ld = wc.Ld, ldo = oc.Ld;
        var shift = saved.Shift.AsSpan(u * n, n);
        var invZ = saved.InvZ.AsSpan(u * n, n);

        // Diagonal s_i and the shifts μ_i = √(s_i·s_max).
        float sMax = 0f;
        for (int i = 0; i < n; i++)
        {
            float s = scale * TensorPrimitives.Dot(new ReadOnlySpan<float>(w + i * ld, dh), new ReadOnlySpan<float>(w + i * ld, dh));
            shift[i] = s;
            sMax = MathF.Max(sMax, s);
        }
        for (int i = 0; i < n; i++) shift[i] = MathF.Sqrt(shift[i] * sMax);

        int nPad = RoundUp(n, T);
        float* wBt = ws.WBt.Ensure((long)nPad * dh), wB = ws.WB.Ensure((long)n * RoundUp(dh, nr));
        SgemmPack.B(w, ld, true, 0, dh, 0, n, nr, 0, (n + nr - 1) / nr, wBt);
        SgemmPack.B(w, ld, false, 0, n, 0, dh, nr, 0, (dh + nr - 1) / nr, wB);
        float* S = ws.S.Ensure((long)L * L), E = ws.X.Ensure((long)L * L), F = ws.Y.Ensure((long)L * L);
        float* pack = ws.Pack.Ensure((long)L * L), ragged = ws.Ragged.Ensure((long)mr * nr);
        float* z = ws.Rows.Ensure(n + RowPad), factorJ = ws.FactorJ.Ensure(L);
        if (!(sMax <= MaxDiagonal)) ExactRowMax(kern, n, dh, scale, w, ld, wBt, S, pack, ragged, shift);
        new Span<float>(z, n).Clear();
        // O is not cleared first: each output tile's first product assigns it (β = 0) — O_0 at the pair (0, 0), O_J at
        // (0, J). A clearing pass would only fetch the lines from the core that last wrote them, before any work.

        for (int i0 = 0, i1; i0 < n; i0 = i1)
        {
            i1 = TileEnd(i0, n);
            int mi = i1 - i0;
            for (int j0 = i0, j1; j0 < n; j0 = j1)
            {
                j1 = TileEnd(j0, n);
                int nj = j1 - j0;
                bool diagonal = i0 == j0;
                TileGemmRows(kern, mi, nj, dh, w + i0 * ld, ld, wBt + (long)j0 * dh, (long)dh * nr, scale, 0f, S, L, pack, ragged, upper: diagonal);
                if (diagonal) SquareTranspose.MirrorUpper(S, L, mi);
                fixed (float* mu = shift)
                {
                    float mRef = 0f;
                    bool factored = !diagonal && PairFactors(mu + i0, mi, mu + j0, nj, null, factorJ, out mRef);
                    for (int i = 0; i < mi; i++)
                        z[i0 + i] += diagonal ? ForwardRow(S + i * L, mu[i0 + i], new NoColumns(), E + i * L, null, null, nj)
                            : factored ? ForwardRow(S + i * L, mu[i0 + i], new FactoredColumns(MathF.Exp(mu[i0 + i] - mRef), factorJ), E + i * L, F + i * L, z + j0, nj)
                            : ForwardRow(S + i * L, mu[i0 + i], new ExpColumns(mu + j0), E + i * L, F + i * L, z + j0, nj);
                }
                // O_I += E·w_J
                TileGemmRows(kern, mi, dh, nj, E, L, wB + (long)j0 * nr, (long)n * nr, 1f, i0 == 0 && diagonal ? 0f : 1f, o + i0 * ldo, ldo, pack, ragged);
                if (diagonal) continue;
                // O_J += Fᵀ·w_I
                SgemmPack.A(F, L, true, 0, nj, 0, mi, mr, pack);
                TileGemm(kern, nj, dh, mi, pack, wB + (long)i0 * nr, (long)n * nr, 1f, i0 == 0 ? 0f : 1f, o + j0 * ldo, ldo, ragged);
            }
        }
        for (int i = 0; i < n; i++)
        {
            float r = 1f / z[i];
            invZ[i] = r;
            var row = new Span<float>(o + i * ldo, dh);
            TensorPrimitives.Multiply(row, r, row);
        }
    }

    /// <summary>
    /// μ_i = max_j S_ij exactly (one more pass over the triangle of score tiles, row and column maxima): for peaked
    /// scores, where the bound √(s_i·s_max) could sit so far above a row's maximum that its normaliser underflows.
    /// </summary>
    private static void ExactRowMax(in SgemmKernel kern, int n, int dh, float scale, float* w, long ld, float* wBt, float* S, float* pack, float* ragged, Span<float> max)
    {
        int L = TileLead, nr = kern.NR;
        max.Fill(float.NegativeInfinity);
        for (int i0 = 0, i1; i0 < n; i0 = i1)
        {
            i1 = TileEnd(i0, n);
            int mi = i1 - i0;
            for (int j0 = i0, j1; j0 < n; j0 = j1)
            {
                j1 = TileEnd(j0, n);
                int nj = j1 - j0;
                TileGemmRows(kern, mi, nj, dh, w + i0 * ld, ld, wBt + (long)j0 * dh, (long)dh * nr, scale, 0f, S, L, pack, ragged, upper: i0 == j0);
                if (i0 == j0) SquareTranspose.MirrorUpper(S, L, mi);
                for (int i = 0; i < mi; i++)
                {
                    var row = new ReadOnlySpan<float>(S + i * L, nj);
                    max[i0 + i] = MathF.Max(max[i0 + i], TensorPrimitives.Max(row));
                    if (i0 != j0) TensorPrimitives.Max(max.Slice(j0, nj), row, max.Slice(j0, nj));
                }
            }
        }
    }

    private static void BackwardUnit(int b, int h, int u, int dh, int n, float scale, HeadColumns wc, HeadColumns oc,
        HeadColumns dOc, HeadColumns dwc, Saved saved)
    {
        var kern = GemmCpu.Kernel;
        int mr = kern.MR, nr = kern.NR, T = Tile, L = TileLead;
        var ws = t_workspace ??= new Workspace();
        float* w = Head(wc, b, h, n, dh), o = Head(oc, b, h, n, dh), dO = Head(dOc, b, h, n, dh), dw = Head(dwc, b, h, n, dh);
        long ld = wc.Ld, ldo = oc.Ld, ldg = dOc.Ld, ldw = dwc.Ld;
        var shift = saved.Shift.AsSpan(u * n, n);
        var invZ = saved.InvZ.AsSpan(u * n, n);

        int nPad = RoundUp(n, T);
        long bLen = (long)n * RoundUp(dh, nr);
        float* wBt = ws.WBt.Ensure((long)nPad * dh), wB = ws.WB.Ensure(bLen);
        float* oBt = ws.OBt.Ensure((long)nPad * dh), oB = ws.OB.Ensure(bLen);
        SgemmPack.B(w, ld, true, 0, dh, 0, n, nr, 0, (n + nr - 1) / nr, wBt);
        SgemmPack.B(w, ld, false, 0, n, 0, dh, nr, 0, (dh + nr - 1) / nr, wB);
        if (TileEnd(0, n) < n) SgemmPack.B(dO, ldg, true, 0, dh, 0, n, nr, 0, (n + nr - 1) / nr, oBt);   // only pairs off the diagonal read dOᵀ
        SgemmPack.B(dO, ldg, false, 0, n, 0, dh, nr, 0, (dh + nr - 1) / nr, oB);
        float* S = ws.S.Ensure((long)L * L), A = ws.X.Ensure((long)L * L), B = ws.Y.Ensure((long)L * L), G = ws.G.Ensure((long)L * L);
        float* pack = ws.Pack.Ensure((long)L * L), ragged = ws.Ragged.Ensure((long)mr * nr);
        // D_i = dO_i·O_i (= rowsum(dP ⊙ P)).
        float* dd = ws.Rows.Ensure(n + RowPad), factorJ = ws.FactorJ.Ensure(L);
        for (int i = 0; i < n; i++)
            dd[i] = TensorPrimitives.Dot(new ReadOnlySpan<float>(dO + i * ldg, dh), new ReadOnlySpan<float>(o + i * ldo, dh));
        // dw is assigned by each tile's first product (β = 0), like O in the forward: dw_0 at the pair (0, 0), dw_J at (0, J).
        long panelStride = (long)n * nr;

        for (int i0 = 0, i1; i0 < n; i0 = i1)
        {
            i1 = TileEnd(i0, n);
            int mi = i1 - i0;
            for (int j0 = i0, j1; j0 < n; j0 = j1)
            {
                j1 = TileEnd(j0, n);
                int nj = j1 - j0;
                bool diagonal = i0 == j0;
                TileGemmRows(kern, mi, nj, dh, w + i0 * ld, ld, wBt + (long)j0 * dh, (long)dh * nr, scale, 0f, S, L, pack, ragged, upper: diagonal);
                if (diagonal) SquareTranspose.MirrorUpper(S, L, mi);
                // A = dP_IJ = dO_I·w_Jᵀ ; B = dP_JIᵀ = w_I·dO_Jᵀ
                TileGemmRows(kern, mi, nj, dh, dO + i0 * ldg, ldg, wBt + (long)j0 * dh, (long)dh * nr, 1f, 0f, A, L, pack, ragged);
                if (!diagonal) TileGemmRows(kern, mi, nj, dh, w + i0 * ld, ld, oBt + (long)j0 * dh, (long)dh * nr, 1f, 0f, B, L, pack, ragged);
                // S ← P_IJ and G ← scale·(dS_IJ + dS_JIᵀ) with dS_IJ = P_IJ ⊙ (dP_IJ − D_I), dS_JIᵀ = P_JIᵀ ⊙ (dP_JIᵀ − D_J);
                // off the diagonal B ← P_JIᵀ. One fused pass per row (A is not needed afterwards).
                fixed (float* mu = shift, rz = invZ)
                {
                    float mRef = 0f;
                    bool factored = !diagonal && PairFactors(mu + i0, mi, mu + j0, nj, rz + j0, factorJ, out mRef);
                    for (int i = 0; i < mi; i++)
                    {
                        float* sRow = S + i * L, aRow = A + i * L, bRow = B + i * L, gRow = G + i * L;
                        if (diagonal)
                            BackwardRow(sRow, aRow, null, gRow, mu[i0 + i], rz[i0 + i], dd[i0 + i], new NoColumns(), null, scale, nj);
                        else if (factored)
                            BackwardRow(sRow, aRow, bRow, gRow, mu[i0 + i], rz[i0 + i], dd[i0 + i],
                                new FactoredColumns(MathF.Exp(mu[i0 + i] - mRef), factorJ), dd + j0, scale, nj);
                        else
                            BackwardRow(sRow, aRow, bRow, gRow, mu[i0 + i], rz[i0 + i], dd[i0 + i],
                                new ScaledExpColumns(mu + j0, rz + j0), dd + j0, scale, nj);
                    }
                }
                // Now S = P_IJ, B = P_JIᵀ (off the diagonal), G = scale·(dS_IJ + dS_JIᵀ), and on the diagonal G is
                // only scale·dS_II: its symmetric part G + Gᵀ is formed in place below.
                if (diagonal)
                {
                    // dw_I += (G + Gᵀ)·w_I + P_IIᵀ·dO_I, the symmetric part formed in cache (one tile product instead of two)
                    SquareTranspose.AddTranspose(G, L, mi);
                    TileGemmRows(kern, mi, dh, mi, G, L, wB + (long)i0 * nr, panelStride, 1f, i0 == 0 ? 0f : 1f, dw + i0 * ldw, ldw, pack, ragged);
                    SgemmPack.A(S, L, true, 0, mi, 0, mi, mr, pack);
                    TileGemm(kern, mi, dh, mi, pack, oB + (long)i0 * nr, panelStride, 1f, 1f, dw + i0 * ldw, ldw, ragged);
                    continue;
                }
                float* dwI = dw + i0 * ldw, dwJ = dw + j0 * ldw;
                // dw_I += G·w_J + P_JIᵀ·dO_J  (B holds P_JIᵀ, rows i over tokens j: exactly (P_JI)ᵀ)
                TileGemmRows(kern, mi, dh, nj, G, L, wB + (long)j0 * nr, panelStride, 1f, 1f, dwI, ldw, pack, ragged);
                TileGemmRows(kern, mi, dh, nj, B, L, oB + (long)j0 * nr, panelStride, 1f, 1f, dwI, ldw, pack, ragged);
                // dw_J += Gᵀ·w_I + P_IJᵀ·dO_I
                SgemmPack.A(G, L, true, 0, nj, 0, mi, mr, pack);
                TileGemm(kern, nj, dh, mi, pack, wB + (long)i0 * nr, panelStride, 1f, i0 == 0 ? 0f : 1f, dwJ, ldw, ragged);
                SgemmPack.A(S, L, true, 0, nj, 0, mi, mr, pack);
                TileGemm(kern, nj, dh, mi, pack, oB + (long)i0 * nr, panelStride, 1f, 1f, dwJ, ldw, ragged);
            }
        }
    }

    /// <summary>
    /// The transposed side of an off-diagonal tile row: the column terms exp(s_j − μ_j) (times 1/Z_j in the backward)
    /// that give F (forward) or P_JIᵀ (backward), formed from the scores s and the row's own exponentials exp(s − μ_i).
    /// A struct per way, so each tile row specialises with no branch per element.
    /// </summary>
    private interface IColumnTerms
    {
        /// <summary>False on a diagonal tile, which has no transposed side.</summary>
        bool Present { get; }

        Vector256<float> At(Vector256<float> s, Vector256<float> rowExp, int j);

        float At(float s, float rowExp, int j);
    }

    /// <summary>A diagonal tile: no column terms.</summary>
    private readonly struct NoColumns : IColumnTerms
    {
        public bool Present => false;
        public Vector256<float> At(Vector256<float> s, Vector256<float> rowExp, int j) => default;
        public float At(float s, float rowExp, int j) => 0f;
    }

    /// <summary>A second exponential per score: exp(s − μ_j) (the forward's F).</summary>
    private readonly struct ExpColumns(float* shiftJ) : IColumnTerms
    {
        public bool Present => true;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<float> At(Vector256<float> s, Vector256<float> rowExp, int j) => FloatExp.ExpNonPositive(s - Vector256.Load(shiftJ + j));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float At(float s, float rowExp, int j) => FloatExp.ExpNonPositive(s - shiftJ[j]);
    }

    /// <summary>A second exponential per score, normalised: exp(s − μ_j)/Z_j (the backward's P_JIᵀ).</summary>
    private readonly struct ScaledExpColumns(float* shiftJ, float* invZJ) : IColumnTerms
    {
        public bool Present => true;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<float> At(Vector256<float> s, Vector256<float> rowExp, int j) =>
            FloatExp.ExpNonPositive(s - Vector256.Load(shiftJ + j)) * Vector256.Load(invZJ + j);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float At(float s, float rowExp, int j) => FloatExp.ExpNonPositive(s - shiftJ[j]) * invZJ[j];
    }

    /// <summary>
    /// Close shifts (<see cref="PairFactors"/>): the row's own exponential times a_i = exp(μ_i − m) and b_j (exp(m − μ_j),
    /// times 1/Z_j in the backward) — one exponential per score instead of two.
    /// </summary>
    private readonly struct FactoredColumns(float aI, float* bJ) : IColumnTerms
    {
        private readonly Vector256<float> _a = Vector256.Create(aI);

        public bool Present => true;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<float> At(Vector256<float> s, Vector256<float> rowExp, int j) => rowExp * _a * Vector256.Load(bJ + j);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float At(float s, float rowExp, int j) => rowExp * aI * bJ[j];
    }

    /// <summary>
    /// One row of a forward score tile: e_j = exp(s_j − μ_i) (returns Σ_j e_j); off the diagonal also the column terms
    /// f_j (<paramref name="columns"/>) and z_J[j] += f_j. One pass in registers instead of six vector calls.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float ForwardRow<TColumns>(float* s, float shiftI, TColumns columns, float* e, float* f, float* zJ, int n)
        where TColumns : struct, IColumnTerms
    {
        var vShift = Vector256.Create(shiftI);
        var acc = Vector256<float>.Zero;
        int j = 0;
        for (; j + 8 <= n; j += 8)
        {
            var sv = Vector256.Load(s + j);
            var ev = FloatExp.ExpNonPositive(sv - vShift);
            Vector256.Store(ev, e + j);
            acc += ev;
            if (!columns.Present) continue;
            var fv = columns.At(sv, ev, j);
            Vector256.Store(fv, f + j);
            Vector256.Store(Vector256.Load(zJ + j) + fv, zJ + j);
        }
        if (j < n)
        {
            // The last 1–7 columns as one more vector (a scalar tail cost a whole vector exponential per column): the
            // tile rows and zJ are padded to whole vectors (RowPad), so the lanes past n are computed on
            // whatever they hold and stored where nothing reads them; only the sums are masked.
            var live = TailMask(n - j);
            var sv = Vector256.Load(s + j);
            var ev = FloatExp.ExpNonPositive(sv - vShift);
            Vector256.Store(ev, e + j);
            acc += ev & live;
            if (columns.Present)
            {
                var fv = columns.At(sv, ev, j);
                Vector256.Store(fv, f + j);
                Vector256.Store(Vector256.Load(zJ + j) + (fv & live), zJ + j);
            }
        }
        return Vector256.Sum(acc);
    }

    /// <summary>
    /// Floats past the end of every per-row array the tile rows read or write (μ, 1/Z, Z, D): a row's last partial
    /// vector runs whole, on padding (its results in those lanes are never read).
    /// </summary>
    public const int RowPad = 8;

    /// <summary>All ones in the first <paramref name="count"/> lanes (1–7), zero in the rest.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> TailMask(int count) =>
        Vector256.LessThan(Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7), Vector256.Create(count)).AsSingle();

    /// <summary>
    /// Largest spread of the row shifts μ over a tile pair for which the second exponential of a score is taken as a
    /// product instead: exp(s − μ_j) = exp(s − μ_i)·exp(μ_i − m)·exp(m − μ_j), two more roundings (≤ 2 ulp) in place of
    /// a second exponential (measured: the exponentials were 9 % of the MSSA block; this saves about 2 % of it). Within
    /// a spread of 10 every factor lies in [e^−10, e^10], and a first exponential that underflows (s − μ_i below −87.3)
    /// hides a second one below e^−77: under 4·10⁻⁸ of any row's normaliser (≥ exp(−s_max/4) ≥ e^−60 on the bound
    /// path, ≥ 1 with exact row maxima), inside float's rounding of that sum. Wider spreads take both exponentials.
    /// </summary>
    private const float FactorSpread = 10f;

    /// <summary>
    /// Whether μ over the rows of I and of J spreads at most <see cref="FactorSpread"/>; if so, m = max over I and
    /// factor_j = exp(m − μ_j), times 1/Z_j when <paramref name="invZJ"/> is given (the backward's P_JIᵀ).
    /// </summary>
    private static bool PairFactors(float* muI, int mi, float* muJ, int nj, float* invZJ, float* factor, out float m)
    {
        float lo = float.PositiveInfinity, hi = float.NegativeInfinity;
        for (int i = 0; i < mi; i++) { lo = MathF.Min(lo, muI[i]); hi = MathF.Max(hi, muI[i]); }
        m = hi;
        for (int j = 0; j < nj; j++) { lo = MathF.Min(lo, muJ[j]); hi = MathF.Max(hi, muJ[j]); }
        if (!(hi - lo <= FactorSpread)) return false;
        for (int j = 0; j < nj; j++) factor[j] = MathF.Exp(m - muJ[j]) * (invZJ is null ? 1f : invZJ[j]);
        return true;
    }

    /// <summary>
    /// One row of a backward tile, fused: p = exp(s − μ_i)/Z_i into <paramref name="s"/>, dS_IJ = p·(dP − D_i) from
    /// <paramref name="a"/>; off the diagonal q = P_JIᵀ (<paramref name="columns"/>) into <paramref name="b"/> after
    /// reading dP_JIᵀ from it, dS_JIᵀ = q·(dP_JIᵀ − D_J); g = scale·(dS_IJ + dS_JIᵀ).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BackwardRow<TColumns>(float* s, float* a, float* b, float* g, float shiftI, float invZI, float dI,
        TColumns columns, float* dJ, float scale, int n) where TColumns : struct, IColumnTerms
    {
        Vector256<float> vShift = Vector256.Create(shiftI), vInvZ = Vector256.Create(invZI), vD = Vector256.Create(dI), vScale = Vector256.Create(scale);
        // Whole vectors to the end of the row: there is no sum here, so the lanes of a last partial vector need no mask —
        // they read and write row padding only (RowPad).
        for (int j = 0; j < n; j += 8)
        {
            var sv = Vector256.Load(s + j);
            var raw = FloatExp.ExpNonPositive(sv - vShift);
            var p = raw * vInvZ;
            var ds = (Vector256.Load(a + j) - vD) * p;
            Vector256.Store(p, s + j);
            if (columns.Present)
            {
                var q = columns.At(sv, raw, j);
                ds += (Vector256.Load(b + j) - Vector256.Load(dJ + j)) * q;
                Vector256.Store(q, b + j);
            }
            Vector256.Store(ds * vScale, g + j);
        }
    }

    /// <summary>
    /// C[m×n] = α·A·B + β·C from packed operands: <paramref name="a"/> holds ceil(m/MR) panels of kc×MR,
    /// <paramref name="b"/> ceil(n/NR) panels of kc×NR spaced <paramref name="bPanelStride"/> apart.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TileGemm(in SgemmKernel kern, int m, int n, int kc, float* a, float* b, long bPanelStride,
        float alpha, float beta, float* c, long ldc, float* ragged)
    {
        int mr = kern.MR, nr = kern.NR;
        var run = kern.Run;
        for (int jr = 0; jr < n; jr += nr)
        {
            float* bPanel = b + jr / nr * bPanelStride;
            int cols = Math.Min(nr, n - jr);
            for (int ir = 0; ir < m; ir += mr)
                run(kc, a + (long)ir * kc, bPanel, c + ir * ldc + jr, ldc, alpha, beta, Math.Min(mr, m - ir), cols, ragged);
        }
    }

    /// <summary>
    /// The same with a row-major A (<paramref name="lda"/>) read in place by the micro-kernel (a tile in cache needs no
    /// packing); only a last ragged row panel is packed, into <paramref name="pack"/>. <paramref name="upper"/>: C is
    /// symmetric (a diagonal score tile, A·Aᵀ), so micro-tiles wholly below the diagonal are skipped (about 40 % of them
    /// at 96 tokens and 6×16 micro-tiles) — <see cref="SquareTranspose.MirrorUpper"/> fills them from their mirror
    /// images, which the micro-kernel forms from the same products in the same order, bit for bit.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TileGemmRows(in SgemmKernel kern, int m, int n, int kc, float* a, long lda, float* b, long bPanelStride,
        float alpha, float beta, float* c, long ldc, float* pack, float* ragged, bool upper = false)
    {
        int mr = kern.MR, nr = kern.NR, full = m / mr * mr;
        if (full < m) SgemmPack.A(a, lda, false, full, m - full, 0, kc, mr, pack);
        var run = kern.Run;
        var direct = kern.RunDirect;
        for (int jr = 0; jr < n; jr += nr)
        {
            float* bPanel = b + jr / nr * bPanelStride;
            int cols = Math.Min(nr, n - jr);
            int rowEnd = upper ? Math.Min(full, jr + cols) : full;   // rows from jr + cols on lie below this column panel
            for (int ir = 0; ir < rowEnd; ir += mr)
                direct(kc, a + ir * lda, lda, bPanel, c + ir * ldc + jr, ldc, alpha, beta, cols, ragged);
            if (full < m && !(upper && jr + cols <= full)) run(kc, pack, bPanel, c + full * ldc + jr, ldc, alpha, beta, m - full, cols, ragged);
        }
    }

    private static int RoundUp(int x, int multiple) => (x + multiple - 1) / multiple * multiple;
}
