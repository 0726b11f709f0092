using System.Collections.Concurrent;
using CrateIL.Compute.Tensors;
using ILGPU.Runtime;

namespace CrateIL.Compute.Devices;

/// <summary>
/// A device driven through ILGPU: CUDA, OpenCL, or ILGPU's CPU accelerator (the test simulator).
/// ILGPU types stay internal; kernels are compiled once per accelerator and cached here.
/// </summary>
public sealed class IlgpuDevice : Device
{
    private readonly ConcurrentDictionary<Type, object> _kernelSets = new();

    internal IlgpuDevice(DeviceInfo info, Accelerator accelerator) : base(info)
    {
        Accelerator = accelerator;
        // Row-reduction kernels use one group per row with a shared-memory tree; on the CPU simulator each
        // group thread is an OS thread, so small groups keep tests fast.
        RowGroupSize = info.Kind == DeviceKind.IlgpuCpu ? 16 : 256;
    }

    internal Accelerator Accelerator { get; }

    /// <summary>Threads per group for one-row-per-group reductions (a power of two ≤ 256).</summary>
    internal int RowGroupSize { get; }

    /// <summary>Largest group this device accepts.</summary>
    public int MaxThreadsPerGroup => Accelerator.MaxNumThreadsPerGroup;

    /// <summary>
    /// The kernel set of type <typeparamref name="T"/> for this accelerator, compiled on first use and cached
    /// (kernels load once per accelerator).
    /// </summary>
    internal T Kernels<T>() where T : class, IKernelSet<T>
    {
        if (_kernelSets.TryGetValue(typeof(T), out var cached)) return (T)cached;
        return (T)_kernelSets.GetOrAdd(typeof(T), _ => T.Load(Accelerator));
    }

    internal override Storage AllocateStorage(long length) => new IlgpuStorage(Accelerator, length);

    public override void Synchronize() => Accelerator.Synchronize();

    protected override void DisposeCore()
    {
        _kernelSets.Clear();
        Accelerator.Dispose();
    }
}

/// <summary>A group of related ILGPU kernels loaded together for one accelerator.</summary>
internal interface IKernelSet<TSelf> where TSelf : class
{
    static abstract TSelf Load(Accelerator accelerator);
}
