using System.Numerics.Tensors;
using CrateIL.Compute.Cpu;
using CrateIL.Compute.Devices;
using Tensor = CrateIL.Compute.Tensors.Tensor;

namespace CrateIL.Compute.Ops;

/// <summary>
/// LayerNorm on the CPU: fused Vector256 row passes, rows split across threads. dγ/dβ are summed per contiguous
/// row range into a pooled scratch tensor and then added in range order, so results do not depend on scheduling.
/// </summary>
internal static unsafe class LayerNormCpu
{
    public static void Forward(CpuDevice device, Tensor x, Tensor? gamma, Tensor? beta, Tensor y,
        Tensor? mean, Tensor? rstd, int rows, int cols, float eps) =>
        RowMath.ForRows(device, rows, cols, (start, end) =>
        {
            float* px = x.HostPointer, py = y.HostPointer;
            var g = gamma is null ? default : new ReadOnlySpan<float>(gamma.HostPointer, cols);
            var b = beta is null ? default : new ReadOnlySpan<float>(beta.HostPointer, cols);
            for (int r = start; r < end; r++)
            {
                long o = (long)r * cols;
                var xr = new ReadOnlySpan<float>(px + o, cols);
                float m = TensorPrimitives.Sum(xr) / cols;
                float s = 1f / MathF.Sqrt(RowMath.SumSquaredDeviation(xr, m) / cols + eps);
                if (mean is not null)
                {
                    mean.HostPointer[r] = m;
                    rstd!.HostPointer[r] = s;
                }
                RowMath.NormalizeAffine(xr, m, s, g, b, new Span<float>(py + o, cols));
            }
        });

    public static void Backward(CpuDevice device, Tensor dy, Tensor x, Tensor? gamma, Tensor mean, Tensor rstd,
        Tensor dx, Tensor? dGamma, Tensor? dBeta, int rows, int cols)
    {
        int chunks = RowMath.ChunkCount(device, rows, cols);
        bool needScratch = chunks > 1 && (dGamma is not null || dBeta is not null);
        // Per range: [dγ partial | dβ partial]. Rented from the device pool, so steady-state calls allocate nothing.
        using var scratch = needScratch ? device.Zeros(chunks, 2, cols) : null;
        RowMath.ForChunks(device, rows, chunks, (chunk, start, end) =>
        {
            float* pdy = dy.HostPointer, px = x.HostPointer, pdx = dx.HostPointer;
            float* pm = mean.HostPointer, ps = rstd.HostPointer;
            var g = gamma is null ? default : new ReadOnlySpan<float>(gamma.HostPointer, cols);
            Span<float> dg = default, db = default;
            if (scratch is not null)
            {
                float* part = scratch.HostPointer + (long)chunk * 2 * cols;
                if (dGamma is not null) dg = new Span<float>(part, cols);
                if (dBeta is not null) db = new Span<float>(part + cols, cols);
            }
            else
            {
                if (dGamma is not null) dg = new Span<float>(dGamma.HostPointer, cols);
                if (dBeta is not null) db = new Span<float>(dBeta.HostPointer, cols);
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
        });
        if (scratch is null) return;
        for (int c = 0; c < chunks; c++)
        {
            float* part = scratch.HostPointer + (long)c * 2 * cols;
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
}
