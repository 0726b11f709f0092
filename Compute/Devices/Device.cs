using CrateIL.Compute.Tensors;

namespace CrateIL.Compute.Devices;

/// <summary>
/// A place where tensors live and ops run. Obtain one from <see cref="DeviceRegistry"/>.
/// Each device owns a buffer pool so steady-state training and inference reuse memory.
/// </summary>
public abstract class Device : IDisposable
{
    private bool _disposed;

    protected Device(DeviceInfo info)
    {
        Info = info;
        Pool = new BufferPool(this);
    }

    public DeviceInfo Info { get; }
    public DeviceKind Kind => Info.Kind;
    public string Name => Info.Name;
    public string Spec => Info.Spec;

    /// <summary>Recycles storage of disposed tensors by exact length.</summary>
    public BufferPool Pool { get; }

    /// <summary>True for the host SIMD path, where tensors are directly addressable spans.</summary>
    public bool IsHost => Kind == DeviceKind.Cpu;

    internal abstract Storage AllocateStorage(long length);

    /// <summary>Waits until all queued work on this device has finished.</summary>
    public abstract void Synchronize();

    /// <summary>A new tensor with uninitialised contents (pooled).</summary>
    public Tensor Allocate(params int[] shape) => Tensor.Empty(this, new TensorShape(shape));

    /// <summary>A new zero-filled tensor (pooled).</summary>
    public Tensor Zeros(params int[] shape) => Tensor.Zeros(this, new TensorShape(shape));

    /// <summary>Copies host data into a new tensor of the given shape.</summary>
    public Tensor FromHost(ReadOnlySpan<float> data, params int[] shape) => Tensor.FromHost(this, data, new TensorShape(shape));

    public override string ToString() => Info.ToString();

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Pool.Clear();
        DisposeCore();
        GC.SuppressFinalize(this);
    }

    protected virtual void DisposeCore() { }
}
