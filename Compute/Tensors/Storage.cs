using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;

namespace CrateIL.Compute.Tensors;

/// <summary>Raw float32 memory on one device. Internal: tensors are the public face.</summary>
internal abstract class Storage : IDisposable
{
    protected Storage(long length) => Length = length;
    public long Length { get; }
    public abstract void Dispose();
}

/// <summary>64-byte aligned native host memory, so SIMD loads never split cache lines at row starts.</summary>
internal sealed unsafe class HostStorage : Storage
{
    private float* _ptr;

    public HostStorage(long length) : base(length)
    {
        _ptr = (float*)NativeMemory.AlignedAlloc((nuint)Math.Max(1, length) * sizeof(float), 64);
    }

    public float* Pointer => _ptr != null ? _ptr : throw new ObjectDisposedException(nameof(HostStorage));

    public Span<float> Span(long offset, int length)
    {
        if ((ulong)offset + (ulong)length > (ulong)Length) throw new ArgumentOutOfRangeException(nameof(length));
        return new Span<float>(Pointer + offset, length);
    }

    public override void Dispose()
    {
        if (_ptr == null) return;
        NativeMemory.AlignedFree(_ptr);
        _ptr = null;
        GC.SuppressFinalize(this);
    }

    ~HostStorage() => Dispose();
}

/// <summary>A dense ILGPU buffer on an accelerator.</summary>
internal sealed class IlgpuStorage : Storage
{
    private MemoryBuffer1D<float, Stride1D.Dense>? _buffer;

    public IlgpuStorage(Accelerator accelerator, long length) : base(length)
    {
        Accelerator = accelerator;
        _buffer = accelerator.Allocate1D<float>(Math.Max(1, length));
    }

    public Accelerator Accelerator { get; }

    public ArrayView<float> View => (_buffer ?? throw new ObjectDisposedException(nameof(IlgpuStorage))).View.SubView(0, Length);

    public override void Dispose()
    {
        _buffer?.Dispose();
        _buffer = null;
    }
}
