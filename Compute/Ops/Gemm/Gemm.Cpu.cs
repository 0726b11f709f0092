using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;

namespace CrateIL.Compute.Ops;

/// <summary>CPU SIMD SGEMM (placeholder scalar loop; replaced by the packed, blocked FMA path).</summary>
internal static class GemmCpu
{
    public static unsafe void Run(CpuDevice device, Tensor a, Tensor b, Tensor c, in GemmArgs g)
    {
        float* pa = ((HostStorage)a.Storage).Pointer, pb = ((HostStorage)b.Storage).Pointer, pc = ((HostStorage)c.Storage).Pointer;
        pa += a.Offset; pb += b.Offset; pc += c.Offset;
        for (int bt = 0; bt < g.Batch; bt++)
            for (int i = 0; i < g.M; i++)
                for (int j = 0; j < g.N; j++)
                {
                    float s = 0;
                    for (int p = 0; p < g.K; p++) s += pa[g.IndexA(bt, i, p)] * pb[g.IndexB(bt, p, j)];
                    long ci = g.IndexC(bt, i, j);
                    pc[ci] = g.Alpha * s + (g.Beta == 0f ? 0f : g.Beta * pc[ci]);
                }
    }
}
