using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;

namespace CrateIL.Compute.Ops;

/// <summary>
/// One operand of a (batched, strided) GEMM: a tensor plus the element offset of the first matrix, its leading
/// dimension (row stride; default: the row length implied by the shape and transpose) and the element stride
/// between consecutive matrices of a batch (0 = the same matrix for every batch entry).
/// </summary>
public readonly record struct MatrixOperand(Tensor Tensor, long Offset = 0, int Ld = 0, long BatchStride = 0)
{
    public static implicit operator MatrixOperand(Tensor t) => new(t);
}

/// <summary>The resolved arguments of one GEMM call; all strides explicit. Internal to the backends.</summary>
internal readonly record struct GemmArgs(
    int Batch, int M, int N, int K,
    float Alpha, bool TransA, bool TransB, float Beta,
    long OffsetA, int Lda, long StrideA,
    long OffsetB, int Ldb, long StrideB,
    long OffsetC, int Ldc, long StrideC)
{
    /// <summary>Element (row, col) of op(A) for batch b, as an index into A's storage.</summary>
    public long IndexA(int b, int row, int col) => OffsetA + b * StrideA + (TransA ? (long)col * Lda + row : (long)row * Lda + col);
    public long IndexB(int b, int row, int col) => OffsetB + b * StrideB + (TransB ? (long)col * Ldb + row : (long)row * Ldb + col);
    public long IndexC(int b, int row, int col) => OffsetC + b * StrideC + (long)row * Ldc + col;

    public double Flops => 2.0 * Batch * M * N * K;
}

/// <summary>
/// General matrix multiply, row-major: C[b] = α·op(A[b])·op(B[b]) + β·C[b], op ∈ {N, T}, for b in [0, batch).
/// Dispatches once at entry to the CPU SIMD path or the ILGPU kernel of the tensors' device.
/// When β = 0, C is not read (NaN in C does not propagate), as in BLAS.
/// </summary>
public static class Gemm
{
    /// <summary>C = α·op(A)·op(B) + β·C for 2-D tensors, or per batch for 3-D tensors [batch, rows, cols].</summary>
    public static void MatMul(Tensor a, Tensor b, Tensor c, bool transA = false, bool transB = false, float alpha = 1f, float beta = 0f)
    {
        if (a.Rank != b.Rank || a.Rank != c.Rank || a.Rank is < 2 or > 3)
            throw new ArgumentException($"MatMul takes three 2-D or three 3-D tensors, got A{a.Shape}, B{b.Shape}, C{c.Shape}");
        int batch = a.Rank == 3 ? a.Shape[0] : 1;
        if (a.Rank == 3 && (b.Shape[0] != batch || c.Shape[0] != batch))
            throw new ArgumentException($"Batch sizes differ: A{a.Shape}, B{b.Shape}, C{c.Shape}");
        int ar = a.Shape[-2], ac = a.Shape[-1], br = b.Shape[-2], bc = b.Shape[-1];
        int m = transA ? ac : ar, k = transA ? ar : ac;
        int kb = transB ? bc : br, n = transB ? br : bc;
        if (k != kb) throw new ArgumentException($"Inner dimensions differ: op(A) is {m}×{k}, op(B) is {kb}×{n} (A{a.Shape}, B{b.Shape}, transA={transA}, transB={transB})");
        if (c.Shape[-2] != m || c.Shape[-1] != n) throw new ArgumentException($"C{c.Shape} must be {m}×{n}");
        Batched(batch, m, n, k, alpha,
            new MatrixOperand(a, 0, ac, (long)ar * ac), transA,
            new MatrixOperand(b, 0, bc, (long)br * bc), transB,
            beta, new MatrixOperand(c, 0, n, (long)m * n));
    }

    /// <summary>Batched, strided GEMM (e.g. per-head attention over column slices of a [N, heads·d] matrix).</summary>
    public static void Batched(int batch, int m, int n, int k, float alpha,
        MatrixOperand a, bool transA, MatrixOperand b, bool transB, float beta, MatrixOperand c) =>
        Batched(batch, m, n, k, alpha, a, transA, b, transB, beta, c, null);

