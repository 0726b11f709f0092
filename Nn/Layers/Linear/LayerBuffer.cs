using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;

namespace CrateIL.Nn.Layers;

/// <summary>
/// Buffers a layer owns (what Forward saves for Backward, and backward scratch): allocated on first use for a batch
/// shape, reused while the shape stays the same (nothing is allocated per step in steady state), and replaced when
/// the shape changes, the old storage going back to the device pool.
/// </summary>
internal static class LayerBuffer
{
    public static Tensor Ensure(ref Tensor? buffer, Device device, int d0)
    {
        if (buffer is { IsDisposed: false } b && ReferenceEquals(b.Device, device) && b.Rank == 1 && b.Shape[0] == d0) return b;
        buffer?.Dispose();
        return buffer = device.Allocate(d0);
    }

    public static Tensor Ensure(ref Tensor? buffer, Device device, int d0, int d1)
    {
        if (buffer is { IsDisposed: false } b && ReferenceEquals(b.Device, device) && b.Rank == 2 && b.Shape[0] == d0 && b.Shape[1] == d1) return b;
        buffer?.Dispose();
        return buffer = device.Allocate(d0, d1);
    }

    public static Tensor Ensure(ref Tensor? buffer, Device device, int d0, int d1, int d2)
    {
        if (buffer is { IsDisposed: false } b && ReferenceEquals(b.Device, device) && b.Rank == 3
            && b.Shape[0] == d0 && b.Shape[1] == d1 && b.Shape[2] == d2) return b;
        buffer?.Dispose();
        return buffer = device.Allocate(d0, d1, d2);
    }

    /// <summary>A buffer of exactly <paramref name="shape"/> (ops such as LayerNorm require equal shapes, not just lengths).</summary>
    public static Tensor EnsureLike(ref Tensor? buffer, Device device, TensorShape shape)
    {
        if (buffer is { IsDisposed: false } b && ReferenceEquals(b.Device, device) && b.Shape == shape) return b;
        buffer?.Dispose();
        return buffer = device.Allocate(shape.Dims.ToArray());
    }

    /// <summary>Disposes and clears a buffer slot.</summary>
    public static void Release(ref Tensor? buffer)
    {
        buffer?.Dispose();
        buffer = null;
    }

    /// <summary>"prefix.name", or just "name" for an empty prefix.</summary>
    public static string Join(string prefix, string name) => string.IsNullOrEmpty(prefix) ? name : prefix + "." + name;

    /// <summary>The [rows, cols] view of a tensor whose last dimension must be <paramref name="cols"/>.</summary>
    public static int RowsOf(string layer, string name, Tensor t, int cols)
    {
        ArgumentNullException.ThrowIfNull(t, name);
        if (t.IsDisposed) throw new ObjectDisposedException(name, $"{layer}: {name} was disposed");
        if (t.Rank < 1 || t.Shape.LastDim != cols)
            throw new ArgumentException($"{layer}: {name}{t.Shape} must have last dimension {cols}", name);
        if (t.Shape.Rows > int.MaxValue)
            throw new ArgumentException($"{layer}: {name}{t.Shape} has more than {int.MaxValue} rows", name);
        return (int)t.Shape.Rows;
    }

    public static void SameDevice(string layer, string name, Tensor t, Device device)
    {
        if (!ReferenceEquals(t.Device, device))
            throw new ArgumentException($"{layer}: {name} lives on {t.Device.Spec} but the layer's parameters on {device.Spec}", name);
    }

    public static void RequireBuilt(string layer, Nn.Parameters.ParameterStore store)
    {
        if (!store.IsBuilt) throw new InvalidOperationException($"{layer}: build the ParameterStore before running the layer");
    }
}
