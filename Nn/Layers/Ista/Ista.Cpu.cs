using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using CrateIL.Compute.Cpu;
using CrateIL.Compute.Devices;
using CrateIL.Compute.Ops;
using Tensor = CrateIL.Compute.Tensors.Tensor;

namespace CrateIL.Nn.Layers;

/// <summary>
/// The ISTA elementwise pieces on the CPU: Vector256 loops split across the device's threads by
/// <see cref="CpuParallel"/> (struct kernels: nothing is allocated per call).
/// </summary>
internal readonly unsafe struct IstaCpu(CpuDevice device) : IIstaBackend
{
    /// <summary>Rows of a d×d matrix per thread below which one thread does all of them.</summary>
    private const int MatrixRowGrain = 64;

    public void Epilogue(Tensor z, Tensor g, Tensor y, int n, float eta, float threshold, ThresholdKind kind)
    {
        float* pz = z.HostPointer, pg = g.HostPointer, py = y.HostPointer;
        if (kind == ThresholdKind.OneSided)
            CpuParallel.For(device, n, CpuParallel.ElementGrain, new EpilogueKernel<SoftThresholdOp>(pz, pg, py, eta, new SoftThresholdOp(threshold)), align: 16);
        else
            CpuParallel.For(device, n, CpuParallel.ElementGrain, new EpilogueKernel<SymmetricSoftThresholdOp>(pz, pg, py, eta, new SymmetricSoftThresholdOp(threshold)), align: 16);
    }

    public void MaskAndCopy(Tensor dy, Tensor p, Tensor dpre, Tensor copy, int n, float threshold, ThresholdKind kind)
    {
        float* pdy = dy.HostPointer, pp = p.HostPointer, pd = dpre.HostPointer, pc = copy.HostPointer;
        if (kind == ThresholdKind.OneSided)
            CpuParallel.For(device, n, CpuParallel.ElementGrain, new MaskKernel<SoftThresholdGradOp>(pdy, pp, pd, pc, new SoftThresholdGradOp(threshold)), align: 16);
        else
            CpuParallel.For(device, n, CpuParallel.ElementGrain, new MaskKernel<SymmetricSoftThresholdGradOp>(pdy, pp, pd, pc, new SymmetricSoftThresholdGradOp(threshold)), align: 16);
    }

    public void Symmetrize(Tensor g, Tensor h, Tensor dw, int dim, float eta)
    {
        int blocks = (dim + SymmetrizeKernel.Block - 1) / SymmetrizeKernel.Block;
        CpuParallel.For(device, blocks, Math.Max(1, MatrixRowGrain / SymmetrizeKernel.Block),
            new SymmetrizeKernel(g.HostPointer, h.HostPointer, dw.HostPointer, dim, eta));
    }

    /// <summary>
    /// Whether two host tensors of one length hold the same bits (a memcmp, so −0 ≠ 0 and NaN payloads count), split
    /// over the team: at batch 1 the check of a 384×384 dictionary is a tenth of the ISTA block, all of it memory reads.
    /// </summary>
    public static bool SameBits(CpuDevice device, Tensor a, Tensor b)
    {
        if (a.Length != b.Length) return false;
        int differs = 0;
        CpuParallel.For(device, checked((int)a.Length), CpuParallel.ElementGrain, new SameBitsKernel(a.HostPointer, b.HostPointer, &differs), align: 16);
        return differs == 0;
    }

    private readonly struct SameBitsKernel(float* a, float* b, int* differs) : IRangeKernel
    {
        public void Execute(int start, int count)
        {
            var x = new ReadOnlySpan<byte>(a + start, count * sizeof(float));
            if (!x.SequenceEqual(new ReadOnlySpan<byte>(b + start, count * sizeof(float)))) Volatile.Write(ref *differs, 1);
        }
    }

    public void AddScaled(Tensor a, Tensor b, Tensor o, int n, float eta) =>
        ElementwiseDriver.Binary(device, a.HostPointer, b.HostPointer, o.HostPointer, n, new AddScaledOp(eta));

    /// <summary>p = z + η·g written over g, y = S_t(p): one pass that reads z and g and writes p and y.</summary>
    private readonly struct EpilogueKernel<TOp>(float* z, float* g, float* y, float eta, TOp threshold) : IRangeKernel
        where TOp : struct, IUnaryOperator
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Execute(int start, int count)
        {
            float* pz = z + start, pg = g + start, py = y + start;
            int i = 0;
            if (Vector256.IsHardwareAccelerated)
            {
                var e = Vector256.Create(eta);
                int step = Vector256<float>.Count;
                for (; i <= count - 2 * step; i += 2 * step)
                {
                    var p0 = Vector256.FusedMultiplyAdd(Vector256.Load(pg + i), e, Vector256.Load(pz + i));
                    var p1 = Vector256.FusedMultiplyAdd(Vector256.Load(pg + i + step), e, Vector256.Load(pz + i + step));
                    Vector256.Store(p0, pg + i);
                    Vector256.Store(p1, pg + i + step);
                    Vector256.Store(threshold.Invoke(p0), py + i);
                    Vector256.Store(threshold.Invoke(p1), py + i + step);
                }
                for (; i <= count - step; i += step)
                {
                    var p = Vector256.FusedMultiplyAdd(Vector256.Load(pg + i), e, Vector256.Load(pz + i));
                    Vector256.Store(p, pg + i);
                    Vector256.Store(threshold.Invoke(p), py + i);
                }
            }
            for (; i < count; i++)
            {
                float p = MathF.FusedMultiplyAdd(pg[i], eta, pz[i]);
                pg[i] = p;
                py[i] = threshold.Invoke(p);
            }
        }
    }

    /// <summary>dpre = dy ⊙ S'(p) into two buffers (dy may be either of them: each element is read before it is written).</summary>
    private readonly struct MaskKernel<TOp>(float* dy, float* p, float* dpre, float* copy, TOp grad) : IRangeKernel
        where TOp : struct, IBinaryOperator
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Execute(int start, int count)
        {
            float* pdy = dy + start, pp = p + start, pd = dpre + start, pc = copy + start;
            int i = 0;
            if (Vector256.IsHardwareAccelerated)
            {
                int step = Vector256<float>.Count;
                for (; i <= count - 2 * step; i += 2 * step)
                {
                    var d0 = grad.Invoke(Vector256.Load(pdy + i), Vector256.Load(pp + i));
                    var d1 = grad.Invoke(Vector256.Load(pdy + i + step), Vector256.Load(pp + i + step));
                    Vector256.Store(d0, pd + i);
                    Vector256.Store(d1, pd + i + step);
                    Vector256.Store(d0, pc + i);
                    Vector256.Store(d1, pc + i + step);
                }
                for (; i <= count - step; i += step)
                {
                    var d = grad.Invoke(Vector256.Load(pdy + i), Vector256.Load(pp + i));
                    Vector256.Store(d, pd + i);
                    Vector256.Store(d, pc + i);
                }
            }
            for (; i < count; i++)
            {
                float d = grad.Invoke(pdy[i], pp[i]);
                pd[i] = d;
                pc[i] = d;
            }
        }
    }

    /// <summary>
    /// h = g + gᵀ and dw += η·g over row blocks [start, start + count) of <see cref="Block"/> rows. Within a
    /// block the transposed reads walk <see cref="Block"/> × <see cref="Block"/> tiles, which stay in L1.
    /// </summary>
    private readonly struct SymmetrizeKernel(float* g, float* h, float* dw, int dim, float eta) : IRangeKernel
    {
        public const int Block = 32;

        public void Execute(int start, int count)
        {
            int r0 = start * Block, r1 = Math.Min(dim, (start + count) * Block);
            for (int rb = r0; rb < r1; rb += Block)
            {
                int re = Math.Min(r1, rb + Block);
                for (int r = rb; r < re; r++)
                {
                    long o = (long)r * dim;
                    var gr = new ReadOnlySpan<float>(g + o, dim);
                    var dr = new Span<float>(dw + o, dim);
                    TensorPrimitives.MultiplyAdd(gr, eta, dr, dr);
                }
                for (int cb = 0; cb < dim; cb += Block)
                {
                    int ce = Math.Min(dim, cb + Block);
                    for (int r = rb; r < re; r++)
                    {
                        float* hr = h + (long)r * dim, gr = g + (long)r * dim;
                        for (int c = cb; c < ce; c++) hr[c] = gr[c] + g[(long)c * dim + r];
                    }
                }
            }
        }
    }

    private readonly struct AddScaledOp(float eta) : IBinaryOperator
    {
        public float Invoke(float a, float b) => MathF.FusedMultiplyAdd(b, eta, a);
        public Vector256<float> Invoke(Vector256<float> a, Vector256<float> b) => Vector256.FusedMultiplyAdd(b, Vector256.Create(eta), a);
    }
}
