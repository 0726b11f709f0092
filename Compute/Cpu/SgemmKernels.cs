using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace CrateIL.Compute.Cpu;

/// <summary>A micro-kernel and the cache blocking that suits it.</summary>
internal readonly unsafe struct SgemmKernel
{
    public required string Name { get; init; }
    /// <summary>Rows of C per micro-tile (rows of an A panel) and columns (columns of a B panel).</summary>
    public required int MR { get; init; }
    public required int NR { get; init; }
    /// <summary>Width of the kernel's FMA vectors (256 or 512).</summary>
    public required int VectorBits { get; init; }
    /// <summary>Depth of one packed block: a B micro-panel (KC×NR) should sit in L1.</summary>
    public required int KC { get; init; }
    /// <summary>Rows of a packed A block (MC×KC, meant for L2); a multiple of MR.</summary>
    public required int MC { get; init; }
    /// <summary>Columns of a packed B block (KC×NC, shared by all threads, meant for L3); a multiple of NR.</summary>
    public required int NC { get; init; }
    public required delegate*<int, float*, float*, float*, long, float, float, int, int, float*, void> Run { get; init; }
    /// <summary>The same micro-tile with MR full rows of a row-major A read in place (kc, a, lda, b, c, ldc, α, β, nr, tile).</summary>
    public required delegate*<int, float*, long, float*, float*, long, float, float, int, float*, void> RunDirect { get; init; }
}

internal static unsafe partial class SgemmKernels
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Fmadd256(Vector256<float> a, Vector256<float> b, Vector256<float> c) =>
        Fma.IsSupported ? Fma.MultiplyAdd(a, b, c) : a * b + c;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Fmadd512(Vector512<float> a, Vector512<float> b, Vector512<float> c) =>
        Avx512F.FusedMultiplyAdd(a, b, c);

    private static int Tuned(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable("CRATEIL_GEMM_" + name), out int v) && v > 0 ? v : fallback;

    public static readonly SgemmKernel Avx2 = new()
    {
        Name = "vector256-6x16", VectorBits = 256, MR = V256x6x16.MR, NR = V256x6x16.NR, KC = Tuned("KC", 256), MC = Tuned("MC", 144), NC = Tuned("NC", 4096),
        Run = &V256x6x16.Run, RunDirect = &V256x6x16.RunDirect,
    };

    public static readonly SgemmKernel Avx512 = new()
    {
        Name = "vector512-12x32", VectorBits = 512, MR = V512x12x32.MR, NR = V512x12x32.NR, KC = Tuned("KC", 512), MC = Tuned("MC", 96), NC = Tuned("NC", 2048),
        Run = &V512x12x32.Run, RunDirect = &V512x12x32.RunDirect,
    };
}

/// <summary>Writing a ragged micro-tile (already scaled by α) back into C.</summary>
internal static unsafe class SgemmTile
{
    public static void Merge(float* tile, int ldt, float* c, long ldc, float beta, int mr, int nr)
    {
        for (int r = 0; r < mr; r++)
        {
            float* t = tile + r * ldt, cr = c + r * ldc;
            if (beta == 0f) for (int j = 0; j < nr; j++) cr[j] = t[j];
            else for (int j = 0; j < nr; j++) cr[j] = t[j] + beta * cr[j];
        }
    }
}

/// <summary>
/// Packing of GEMM operands into the micro-kernels' layouts, transposes included: A into MR-row panels (k-major,
/// MR values per k), B into NR-column panels (k-major, NR values per k). Ragged panels are zero-padded so the
/// micro-kernel never needs bounds checks.
/// </summary>
internal static unsafe class SgemmPack
{
    /// <summary>
    /// Packs op(A)[i0..i0+mc, p0..p0+kc] (op(A)(i, p) = trans ? a[p·lda + i] : a[i·lda + p]) into
    /// ceil(mc/mr) panels of kc×mr floats at <paramref name="dst"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void A(float* a, long lda, bool trans, int i0, int mc, int p0, int kc, int mr, float* dst)
    {
        for (int ir = 0; ir < mc; ir += mr, dst += (long)mr * kc)
        {
            int rows = Math.Min(mr, mc - ir);
            if (trans) Contiguous(a + (long)p0 * lda + i0 + ir, lda, kc, rows, mr, dst);
            else Strided(a + (long)(i0 + ir) * lda + p0, lda, kc, rows, mr, dst);
        }
    }