    /// <summary>
    /// The same, with op(B) already packed by <see cref="Pack"/> from exactly this <paramref name="b"/> (one matrix for
    /// the whole batch); the CPU path then reads the packed panels instead of packing op(B). <paramref name="packedB"/>
    /// may be null (no packed copy: the plain call), and other devices ignore it.
    /// </summary>
    public static void Batched(int batch, int m, int n, int k, float alpha,
        MatrixOperand a, bool transA, MatrixOperand b, bool transB, float beta, MatrixOperand c, PackedMatrix? packedB)
    {
        var args = Resolve(batch, m, n, k, alpha, a, transA, b, transB, beta, c);
        if (batch == 0 || m == 0 || n == 0) return;
        var device = c.Tensor.Device;
        if (a.Tensor.Device != device || b.Tensor.Device != device)
            throw new ArgumentException($"GEMM operands live on different devices: A on {a.Tensor.Device.Spec}, B on {b.Tensor.Device.Spec}, C on {device.Spec}");
        if (packedB is not null)
        {
            if (packedB.IsDisposed) throw new ObjectDisposedException(nameof(packedB), "GEMM: the packed B was disposed");
            if (!packedB.Describes(b.Tensor, b.Offset, args.Ldb, transB, k, n) || (batch > 1 && b.BatchStride != 0))
                throw new ArgumentException($"GEMM: the packed B ({packedB.K}×{packedB.N}, transB={packedB.TransB}) was not packed from this op(B) " +
                    $"({k}×{n}, transB={transB}, offset {b.Offset}, ld {args.Ldb}, batch stride {b.BatchStride})", nameof(packedB));
        }
        switch (device)
        {
            case CpuDevice cpu:
                GemmCpu.Run(cpu, a.Tensor, b.Tensor, c.Tensor, args, packedB);
                // The GEMM reads the packed copy through a raw pointer: its finalizer must not run before the call ends.
                GC.KeepAlive(packedB);
                break;
            case IlgpuDevice gpu:
                GemmIlgpu.Run(gpu, a.Tensor, b.Tensor, c.Tensor, args);
                break;
            default:
                throw new NotSupportedException($"No GEMM for device {device.Spec}");
        }
    }

    /// <summary>
    /// op(B) of later calls packed once into the CPU micro-kernel's layout (<see cref="PackedMatrix"/>), for a B that
    /// stays unchanged while the copy is used; null on devices whose kernels read B in place. op(B) is
    /// <paramref name="k"/>×<paramref name="n"/>, read as in <see cref="Batched(int, int, int, int, float, MatrixOperand, bool, MatrixOperand, bool, float, MatrixOperand)"/>.
    /// </summary>
    public static PackedMatrix? Pack(MatrixOperand b, bool transB, int k, int n)
    {
        ArgumentNullException.ThrowIfNull(b.Tensor);
        if (k < 1 || n < 1) throw new ArgumentException($"GEMM Pack: op(B) must be at least 1×1, got {k}×{n}");
        int ldb = LeadingDimension("b", "B", b.Ld, transB ? k : n);
        var args = new GemmArgs(1, 1, n, k, 1f, false, transB, 0f, 0, k, 0, b.Offset, ldb, 0, 0, n, 0);
        CheckExtent("B", b.Tensor, args.IndexB(0, k - 1, n - 1) + 1, b.Offset);
        if (b.Tensor.Device is not CpuDevice) return null;
        return new PackedMatrix(b.Tensor, b.Offset, ldb, transB, k, n, GemmCpu.Kernel);
    }

    internal static GemmArgs Resolve(int batch, int m, int n, int k, float alpha,
        MatrixOperand a, bool transA, MatrixOperand b, bool transB, float beta, MatrixOperand c)
    {
        if (batch < 0 || m < 0 || n < 0 || k < 0) throw new ArgumentException($"Negative GEMM size: batch={batch} m={m} n={n} k={k}");
        int lda = LeadingDimension("a", "A", a.Ld, transA ? m : k);
        int ldb = LeadingDimension("b", "B", b.Ld, transB ? k : n);
        int ldc = LeadingDimension("c", "C", c.Ld, n);
        var args = new GemmArgs(batch, m, n, k, alpha, transA, transB, beta,
            a.Offset, lda, a.BatchStride, b.Offset, ldb, b.BatchStride, c.Offset, ldc, c.BatchStride);
        if (batch > 0 && m > 0 && n > 0)
        {
            if (k > 0)
            {
                CheckExtent("A", a.Tensor, args.IndexA(batch - 1, m - 1, k - 1) + 1, a.Offset);
                CheckExtent("B", b.Tensor, args.IndexB(batch - 1, k - 1, n - 1) + 1, b.Offset);
            }
            CheckExtent("C", c.Tensor, args.IndexC(batch - 1, m - 1, n - 1) + 1, c.Offset);
            // Batch entries of C must not overlap: either stacked matrices, or side-by-side column slices of one
            // wider matrix (per-head outputs written into [N, heads·d] with ldc = heads·d, stride d).
            bool stacked = c.BatchStride >= (long)(m - 1) * ldc + n;
            bool sideBySide = m == 1 ? c.BatchStride >= n : c.BatchStride >= n && (batch - 1) * c.BatchStride + n <= ldc;
            if (batch > 1 && !stacked && !sideBySide)
                throw new ArgumentException($"C batch stride {c.BatchStride} makes batch entries overlap (m={m}, n={n}, ldc={ldc}, batch={batch})");
        }
        return args;
    }

    /// <summary>An operand's leading dimension: its own, or the stored row length (0 = default), never shorter than a row.</summary>
    private static int LeadingDimension(string lower, string name, int ld, int rowLength)
    {
        int resolved = ld > 0 ? ld : rowLength;
        if (resolved < rowLength) throw new ArgumentException($"ld{lower}={resolved} is smaller than a row of {name} ({rowLength})");
        return resolved;
    }

    private static void CheckExtent(string name, Tensor t, long end, long offset)
    {
        if (offset < 0 || end > t.Length)
            throw new ArgumentException($"GEMM operand {name} reaches element {end - 1} but tensor {t.Shape} has {t.Length} elements");
    }
}
