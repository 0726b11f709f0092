using CrateIL.Compute.Devices;
using ILGPU;
using ILGPU.Runtime;
using Device = CrateIL.Compute.Devices.Device;

namespace CrateIL.Compute.Tensors;

/// <summary>
/// A contiguous float32 tensor on one device. Tensors made by a device own pooled storage and give it back
/// on <see cref="Dispose"/>; views made by <see cref="Reshape"/> or <see cref="Slice"/> share it and own nothing.
/// Copies between host and device are explicit.
/// </summary>
public sealed class Tensor : IDisposable
{
    private Storage? _storage;
    private readonly bool _owner;

    private Tensor(Device device, TensorShape shape, Storage storage, long offset, bool owner)
    {
        Device = device;
        Shape = shape;
        _storage = storage;
        Offset = offset;
        _owner = owner;
    }

    public Device Device { get; }
    public TensorShape Shape { get; }
    public long Length => Shape.Length;
    public int Rank => Shape.Rank;

    /// <summary>Element offset of this tensor inside its storage (non-zero for slices).</summary>
    internal long Offset { get; }

    internal Storage Storage => _storage ?? throw new ObjectDisposedException(nameof(Tensor), "The tensor was disposed.");

    public bool IsDisposed => _storage is null;

    internal static Tensor Empty(Device device, TensorShape shape) =>
        new(device, shape, device.Pool.Rent(shape.Length), 0, owner: true);

    internal static Tensor Zeros(Device device, TensorShape shape)
    {
        var t = Empty(device, shape);
        t.Clear();
        return t;
    }

    internal static Tensor FromHost(Device device, ReadOnlySpan<float> data, TensorShape shape)
    {
        if (data.Length != shape.Length)
            throw new ArgumentException($"Data has {data.Length} elements but shape {shape} needs {shape.Length}", nameof(data));
        var t = Empty(device, shape);
        t.CopyFrom(data);
        return t;
    }

    /// <summary>The elements as a host span. Only for tensors on the CPU device.</summary>
    public Span<float> AsSpan()
    {
        if (Storage is not HostStorage host)
            throw new InvalidOperationException($"Tensor lives on {Device.Spec}; copy it to the host with ToArray/CopyTo.");
        return host.Span(Offset, checked((int)Length));
    }

    /// <summary>Pointer to the first element (CPU tensors only). Valid while the tensor is alive.</summary>
    internal unsafe float* HostPointer => ((HostStorage)Storage).Pointer + Offset;

    /// <summary>The ILGPU view of this tensor (ILGPU devices only).</summary>
    internal ArrayView<float> View
    {
        get
        {
            if (Storage is not IlgpuStorage dev)
                throw new InvalidOperationException($"Tensor lives on {Device.Spec}, not on an ILGPU device.");
            return dev.View.SubView(Offset, Length);
        }
    }

    internal Accelerator Accelerator => ((IlgpuStorage)Storage).Accelerator;

    /// <summary>Copies host data into this tensor.</summary>
    public void CopyFrom(ReadOnlySpan<float> data)
    {
        if (data.Length != Length) throw new ArgumentException($"Source has {data.Length} elements, tensor {Shape} has {Length}", nameof(data));
        if (Length == 0) return;
        if (Storage is HostStorage) data.CopyTo(AsSpan());
        else View.CopyFromCPU(Accelerator.DefaultStream, data);
    }

    /// <summary>Copies this tensor to host memory (waits for queued device work).</summary>
    public void CopyTo(Span<float> destination)
    {
        if (destination.Length != Length) throw new ArgumentException($"Destination has {destination.Length} elements, tensor {Shape} has {Length}", nameof(destination));
        if (Length == 0) return;
        if (Storage is HostStorage) AsSpan().CopyTo(destination);
        else
        {
            Accelerator.Synchronize();
            View.CopyToCPU(Accelerator.DefaultStream, destination);
        }
    }

