using CrateIL.Compute.Devices;

namespace CrateIL.Segmentation;

/// <summary>
/// The CPU a segmentation routine runs on when its caller passes none: one thread, the calling one. Segmentation
/// never picks a thread count of its own (no hidden all-core device): callers pass the <see cref="CpuDevice"/> their
/// <c>--threads</c> made, so its thread team is the only one in use.
/// </summary>
internal static class SegmentationCpu
{
    private static readonly CpuDevice Serial = CpuDevice.Create(1);

    public static CpuDevice Resolve(CpuDevice? cpu) => cpu ?? Serial;
}
