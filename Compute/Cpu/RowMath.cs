using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using CrateIL.Compute.Devices;

namespace CrateIL.Compute.Cpu;

/// <summary>Work over rows [start, end) of range <c>chunk</c> (see <see cref="RowMath.ForChunks"/>).</summary>
internal interface IRowChunkKernel
{
    void Execute(int chunk, int start, int end);
}

/// <summary>
/// Vectorised helpers for row-wise ops on the CPU path (Vector256 with scalar tails; FMA where the hardware has
/// it) and the row partitioning that spreads rows over <see cref="CpuDevice.Threads"/>.
/// </summary>
internal static class RowMath
{
    /// <summary>Below this many elements a row op runs on the calling thread: a fork/join costs more than the work.</summary>
    public const long ParallelThreshold = 1 << 15;

    /// <summary>Floats of stack scratch used to stage exponentials in chunks (1 KiB).</summary>
    private const int ScratchLength = 256;

    /// <summary>
    /// How many contiguous row ranges a row op uses on <paramref name="device"/>. A pure function of the device and
    /// the shape, so ops that keep per-range partial sums (LayerNorm dγ/dβ) are deterministic run to run.
    /// </summary>
    public static int ChunkCount(CpuDevice device, int rows, int cols)
    {
        if (device.Threads == 1 || rows < 2 || (long)rows * cols < ParallelThreshold) return 1;
        // A few ranges per thread even out a busy core; each range keeps at least 4 rows.
        return Math.Max(1, Math.Min(device.Threads * 4, rows / 4));
    }

    /// <summary>Rows [start, end) of range <paramref name="chunk"/> out of <paramref name="chunks"/>.</summary>
    public static (int Start, int End) ChunkRange(int rows, int chunks, int chunk) =>
        ((int)((long)rows * chunk / chunks), (int)((long)rows * (chunk + 1) / chunks));

    /// <summary>
    /// Runs <paramref name="kernel"/>(chunk, startRow, endRow) for every range on the device's thread team, in
    /// parallel when there are several. The kernel is a struct, so no closure or delegate is made per call.
    /// </summary>
    public static void ForChunks<TKernel>(CpuDevice device, int rows, int chunks, in TKernel kernel)
        where TKernel : struct, IRowChunkKernel
    {
        if (chunks == 1)
        {
            kernel.Execute(0, 0, rows);
            return;
        }
        CpuParallel.For(device, chunks, 1, new ChunkLoop<TKernel>(kernel, rows, chunks));
    }

    /// <summary>Runs <paramref name="kernel"/> over all rows, split into <see cref="ChunkCount"/> ranges.</summary>
    public static void ForRows<TKernel>(CpuDevice device, int rows, int cols, in TKernel kernel)
        where TKernel : struct, IRowChunkKernel =>
        ForChunks(device, rows, ChunkCount(device, rows, cols), kernel);

    /// <summary>Adapts a row-range kernel to the unit ranges <see cref="CpuParallel"/> hands out (one unit = one range).</summary>
    private readonly struct ChunkLoop<TKernel>(TKernel kernel, int rows, int chunks) : IRangeKernel
        where TKernel : struct, IRowChunkKernel
    {
        public void Execute(int start, int count)
        {
            for (int c = start; c < start + count; c++)
            {
                var (s, e) = ChunkRange(rows, chunks, c);
                kernel.Execute(c, s, e);
            }
        }
    }

    /// <summary>max_j(scale·x_j): the shift that keeps exp(scale·x − shift) ≤ 1 for any sign of scale.</summary>
    public static float ScaledMax(ReadOnlySpan<float> x, float scale) =>
        scale >= 0f ? scale * TensorPrimitives.Max(x) : scale * TensorPrimitives.Min(x);

    /// <summary>Σ_j exp(scale·x_j − shift), staged through a stack buffer so nothing is allocated or overwritten.</summary>
    [SkipLocalsInit]
    public static float SumExp(ReadOnlySpan<float> x, float scale, float shift)
    {
        Span<float> buf = stackalloc float[ScratchLength];
        float sum = 0f;
        for (int i = 0; i < x.Length; i += ScratchLength)
        {
            int n = Math.Min(ScratchLength, x.Length - i);
            var b = buf[..n];
            ScaleShift(x.Slice(i, n), scale, shift, b);
            TensorPrimitives.Exp(b, b);
            sum += TensorPrimitives.Sum(b);
        }
        return sum;
    }