    /// <summary>Copies this tensor into another of the same length, on any device.</summary>
    public void CopyTo(Tensor destination)
    {
        if (destination.Length != Length) throw new ArgumentException($"Destination {destination.Shape} has {destination.Length} elements, source {Shape} has {Length}", nameof(destination));
        if (Length == 0) return;
        if (destination.Storage is HostStorage && Storage is HostStorage && !ReferenceEquals(Storage, destination.Storage) && Device is Devices.CpuDevice cpu && cpu.Threads > 1
            && Length >= Cpu.CpuParallel.ElementGrain * 2 && Length <= int.MaxValue)
        {
            // Residual copies of activations (MBs per layer in training) are on the critical path: split them over the team.
            unsafe { Cpu.CpuParallel.For(cpu, (int)Length, Cpu.CpuParallel.ElementGrain, new CopyKernel(HostPointer, destination.HostPointer), align: 16); }
            return;
        }
        if (destination.Storage is HostStorage) { CopyTo(destination.AsSpan()); return; }
        if (Storage is HostStorage) { destination.CopyFrom(AsSpan()); return; }
        if (ReferenceEquals(Accelerator, destination.Accelerator))
        {
            var dst = destination.View;
            View.CopyTo(Accelerator.DefaultStream, in dst);
            return;
        }
        destination.CopyFrom(ToArray());
    }

    private readonly unsafe struct CopyKernel(float* source, float* destination) : Cpu.IRangeKernel
    {
        public void Execute(int start, int count) =>
            new ReadOnlySpan<float>(source + start, count).CopyTo(new Span<float>(destination + start, count));
    }

    public float[] ToArray()
    {
        var a = new float[Length];
        CopyTo(a);
        return a;
    }

    /// <summary>Sets every element to zero.</summary>
    public void Clear()
    {
        if (Length == 0) return;
        if (Storage is HostStorage) AsSpan().Clear();
        else View.MemSetToZero(Accelerator.DefaultStream);
    }

    /// <summary>Sets every element to <paramref name="value"/>.</summary>
    public void Fill(float value)
    {
        if (Length == 0) return;
        if (Storage is HostStorage) { AsSpan().Fill(value); return; }
        if (value == 0f) { Clear(); return; }
        ((IlgpuDevice)Device).Kernels<Ilgpu.CommonKernels>().Fill(this, value);
    }

    /// <summary>A view with another shape of the same length, sharing storage.</summary>
    public Tensor Reshape(params int[] shape)
    {
        var s = new TensorShape(shape);
        if (s.Length != Length) throw new ArgumentException($"Cannot reshape {Shape} ({Length} elements) to {s} ({s.Length})");
        return new Tensor(Device, s, Storage, Offset, owner: false);
    }

    /// <summary>A view of <paramref name="shape"/> starting <paramref name="elementOffset"/> elements in, sharing storage.</summary>
    public Tensor Slice(long elementOffset, params int[] shape)
    {
        var s = new TensorShape(shape);
        if (elementOffset < 0 || elementOffset + s.Length > Length)
            throw new ArgumentOutOfRangeException(nameof(elementOffset), $"Slice [{elementOffset}, {elementOffset + s.Length}) is outside tensor {Shape}");
        return new Tensor(Device, s, Storage, Offset + elementOffset, owner: false);
    }

    /// <summary>Throws a clear error unless this tensor has the given shape.</summary>
    public void ExpectShape(string name, params int[] shape)
    {
        if (!Shape.Dims.SequenceEqual(shape))
            throw new ArgumentException($"{name} has shape {Shape}, expected [{string.Join(", ", shape)}]");
    }

    /// <summary>Throws a clear error unless this tensor has at least <paramref name="length"/> elements.</summary>
    internal void ExpectLength(string name, long length)
    {
        if (Length < length) throw new ArgumentException($"{name} has {Length} elements ({Shape}), needs at least {length}");
    }

    public override string ToString() => $"Tensor{Shape} on {Device.Spec}";

    public void Dispose()
    {
        var s = _storage;
        if (s is null) return;
        _storage = null;
        if (_owner) Device.Pool.Return(s);
    }
}
