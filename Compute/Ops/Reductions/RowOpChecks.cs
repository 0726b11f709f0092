using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;

namespace CrateIL.Compute.Ops;

/// <summary>Argument validation shared by the row-wise ops (softmax, LayerNorm, reductions, cross-entropy).</summary>
internal static class RowOpChecks
{
    /// <summary>The [rows, cols] view of <paramref name="x"/>: rows = product of leading dims, cols = last dim ≥ 1.</summary>
    public static (int Rows, int Cols) RowsOf(string op, string name, Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x, name);
        if (x.IsDisposed) throw new ObjectDisposedException(name, $"{op}: {name} was disposed");
        long rows = x.Shape.Rows;
        int cols = x.Shape.LastDim;
        if (cols < 1) throw new ArgumentException($"{op}: {name}{x.Shape} has an empty last dimension; a row needs at least one element", name);
        if (rows > int.MaxValue) throw new ArgumentException($"{op}: {name}{x.Shape} has {rows} rows, more than {int.MaxValue}", name);
        return ((int)rows, cols);
    }

    public static void SameShape(string op, string name, Tensor t, string refName, Tensor reference)
    {
        ArgumentNullException.ThrowIfNull(t, name);
        if (t.Shape != reference.Shape)
            throw new ArgumentException($"{op}: {name}{t.Shape} must have the shape of {refName}{reference.Shape}", name);
        SameDevice(op, name, t, refName, reference);
    }

    /// <summary>A per-row or per-column vector: any shape with exactly <paramref name="length"/> elements.</summary>
    public static void VectorOf(string op, string name, Tensor t, long length, string what, string refName, Tensor reference)
    {
        ArgumentNullException.ThrowIfNull(t, name);
        if (t.Length != length)
            throw new ArgumentException($"{op}: {name}{t.Shape} must hold {length} elements ({what} of {refName}{reference.Shape})", name);
        SameDevice(op, name, t, refName, reference);
    }

    public static void SameDevice(string op, string name, Tensor t, string refName, Tensor reference)
    {
        if (t.IsDisposed) throw new ObjectDisposedException(name, $"{op}: {name} was disposed");
        if (!ReferenceEquals(t.Device, reference.Device))
            throw new ArgumentException($"{op}: {name} lives on {t.Device.Spec} but {refName} on {reference.Device.Spec}", name);
    }

    /// <summary>ILGPU kernels index with 32-bit ints; larger tensors are rejected up front, not wrapped around.</summary>
    public static void FitsIlgpuIndex(string op, string name, Tensor t)
    {
        if (t.Length > int.MaxValue)
            throw new ArgumentException($"{op}: {name}{t.Shape} has {t.Length} elements; ILGPU row kernels index up to {int.MaxValue}", name);
    }

    public static NotSupportedException Unsupported(string op, Device device) =>
        new($"{op} has no implementation for device {device.Spec}");

    /// <summary>Threads per group for the row kernels of <paramref name="device"/>, checked against the tree limits.</summary>
    public static int GroupSize(IlgpuDevice device)
    {
        int g = Math.Min(device.RowGroupSize, device.MaxThreadsPerGroup);
        if (g < 1 || g > GroupReduce.MaxGroupSize || (g & (g - 1)) != 0)
            throw new InvalidOperationException($"Row group size {g} on {device.Spec} is not a power of two ≤ {GroupReduce.MaxGroupSize}");
        return g;
    }
}
