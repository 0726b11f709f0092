using System.Numerics.Tensors;
using CrateIL.Compute.Cpu;
using CrateIL.Compute.Devices;
using Tensor = CrateIL.Compute.Tensors.Tensor;

namespace CrateIL.Compute.Ops;

/// <summary>
/// LayerNorm on the CPU: fused Vector256 row passes, rows split across threads. dγ/dβ are summed per contiguous
/// row range into a per-thread scratch buffer and then added in range order, so results do not depend on scheduling.
/// </summary>
internal static unsafe class LayerNormCpu
{
    public static void Forward(CpuDevice device, Tensor x, Tensor? gamma, Tensor? beta, Tensor y,
        Tensor? mean, Tensor? rstd, int rows, int cols, float eps) =>
        RowMath.ForRows(device, rows, cols, new ForwardKernel(x.HostPointer, y.HostPointer,
            gamma is null ? null : gamma.HostPointer, beta is null ? null : beta.HostPointer,
            mean is null ? null : mean.HostPointer, rstd is null ? null : rstd.HostPointer, cols, eps));

    private readonly struct ForwardKernel(float* px, float* py, float* pg, float* pb, float* pm, float* ps, int cols, float eps)
        : IRowChunkKernel
    {
        public void Execute(int chunk, int start, int end)
        {
            var g = pg is null ? default : new ReadOnlySpan<float>(pg, cols);
            var b = pb is null ? default : new ReadOnlySpan<float>(pb, cols);
            for (int r = start; r < end; r++)
            {
                long o = (long)r * cols;
                var xr = new ReadOnlySpan<float>(px + o, cols);
                float m = TensorPrimitives.Sum(xr) / cols;
                float s = 1f / MathF.Sqrt(RowMath.SumSquaredDeviation(xr, m) / cols + eps);
                if (pm is not null)
                {
                    pm[r] = m;
                    ps[r] = s;
                }
                RowMath.NormalizeAffine(xr, m, s, g, b, new Span<float>(py + o, cols));
            }
        }
    }

    [ThreadStatic] private static AlignedBuffer? t_scratch;

    public static void Backward(CpuDevice device, Tensor dy, Tensor x, Tensor? gamma, Tensor mean, Tensor rstd,
        Tensor dx, Tensor? dGamma, Tensor? dBeta, int rows, int cols)
    {
        int chunks = RowMath.ChunkCount(device, rows, cols);
        bool needScratch = chunks > 1 && (dGamma is not null || dBeta is not null);
        // Per range: [dγ partial | dβ partial], in the calling thread's own buffer, so steady-state calls allocate
        // nothing (a pooled tensor still allocated its 144-byte wrapper: two per layer in every training step).
        float* scratch = null;
        if (needScratch)
        {
            long len = (long)chunks * 2 * cols;
            scratch = (t_scratch ??= new AlignedBuffer()).Ensure(len);
            new Span<float>(scratch, checked((int)len)).Clear();
        }
        RowMath.ForChunks(device, rows, chunks, new BackwardKernel(dy.HostPointer, x.HostPointer, dx.HostPointer,
            gamma is null ? null : gamma.HostPointer, mean.HostPointer, rstd.HostPointer, scratch,
            dGamma is null ? null : dGamma.HostPointer, dBeta is null ? null : dBeta.HostPointer, cols));
        if (scratch is null) return;
        for (int c = 0; c < chunks; c++)
        {
            float* part = scratch + (long)c * 2 * cols;
            if (dGamma is not null)
            {
                var d = new Span<float>(dGamma.HostPointer, cols);
                TensorPrimitives.Add(d, new ReadOnlySpan<float>(part, cols), d);
            }
            if (dBeta is not null)
            {
                var d = new Span<float>(dBeta.HostPointer, cols);
                TensorPrimitives.Add(d, new ReadOnlySpan<float>(part + cols, cols), d);
            }
        }
    }

    /// <summary>
    /// One row range of the backward pass. With a scratch buffer, range c's dγ/dβ go to its own partial
    /// [c, 2, cols] (summed in range order afterwards); without one (a single range) straight into dγ/dβ.
    /// </summary>
    private readonly struct BackwardKernel(float* pdy, float* px, float* pdx, float* pg, float* pm, float* ps,
        float* scratch, float* pdGamma, float* pdBeta, int cols) : IRowChunkKernel
    {
        public void Execute(int chunk, int start, int end)
        {
            var g = pg is null ? default : new ReadOnlySpan<float>(pg, cols);
            Span<float> dg = default, db = default;
            if (scratch is not null)
            {
                float* part = scratch + (long)chunk * 2 * cols;
                if (pdGamma is not null) dg = new Span<float>(part, cols);
                if (pdBeta is not null) db = new Span<float>(part + cols, cols);
            }
            else
            {
                if (pdGamma is not null) dg = new Span<float>(pdGamma, cols);
                if (pdBeta is not null) db = new Span<float>(pdBeta, cols);
            }
            for (int r = start; r < end; r++)
            {
                long o = (long)r * cols;
                var dyr = new ReadOnlySpan<float>(pdy + o, cols);
                var xr = new ReadOnlySpan<float>(px + o, cols);
                var (sg, sgn) = RowMath.LayerNormBackwardSums(dyr, xr, g, pm[r], ps[r]);
                RowMath.LayerNormBackwardRow(dyr, xr, g, pm[r], ps[r], sg / cols, sgn / cols,
                    new Span<float>(pdx + o, cols), dg, db);
            }
        }
    }
}