    /// <summary>
    /// Packs panels [panel0, panel1) of op(B)[p0..p0+kc, j0..j0+nc] (op(B)(p, j) = trans ? b[j·ldb + p] : b[p·ldb + j])
    /// into kc×nr panels at dst + panel·kc·nr.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void B(float* b, long ldb, bool trans, int p0, int kc, int j0, int nc, int nr, int panel0, int panel1, float* dst)
    {
        for (int jp = panel0; jp < panel1; jp++)
        {
            int jr = jp * nr, cols = Math.Min(nr, nc - jr);
            float* d = dst + (long)jp * kc * nr;
            if (trans) Strided(b + (long)(j0 + jr) * ldb + p0, ldb, kc, cols, nr, d);
            else Contiguous(b + (long)p0 * ldb + j0 + jr, ldb, kc, cols, nr, d);
        }
    }

    /// <summary>dst[p·width + r] = src[p·ld + r] for r &lt; count, zero for count ≤ r &lt; width.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Contiguous(float* src, long ld, int kc, int count, int width, float* dst)
    {
        // Full panels of the micro-kernels' widths: whole-row copies with no per-element tail (the 6-wide A panels of
        // the AVX2 kernel were a 4-wide copy plus two scalar ones per k, as slow per float as a transpose).
        if (count == width)
        {
            switch (width)
            {
                case 6:
                    for (int p = 0; p < kc; p++, src += ld, dst += 6)
                    {
                        Vector128.Store(Vector128.Load(src), dst);
                        *(long*)(dst + 4) = *(long*)(src + 4);
                    }
                    return;
                case 12:
                    for (int p = 0; p < kc; p++, src += ld, dst += 12)
                    {
                        Vector256.Store(Vector256.Load(src), dst);
                        Vector128.Store(Vector128.Load(src + 8), dst + 8);
                    }
                    return;
                case 16:
                    for (int p = 0; p < kc; p++, src += ld, dst += 16)
                    {
                        Vector256.Store(Vector256.Load(src), dst);
                        Vector256.Store(Vector256.Load(src + 8), dst + 8);
                    }
                    return;
                case 32:
                    for (int p = 0; p < kc; p++, src += ld, dst += 32)
                    {
                        Vector256.Store(Vector256.Load(src), dst);
                        Vector256.Store(Vector256.Load(src + 8), dst + 8);
                        Vector256.Store(Vector256.Load(src + 16), dst + 16);
                        Vector256.Store(Vector256.Load(src + 24), dst + 24);
                    }
                    return;
            }
        }
        for (int p = 0; p < kc; p++, src += ld, dst += width)
        {
            int r = 0;
            for (; r + 8 <= count; r += 8) Vector256.Store(Vector256.Load(src + r), dst + r);
            if (r + 4 <= count) { Vector128.Store(Vector128.Load(src + r), dst + r); r += 4; }
            for (; r < count; r++) dst[r] = src[r];
            for (; r < width; r++) dst[r] = 0f;
        }
    }

