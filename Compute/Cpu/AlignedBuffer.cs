using System.Runtime.InteropServices;

namespace CrateIL.Compute.Cpu;

/// <summary>
/// A growable 64-byte aligned native float buffer for scratch space (packed GEMM panels). It only grows, so a
/// buffer kept per thread stops allocating after the first calls; the finalizer frees it when its owner goes away.
/// </summary>
internal sealed unsafe class AlignedBuffer
{
    private float* _ptr;
    private long _length;

    /// <summary>A pointer to at least <paramref name="length"/> floats (contents unspecified).</summary>
    public float* Ensure(long length)
    {
        if (length <= _length) return _ptr;
        Free();
        long grown = Math.Max(length, _length + _length / 2);
        _ptr = (float*)NativeMemory.AlignedAlloc((nuint)grown * sizeof(float), 64);
        _length = grown;
        return _ptr;
    }

    private void Free()
    {
        if (_ptr == null) return;
        NativeMemory.AlignedFree(_ptr);
        _ptr = null;
        _length = 0;
    }

    ~AlignedBuffer() => Free();
}