    /// <summary>y = scale·x − shift (one FMA per element). y may be x.</summary>
    public static void ScaleShift(ReadOnlySpan<float> x, float scale, float shift, Span<float> y)
    {
        int n = x.Length, i = 0;
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float py = ref MemoryMarshal.GetReference(y);
        if (Vector256.IsHardwareAccelerated)
        {
            var a = Vector256.Create(scale);
            var b = Vector256.Create(-shift);
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
                Vector256.MultiplyAddEstimate(Vector256.LoadUnsafe(ref px, (nuint)i), a, b).StoreUnsafe(ref py, (nuint)i);
        }
        for (; i < n; i++) Unsafe.Add(ref py, i) = scale * Unsafe.Add(ref px, i) - shift;
    }

    /// <summary>dx = scale·(dy − dot)⊙y in one pass (softmax backward). dx may be dy or y.</summary>
    public static void SoftmaxGrad(ReadOnlySpan<float> dy, ReadOnlySpan<float> y, float dot, float scale, Span<float> dx)
    {
        int n = y.Length, i = 0;
        ref float pdy = ref MemoryMarshal.GetReference(dy);
        ref float py = ref MemoryMarshal.GetReference(y);
        ref float pdx = ref MemoryMarshal.GetReference(dx);
        if (Vector256.IsHardwareAccelerated)
        {
            var d = Vector256.Create(dot);
            var s = Vector256.Create(scale);
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
                ((Vector256.LoadUnsafe(ref pdy, (nuint)i) - d) * (s * Vector256.LoadUnsafe(ref py, (nuint)i))).StoreUnsafe(ref pdx, (nuint)i);
        }
        for (; i < n; i++) Unsafe.Add(ref pdx, i) = (Unsafe.Add(ref pdy, i) - dot) * (scale * Unsafe.Add(ref py, i));
    }

    /// <summary>Σ_j (x_j − shift), summed after the shift so a large common offset does not cancel digits away.</summary>
    public static float SumShifted(ReadOnlySpan<float> x, float shift)
    {
        int n = x.Length, i = 0;
        ref float px = ref MemoryMarshal.GetReference(x);
        float sum = 0f;
        if (Vector256.IsHardwareAccelerated && n >= Vector256<float>.Count)
        {
            var s = Vector256.Create(shift);
            var acc = Vector256<float>.Zero;
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
                acc += Vector256.LoadUnsafe(ref px, (nuint)i) - s;
            sum = Vector256.Sum(acc);
        }
        for (; i < n; i++) sum += Unsafe.Add(ref px, i) - shift;
        return sum;
    }

    /// <summary>Σ_j (x_j − mean)²: the two-pass variance numerator (stable for rows with a large mean).</summary>
    public static float SumSquaredDeviation(ReadOnlySpan<float> x, float mean)
    {
        int n = x.Length, i = 0;
        ref float px = ref MemoryMarshal.GetReference(x);
        float sum = 0f;
        if (Vector256.IsHardwareAccelerated && n >= 2 * Vector256<float>.Count)
        {
            var m = Vector256.Create(mean);
            Vector256<float> a0 = Vector256<float>.Zero, a1 = Vector256<float>.Zero;
            for (; i <= n - 2 * Vector256<float>.Count; i += 2 * Vector256<float>.Count)
            {
                var d0 = Vector256.LoadUnsafe(ref px, (nuint)i) - m;
                var d1 = Vector256.LoadUnsafe(ref px, (nuint)(i + Vector256<float>.Count)) - m;
                a0 = Vector256.MultiplyAddEstimate(d0, d0, a0);
                a1 = Vector256.MultiplyAddEstimate(d1, d1, a1);
            }
            sum = Vector256.Sum(a0 + a1);
        }
        for (; i < n; i++)
        {
            float d = Unsafe.Add(ref px, i) - mean;
            sum += d * d;
        }
        return sum;
    }

