using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;

namespace CrateIL.Compute.Ops;

/// <summary>Argument checks shared by the elementwise and activation entry points (clear messages naming the op).</summary>
internal static class ElementwiseChecks
{
    /// <summary>Elementwise ops look at tensors as flat arrays: any shapes with equal element counts are accepted.</summary>
    public static void SameLength(string op, string nameA, Tensor a, string nameB, Tensor b)
    {
        ArgumentNullException.ThrowIfNull(a, nameA);
        ArgumentNullException.ThrowIfNull(b, nameB);
        if (a.Length != b.Length)
            throw new ArgumentException($"{op}: {nameA}{a.Shape} has {a.Length} elements but {nameB}{b.Shape} has {b.Length}");
        if (a.Device != b.Device)
            throw new ArgumentException($"{op}: {nameA} lives on {a.Device.Spec} but {nameB} on {b.Device.Spec}");
        if (a.Length > int.MaxValue)
            throw new ArgumentException($"{op}: {nameA}{a.Shape} has {a.Length} elements; at most {int.MaxValue} are supported");
    }

    public static void SameLength(string op, string nameA, Tensor a, string nameB, Tensor b, string nameC, Tensor c)
    {
        SameLength(op, nameA, a, nameB, b);
        SameLength(op, nameA, a, nameC, c);
    }

    public static void Finite(string op, string name, float value)
    {
        if (!float.IsFinite(value)) throw new ArgumentOutOfRangeException(name, value, $"{op}: {name} must be finite");
    }

    public static NotSupportedException Unsupported(string op, Device device) =>
        new($"{op} has no implementation for device {device.Spec} ({device.GetType().Name})");
}

/// <summary>Launch shapes for grid-stride elementwise kernels.</summary>
internal static class GridStride
{
    /// <summary>
    /// Groups of <see cref="IlgpuDevice.RowGroupSize"/> threads (16 on the CPU simulator, 256 elsewhere); enough
    /// groups to fill every multiprocessor once, never more than the data needs. Each thread then strides over
    /// the array, so one launch covers any length.
    /// </summary>
    public static ILGPU.KernelConfig Config(IlgpuDevice device, long work)
    {
        var acc = device.Accelerator;
        int group = Math.Min(device.RowGroupSize, acc.MaxNumThreadsPerGroup);
        int perMultiprocessor = Math.Max(1, acc.MaxNumThreadsPerMultiprocessor / group);
        long needed = (work + group - 1) / group;
        int groups = (int)Math.Clamp(needed, 1, (long)acc.NumMultiprocessors * perMultiprocessor);
        return new ILGPU.KernelConfig(groups, group);
    }
}
