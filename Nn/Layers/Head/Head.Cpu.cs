using System.Runtime.Intrinsics;
using CrateIL.Compute.Cpu;
using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;

namespace CrateIL.Nn.Layers;

/// <summary>Token pooling on the host: one unit = one image of the batch.</summary>
internal static unsafe class HeadCpu
{
    private static int Grain(PoolArgs a) => (int)Math.Max(1, (1 << 14) / Math.Max(1L, (long)a.Tokens * a.Dim));

    public static void Pool(CpuDevice device, Tensor x, Tensor pooled, PoolArgs a) =>
        CpuParallel.For(device, a.Batch, Grain(a), new PoolKernel(x.HostPointer, pooled.HostPointer, a));

    public static void Unpool(CpuDevice device, Tensor dPooled, Tensor dx, PoolArgs a) =>
        CpuParallel.For(device, a.Batch, Grain(a), new UnpoolKernel(dPooled.HostPointer, dx.HostPointer, a));

    private readonly struct PoolKernel(float* x, float* pooled, PoolArgs a) : IRangeKernel
    {
        private readonly float* _x = x, _pooled = pooled;
        private readonly PoolArgs _a = a;

        public void Execute(int start, int count)
        {
            int d = _a.Dim, t = _a.Tokens;
            for (int b = start; b < start + count; b++)
            {
                float* img = _x + (long)b * t * d;
                float* dst = _pooled + (long)b * d;
                if (_a.Mean == 0)
                {
                    new ReadOnlySpan<float>(img, d).CopyTo(new Span<float>(dst, d));
                    continue;
                }
                // Σ over tokens in token order, then ÷ T (as torch.mean and the ILGPU kernel).
                int j = 0;
                if (Vector256.IsHardwareAccelerated)
                    for (; j <= d - 8; j += 8)
                    {
                        var sum = Vector256<float>.Zero;
                        for (int k = 0; k < t; k++) sum += Vector256.Load(img + (long)k * d + j);
                        Vector256.Store(sum / Vector256.Create((float)t), dst + j);
                    }
                for (; j < d; j++)
                {
                    float sum = 0f;
                    for (int k = 0; k < t; k++) sum += img[(long)k * d + j];
                    dst[j] = sum / t;
                }
            }
        }
    }

    private readonly struct UnpoolKernel(float* dPooled, float* dx, PoolArgs a) : IRangeKernel
    {
        private readonly float* _dPooled = dPooled, _dx = dx;
        private readonly PoolArgs _a = a;

        public void Execute(int start, int count)
        {
            int d = _a.Dim, t = _a.Tokens;
            for (int b = start; b < start + count; b++)
            {
                var g = new ReadOnlySpan<float>(_dPooled + (long)b * d, d);
                float* img = _dx + (long)b * t * d;
                if (_a.Mean == 0)
                {
                    g.CopyTo(new Span<float>(img, d));
                    new Span<float>(img + d, (t - 1) * d).Clear();
                    continue;
                }
                for (int k = 0; k < t; k++)
                {
                    var row = new Span<float>(img + (long)k * d, d);
                    for (int j = 0; j < d; j++) row[j] = g[j] / t;
                }
            }
        }
    }
}
