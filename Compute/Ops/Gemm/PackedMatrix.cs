using System.Runtime.InteropServices;
using CrateIL.Compute.Cpu;
using CrateIL.Compute.Tensors;

namespace CrateIL.Compute.Ops;

/// <summary>
/// The B operand of a CPU GEMM laid out once in the micro-kernel's format (NR-column panels over the whole depth,
/// the last one zero-padded), for a B that many calls multiply unchanged: the weights of a frozen model. A call
/// given it (<see cref="Gemm.Batched(int, int, int, int, float, MatrixOperand, bool, MatrixOperand, bool, float, MatrixOperand, PackedMatrix?)"/>)
/// reads the panels instead of packing op(B) again; at batch 1 through CRATE-T the per-call packing of the
/// 384×384 weights was about 7 % of the step. It is a copy made by <see cref="Gemm.Pack"/>: it does not follow later
/// writes to its source, which is why the layers use one only while their parameters are frozen
/// (<c>ParameterStore.Freeze</c>). Made for the micro-kernel in use at the time; a call on another kernel (a test
/// that forces the 256-bit one) packs as usual.
/// </summary>
public sealed unsafe class PackedMatrix : IDisposable
{
    private float* _data;
    private readonly long _bytes;
    private readonly Tensor _source;

    internal PackedMatrix(Tensor source, long offset, int ld, bool transB, int k, int n, SgemmKernel kernel)
    {
        _source = source;
        Offset = offset;
        Ld = ld;
        TransB = transB;
        K = k;
        N = n;
        NR = kernel.NR;
        KernelName = kernel.Name;
        long panels = (n + NR - 1) / NR;
        _bytes = panels * PanelStride * sizeof(float);
        _data = (float*)NativeMemory.AlignedAlloc((nuint)_bytes, 64);
        // Native memory the GC cannot see: a copy dropped without Dispose is then finalized as its size warrants.
        GC.AddMemoryPressure(_bytes);
        SgemmPack.B(source.HostPointer + offset, ld, transB, 0, k, 0, n, NR, 0, (int)panels, _data);
    }

    /// <summary>Depth of op(B) (rows) and its width (columns).</summary>
    public int K { get; }
    public int N { get; }

    /// <summary>Whether B was read transposed (op(B) = Bᵀ, e.g. a Linear's weight [out, in]).</summary>
    public bool TransB { get; }

    /// <summary>The micro-kernel whose layout this is.</summary>
    public string KernelName { get; }

    internal long Offset { get; }
    internal int Ld { get; }
    internal int NR { get; }

    /// <summary>Floats per panel: the whole depth of NR columns.</summary>
    internal long PanelStride => (long)K * NR;

    internal float* Data => _data != null ? _data : throw new ObjectDisposedException(nameof(PackedMatrix));

    public bool IsDisposed => _data == null;

    /// <summary>Whether this is op(B) of a call with these operands (same storage, offset, leading dimension, transpose and size).</summary>
    internal bool Describes(Tensor b, long offset, int ld, bool transB, int k, int n) =>
        !b.IsDisposed && !_source.IsDisposed && ReferenceEquals(b.Storage, _source.Storage) && offset + b.Offset == Offset + _source.Offset
        && ld == Ld && transB == TransB && k == K && n == N;

    public void Dispose()
    {
        Free();
        GC.SuppressFinalize(this);
    }

    private void Free()
    {
        if (_data == null) return;
        NativeMemory.AlignedFree(_data);
        _data = null;
        GC.RemoveMemoryPressure(_bytes);
    }

    ~PackedMatrix() => Free();
}
