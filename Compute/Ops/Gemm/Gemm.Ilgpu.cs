using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;

namespace CrateIL.Compute.Ops;

/// <summary>ILGPU SGEMM (shared-memory tiles with register blocking) — filled in by the GEMM kernel work.</summary>
internal static class GemmIlgpu
{
    public static void Run(IlgpuDevice device, Tensor a, Tensor b, Tensor c, in GemmArgs g) =>
        throw new NotSupportedException($"ILGPU GEMM is not built yet ({device.Spec})");
}
