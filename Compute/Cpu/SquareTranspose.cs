using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace CrateIL.Compute.Cpu;

/// <summary>
/// Transposes in 8×8 register blocks (8 row loads, 24 shuffles, 8 stores where AVX is available) and the two square
/// tile operations the fused attention builds on them: mirroring a symmetric tile's upper triangle into its lower one,
/// and forming G + Gᵀ in place. Both only move or add values, so they are bit-identical to the scalar loops they replace.
/// </summary>
internal static unsafe class SquareTranspose
{
    /// <summary>Transposes the 8×8 block whose rows are <paramref name="x0"/>…<paramref name="x7"/>, in registers (AVX).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Block8(ref Vector256<float> x0, ref Vector256<float> x1, ref Vector256<float> x2, ref Vector256<float> x3,
        ref Vector256<float> x4, ref Vector256<float> x5, ref Vector256<float> x6, ref Vector256<float> x7)
    {
        var t0 = Avx.UnpackLow(x0, x1); var t1 = Avx.UnpackHigh(x0, x1);
        var t2 = Avx.UnpackLow(x2, x3); var t3 = Avx.UnpackHigh(x2, x3);
        var t4 = Avx.UnpackLow(x4, x5); var t5 = Avx.UnpackHigh(x4, x5);
        var t6 = Avx.UnpackLow(x6, x7); var t7 = Avx.UnpackHigh(x6, x7);
        var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE);
        var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44); var u5 = Avx.Shuffle(t4, t6, 0xEE);
        var u6 = Avx.Shuffle(t5, t7, 0x44); var u7 = Avx.Shuffle(t5, t7, 0xEE);
        x0 = Avx.Permute2x128(u0, u4, 0x20); x1 = Avx.Permute2x128(u1, u5, 0x20);
        x2 = Avx.Permute2x128(u2, u6, 0x20); x3 = Avx.Permute2x128(u3, u7, 0x20);
        x4 = Avx.Permute2x128(u0, u4, 0x31); x5 = Avx.Permute2x128(u1, u5, 0x31);
        x6 = Avx.Permute2x128(u2, u6, 0x31); x7 = Avx.Permute2x128(u3, u7, 0x31);
    }

    /// <summary>The 8×8 block at <paramref name="src"/> (leading dimension <paramref name="ld"/>), transposed into the one at <paramref name="dst"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyTransposed(float* src, float* dst, long ld)
    {
        LoadTransposed(src, ld, out var x0, out var x1, out var x2, out var x3, out var x4, out var x5, out var x6, out var x7);
        Store8(dst, ld, x0, x1, x2, x3, x4, x5, x6, x7);
    }

    /// <summary>The 8×8 block at <paramref name="src"/> (8 rows of 8, leading dimension <paramref name="ld"/>), transposed into registers: x_c is its column c.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void LoadTransposed(float* src, long ld, out Vector256<float> x0, out Vector256<float> x1, out Vector256<float> x2,
        out Vector256<float> x3, out Vector256<float> x4, out Vector256<float> x5, out Vector256<float> x6, out Vector256<float> x7)
    {
        x0 = Vector256.Load(src); x1 = Vector256.Load(src + ld);
        x2 = Vector256.Load(src + 2 * ld); x3 = Vector256.Load(src + 3 * ld);
        x4 = Vector256.Load(src + 4 * ld); x5 = Vector256.Load(src + 5 * ld);
        x6 = Vector256.Load(src + 6 * ld); x7 = Vector256.Load(src + 7 * ld);
        Block8(ref x0, ref x1, ref x2, ref x3, ref x4, ref x5, ref x6, ref x7);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store8(float* dst, long ld, Vector256<float> x0, Vector256<float> x1, Vector256<float> x2, Vector256<float> x3,
        Vector256<float> x4, Vector256<float> x5, Vector256<float> x6, Vector256<float> x7)
    {
        Vector256.Store(x0, dst); Vector256.Store(x1, dst + ld);
        Vector256.Store(x2, dst + 2 * ld); Vector256.Store(x3, dst + 3 * ld);
        Vector256.Store(x4, dst + 4 * ld); Vector256.Store(x5, dst + 5 * ld);
        Vector256.Store(x6, dst + 6 * ld); Vector256.Store(x7, dst + 7 * ld);
    }

    /// <summary>
    /// s[j·ld + i] = s[i·ld + j] for all i &lt; j &lt; m: the strict lower triangle of an m×m tile from its upper one
    /// (a symmetric product of which only the upper micro-tiles were computed).
    /// </summary>
    public static void MirrorUpper(float* s, long ld, int m)
    {
        int full = Avx.IsSupported ? m / 8 * 8 : 0;
        for (int bi = 0; bi < full; bi += 8)
            for (int bj = bi + 8; bj < full; bj += 8)
                CopyTransposed(s + bi * ld + bj, s + bj * ld + bi, ld);
        // The pairs the blocks left: inside the diagonal 8×8 blocks, and past the last whole block.
        for (int i = 0; i < m; i++)
        {
            int blockEnd = BlockEnd(i, full, m);
            for (int j = i + 1; j < blockEnd; j++) s[j * ld + i] = s[i * ld + j];
            for (int j = Math.Max(blockEnd, full); j < m; j++) s[j * ld + i] = s[i * ld + j];
        }
    }

    /// <summary>G ← G + Gᵀ for an m×m tile (leading dimension <paramref name="ld"/>): each pair summed once, g_ij + g_ji, as the scalar loop did.</summary>
    public static void AddTranspose(float* g, long ld, int m)
    {
        int full = Avx.IsSupported ? m / 8 * 8 : 0;
        for (int bi = 0; bi < full; bi += 8)
            for (int bj = bi + 8; bj < full; bj += 8)
            {
                float* u = g + bi * ld + bj, l = g + bj * ld + bi;
                LoadTransposed(l, ld, out var x0, out var x1, out var x2, out var x3, out var x4, out var x5, out var x6, out var x7);
                x0 = Vector256.Load(u) + x0; x1 = Vector256.Load(u + ld) + x1;
                x2 = Vector256.Load(u + 2 * ld) + x2; x3 = Vector256.Load(u + 3 * ld) + x3;
                x4 = Vector256.Load(u + 4 * ld) + x4; x5 = Vector256.Load(u + 5 * ld) + x5;
                x6 = Vector256.Load(u + 6 * ld) + x6; x7 = Vector256.Load(u + 7 * ld) + x7;
                Store8(u, ld, x0, x1, x2, x3, x4, x5, x6, x7);
                Block8(ref x0, ref x1, ref x2, ref x3, ref x4, ref x5, ref x6, ref x7);
                Store8(l, ld, x0, x1, x2, x3, x4, x5, x6, x7);
            }
        for (int i = 0; i < m; i++)
        {
            float* row = g + i * ld;
            row[i] *= 2f;
            int blockEnd = BlockEnd(i, full, m);
            for (int j = i + 1; j < blockEnd; j++) Pair(row, g, ld, i, j);
            for (int j = Math.Max(blockEnd, full); j < m; j++) Pair(row, g, ld, i, j);
        }
    }

    /// <summary>End of row i's diagonal 8×8 block where it lies in the whole blocks (i &lt; full), else m.</summary>
    private static int BlockEnd(int i, int full, int m) => i < full ? (i | 7) + 1 : m;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Pair(float* row, float* g, long ld, int i, int j)
    {
        float v = row[j] + g[j * ld + i];
        row[j] = v;
        g[j * ld + i] = v;
    }
}