    /// <summary>
    /// dst[p·width + r] = src[r·ld + p] for r &lt; count, zero for count ≤ r &lt; width: a transpose, done in 8×8
    /// blocks in registers (8 row loads, 24 shuffles, 8 stores) where AVX is available.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Strided(float* src, long ld, int kc, int count, int width, float* dst)
    {
        if (Avx.IsSupported && count == width && width % 8 == 0)
        {
            // Whole panels of 16 or 32 (B panels of weights, Wᵀ): all rows' 8×8 blocks of one step of 8 in k before the
            // next step, so each 64-byte panel row is written whole at once instead of in halves on two passes.
            int p0 = 0;
            for (; p0 + 8 <= kc; p0 += 8)
            {
                float* d = dst + (long)p0 * width;
                for (int r0 = 0; r0 < width; r0 += 8)
                {
                    SquareTranspose.LoadTransposed(src + r0 * ld + p0, ld, out var x0, out var x1, out var x2, out var x3,
                        out var x4, out var x5, out var x6, out var x7);
                    float* q = d + r0;
                    Vector256.Store(x0, q); Vector256.Store(x1, q + width);
                    Vector256.Store(x2, q + 2 * width); Vector256.Store(x3, q + 3 * width);
                    Vector256.Store(x4, q + 4 * width); Vector256.Store(x5, q + 5 * width);
                    Vector256.Store(x6, q + 6 * width); Vector256.Store(x7, q + 7 * width);
                }
            }
            for (int p = p0; p < kc; p++)
                for (int r = 0; r < width; r++)
                    dst[(long)p * width + r] = src[r * ld + p];
            return;
        }
        for (int r0 = 0; r0 < width; r0 += 8)
        {
            int valid = Math.Clamp(count - r0, 0, 8), lanes = Math.Min(8, width - r0);
            float* d0 = dst + r0;
            if (valid == 0)
            {
                for (int p = 0; p < kc; p++) for (int j = 0; j < lanes; j++) d0[(long)p * width + j] = 0f;
                continue;
            }
            float* s0 = src + r0 * ld;
            int p0 = 0;
            if (Avx.IsSupported && lanes is 8 or 6 or 4)
            {
                for (; p0 + 8 <= kc; p0 += 8)
                {
                    float* s = s0 + p0;
                    var z = Vector256<float>.Zero;
                    var x0 = Vector256.Load(s);
                    var x1 = valid > 1 ? Vector256.Load(s + ld) : z;
                    var x2 = valid > 2 ? Vector256.Load(s + 2 * ld) : z;
                    var x3 = valid > 3 ? Vector256.Load(s + 3 * ld) : z;
                    var x4 = valid > 4 ? Vector256.Load(s + 4 * ld) : z;
                    var x5 = valid > 5 ? Vector256.Load(s + 5 * ld) : z;
                    var x6 = valid > 6 ? Vector256.Load(s + 6 * ld) : z;
                    var x7 = valid > 7 ? Vector256.Load(s + 7 * ld) : z;
                    SquareTranspose.Block8(ref x0, ref x1, ref x2, ref x3, ref x4, ref x5, ref x6, ref x7);
                    float* d = d0 + (long)p0 * width;
                    StoreLanes(x0, d, lanes); d += width;
                    StoreLanes(x1, d, lanes); d += width;
                    StoreLanes(x2, d, lanes); d += width;
                    StoreLanes(x3, d, lanes); d += width;
                    StoreLanes(x4, d, lanes); d += width;
                    StoreLanes(x5, d, lanes); d += width;
                    StoreLanes(x6, d, lanes); d += width;
                    StoreLanes(x7, d, lanes);
                }
            }
            for (int p = p0; p < kc; p++)
                for (int j = 0; j < lanes; j++)
                    d0[(long)p * width + j] = j < valid ? s0[j * ld + p] : 0f;
        }
    }

    /// <summary>Stores the first 8, 6 or 4 lanes of <paramref name="v"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreLanes(Vector256<float> v, float* d, int lanes)
    {
        if (lanes == 8) { Vector256.Store(v, d); return; }
        Vector128.Store(v.GetLower(), d);
        if (lanes == 6) *(double*)(d + 4) = v.GetUpper().AsDouble().ToScalar();
    }
}