    /// <summary>
    /// y = (x − mean)·rstd·γ + β, with γ and/or β left out when empty (no affine). y may be x.
    /// </summary>
    public static void NormalizeAffine(ReadOnlySpan<float> x, float mean, float rstd,
        ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, Span<float> y)
    {
        int n = x.Length, i = 0;
        bool hasGamma = !gamma.IsEmpty, hasBeta = !beta.IsEmpty;
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float py = ref MemoryMarshal.GetReference(y);
        ref float pg = ref MemoryMarshal.GetReference(gamma);
        ref float pb = ref MemoryMarshal.GetReference(beta);
        if (Vector256.IsHardwareAccelerated)
        {
            var m = Vector256.Create(mean);
            var r = Vector256.Create(rstd);
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var v = (Vector256.LoadUnsafe(ref px, (nuint)i) - m) * r;
                if (hasGamma) v *= Vector256.LoadUnsafe(ref pg, (nuint)i);
                if (hasBeta) v += Vector256.LoadUnsafe(ref pb, (nuint)i);
                v.StoreUnsafe(ref py, (nuint)i);
            }
        }
        for (; i < n; i++)
        {
            float v = (Unsafe.Add(ref px, i) - mean) * rstd;
            if (hasGamma) v *= Unsafe.Add(ref pg, i);
            if (hasBeta) v += Unsafe.Add(ref pb, i);
            Unsafe.Add(ref py, i) = v;
        }
    }

    /// <summary>
    /// LayerNorm backward statistics of one row: Σ_j g_j and Σ_j g_j·n_j, where g = γ⊙dy (γ = 1 when empty) and
    /// n = (x − mean)·rstd is the normalised input.
    /// </summary>
    public static (float SumG, float SumGN) LayerNormBackwardSums(ReadOnlySpan<float> dy, ReadOnlySpan<float> x,
        ReadOnlySpan<float> gamma, float mean, float rstd)
    {
        int n = x.Length, i = 0;
        bool hasGamma = !gamma.IsEmpty;
        ref float pdy = ref MemoryMarshal.GetReference(dy);
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float pg = ref MemoryMarshal.GetReference(gamma);
        float sg = 0f, sgn = 0f;
        if (Vector256.IsHardwareAccelerated && n >= Vector256<float>.Count)
        {
            var m = Vector256.Create(mean);
            var r = Vector256.Create(rstd);
            Vector256<float> ag = Vector256<float>.Zero, agn = Vector256<float>.Zero;
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var g = Vector256.LoadUnsafe(ref pdy, (nuint)i);
                if (hasGamma) g *= Vector256.LoadUnsafe(ref pg, (nuint)i);
                var nrm = (Vector256.LoadUnsafe(ref px, (nuint)i) - m) * r;
                ag += g;
                agn = Vector256.MultiplyAddEstimate(g, nrm, agn);
            }
            sg = Vector256.Sum(ag);
            sgn = Vector256.Sum(agn);
        }
        for (; i < n; i++)
        {
            float g = Unsafe.Add(ref pdy, i);
            if (hasGamma) g *= Unsafe.Add(ref pg, i);
            float nrm = (Unsafe.Add(ref px, i) - mean) * rstd;
            sg += g;
            sgn += g * nrm;
        }
        return (sg, sgn);
    }

    /// <summary>
    /// One row of LayerNorm backward: dx = rstd·(g − meanG − n·meanGN) with g = γ⊙dy and n = (x − mean)·rstd;
    /// and, when the spans are non-empty, dγ += dy⊙n and dβ += dy. dx may be dy.
    /// </summary>
    public static void LayerNormBackwardRow(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> gamma,
        float mean, float rstd, float meanG, float meanGN, Span<float> dx, Span<float> dGamma, Span<float> dBeta)
    {
        int n = x.Length, i = 0;
        bool hasGamma = !gamma.IsEmpty, hasDGamma = !dGamma.IsEmpty, hasDBeta = !dBeta.IsEmpty;
        ref float pdy = ref MemoryMarshal.GetReference(dy);
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float pg = ref MemoryMarshal.GetReference(gamma);
        ref float pdx = ref MemoryMarshal.GetReference(dx);
        ref float pdg = ref MemoryMarshal.GetReference(dGamma);
        ref float pdb = ref MemoryMarshal.GetReference(dBeta);
        if (Vector256.IsHardwareAccelerated)
        {
            var m = Vector256.Create(mean);
            var r = Vector256.Create(rstd);
            var mg = Vector256.Create(meanG);
            var mgn = Vector256.Create(meanGN);
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var d = Vector256.LoadUnsafe(ref pdy, (nuint)i);
                var g = hasGamma ? d * Vector256.LoadUnsafe(ref pg, (nuint)i) : d;
                var nrm = (Vector256.LoadUnsafe(ref px, (nuint)i) - m) * r;
                if (hasDGamma) Vector256.MultiplyAddEstimate(d, nrm, Vector256.LoadUnsafe(ref pdg, (nuint)i)).StoreUnsafe(ref pdg, (nuint)i);
                if (hasDBeta) (Vector256.LoadUnsafe(ref pdb, (nuint)i) + d).StoreUnsafe(ref pdb, (nuint)i);
                (r * (g - mg - nrm * mgn)).StoreUnsafe(ref pdx, (nuint)i);
            }
        }
        for (; i < n; i++)
        {
            float d = Unsafe.Add(ref pdy, i);
            float g = hasGamma ? d * Unsafe.Add(ref pg, i) : d;
            float nrm = (Unsafe.Add(ref px, i) - mean) * rstd;
            if (hasDGamma) Unsafe.Add(ref pdg, i) += d * nrm;
            if (hasDBeta) Unsafe.Add(ref pdb, i) += d;
            Unsafe.Add(ref pdx, i) = rstd * (g - meanG - nrm * meanGN);
        }
    }
}
