using CrateIL.Compute.Devices;
using CrateIL.Compute.Ilgpu;
using CrateIL.Compute.Tensors;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace CrateIL.Nn.Layers;

/// <summary>
/// Attention on ILGPU devices as flash-style fused kernels: no N×N matrix exists at any size.
/// Forward: one group per (query tile, batch entry, head); key/value tiles stream through shared memory, scores are
/// formed tile by tile with an online softmax (running row max and sum, the accumulated output rescaled), and the
/// per-row log-sum-exp is saved. Backward: D_i = rowsum(dO_i ⊙ O_i), then one kernel over query tiles (dQ) and one
/// over key tiles (dK and dV), both recomputing the probabilities tile by tile from the saved log-sum-exp. With
/// Q = K = V (MSSA) the key-tile kernel adds dK + dV into the dQ the first kernel wrote: dw without atomics.
/// Shared-memory trees and barriers only (no atomics, no collectives), under 48 KB of shared memory per group.
/// </summary>
internal sealed class AttentionIlgpu : IDisposable
{
    /// <summary>Largest head dimension the kernels hold in shared memory.</summary>
    public const int MaxHeadDim = 128;

    private readonly IlgpuDevice _device;
    private readonly int _heads, _dh;
    private readonly float _scale;
    private Tensor? _lse, _delta;   // [batch·heads·n] each

    public AttentionIlgpu(IlgpuDevice device, int heads, int dh, float scale)
    {
        _device = device;
        _heads = heads;
        _dh = dh;
        _scale = scale;
    }

    /// <summary>Threads per group: small on the CPU simulator (each thread is an OS thread there).</summary>
    private int GroupSize => Math.Min(_device.Kind == DeviceKind.IlgpuCpu ? 16 : 128, _device.MaxThreadsPerGroup);

    private AttentionArgs Args(int batch, int n, HeadColumns q, HeadColumns k, HeadColumns v, HeadColumns o, int mode = 0) =>
        new(batch, n, _heads, _dh, _scale, mode,
            q.Offset, q.Ld, k.Offset, k.Ld, v.Offset, v.Ld, o.Offset, o.Ld);

    public void Forward(int batch, int n, HeadColumns q, HeadColumns k, HeadColumns v, HeadColumns o)
    {
        int rows = batch * _heads * n;
        if (_lse is null || _lse.Length != rows)
        {
            _lse?.Dispose();
            _delta?.Dispose();
            _lse = _device.Allocate(rows);
            _delta = _device.Allocate(rows);
        }
        var kernels = _device.Kernels<AttentionKernels>();
        int tiles = (n + AttentionKernels.Tile - 1) / AttentionKernels.Tile;
        kernels.Forward(new KernelConfig(tiles * batch * _heads, GroupSize),
            q.Tensor.View, k.Tensor.View, v.Tensor.View, o.Tensor.View, _lse.View, Args(batch, n, q, k, v, o));
    }

    public void Backward(int batch, int n, HeadColumns q, HeadColumns k, HeadColumns v, HeadColumns o, HeadColumns dO,
        HeadColumns dq, HeadColumns dk, HeadColumns dv)
    {
        var kernels = Delta(batch, n, o, dO);
        var args = Args(batch, n, q, k, v, o);
        var grads = new GradientArgs(dO.Offset, dO.Ld, dq.Offset, dq.Ld, dk.Offset, dk.Ld, dv.Offset, dv.Ld);
        int qTiles = (n + AttentionKernels.Tile - 1) / AttentionKernels.Tile;
        kernels.QueryGrad(new KernelConfig(qTiles * batch * _heads, GroupSize),
            q.Tensor.View, k.Tensor.View, v.Tensor.View, dO.Tensor.View, _lse!.View, _delta!.View, dq.Tensor.View, args, grads);
        kernels.KeyValueGrad(new KernelConfig(qTiles * batch * _heads, GroupSize),
            q.Tensor.View, k.Tensor.View, v.Tensor.View, dO.Tensor.View, _lse.View, _delta.View, dk.Tensor.View, dv.Tensor.View, args, grads);
    }

    public void BackwardShared(int batch, int n, HeadColumns w, HeadColumns o, HeadColumns dO, HeadColumns dw)
    {
        var kernels = Delta(batch, n, o, dO);
        var args = Args(batch, n, w, w, w, o, mode: 1);
        var grads = new GradientArgs(dO.Offset, dO.Ld, dw.Offset, dw.Ld, dw.Offset, dw.Ld, dw.Offset, dw.Ld);
        int tiles = (n + AttentionKernels.Tile - 1) / AttentionKernels.Tile;
        // dQ first (assigned), then the key-tile kernel adds dK + dV into the same rows: ordered on the stream.
        kernels.QueryGrad(new KernelConfig(tiles * batch * _heads, GroupSize),
            w.Tensor.View, w.Tensor.View, w.Tensor.View, dO.Tensor.View, _lse!.View, _delta!.View, dw.Tensor.View, args, grads);
        kernels.KeyValueGrad(new KernelConfig(tiles * batch * _heads, GroupSize),
            w.Tensor.View, w.Tensor.View, w.Tensor.View, dO.Tensor.View, _lse.View, _delta.View, dw.Tensor.View, dw.Tensor.View, args, grads);
    }

    private AttentionKernels Delta(int batch, int n, HeadColumns o, HeadColumns dO)
    {
        var kernels = _device.Kernels<AttentionKernels>();
        int rows = batch * _heads * n;
        int groups = Math.Max(1, Math.Min((rows + GroupSize - 1) / GroupSize, 4096));
        kernels.RowDot(new KernelConfig(groups, GroupSize), o.Tensor.View, dO.Tensor.View, _delta!.View,
            new RowDotArgs(rows, n, _heads, _dh, o.Offset, o.Ld, dO.Offset, dO.Ld));
        return kernels;
    }

    public void Dispose()
    {
        _lse?.Dispose();
        _delta?.Dispose();
        _lse = _delta = null;
    }
}

/// <summary>Shapes and column layouts of one attention call (one struct: ILGPU kernels take few parameters).</summary>
internal readonly struct AttentionArgs(int batch, int n, int heads, int dh, float scale, int mode,
    int qOff, int qLd, int kOff, int kLd, int vOff, int vLd, int oOff, int oLd)
{
    public readonly int Batch = batch, N = n, Heads = heads, Dh = dh;
    public readonly float Scale = scale;

    /// <summary>0: dK and dV assigned to their own outputs; 1: dK + dV added into one output (Q = K = V).</summary>
    public readonly int Mode = mode;
    public readonly int QOff = qOff, QLd = qLd, KOff = kOff, KLd = kLd, VOff = vOff, VLd = vLd, OOff = oOff, OLd = oLd;
}

/// <summary>Column layouts of the gradients: upstream dO and the outputs dQ, dK, dV.</summary>
internal readonly struct GradientArgs(int dOOff, int dOLd, int dqOff, int dqLd, int dkOff, int dkLd, int dvOff, int dvLd)
{
    public readonly int DOOff = dOOff, DOLd = dOLd, DqOff = dqOff, DqLd = dqLd, DkOff = dkOff, DkLd = dkLd, DvOff = dvOff, DvLd = dvLd;
}

internal readonly struct RowDotArgs(int rows, int n, int heads, int dh, int oOff, int oLd, int dOOff, int dOLd)
{
    public readonly int Rows = rows, N = n, Heads = heads, Dh = dh, OOff = oOff, OLd = oLd, DOOff = dOOff, DOLd = dOLd;
}

internal sealed class AttentionKernels : IKernelSet<AttentionKernels>
{
    /// <summary>Query and key rows per tile (forward and dQ); the dK/dV kernel walks queries in half tiles.</summary>
    public const int Tile = 16;
    public const int HalfTile = Tile / 2;

    /// <summary>Row stride of a head-dimension tile in shared memory: one float of padding against bank conflicts.</summary>
    private const int Stride = AttentionIlgpu.MaxHeadDim + 1;
    private const int TileFloats = Tile * Stride;
    private const int HalfTileFloats = HalfTile * Stride;

    public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionArgs> Forward;
    public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionArgs, GradientArgs> QueryGrad;
    public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionArgs, GradientArgs> KeyValueGrad;
    public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, RowDotArgs> RowDot;

    private AttentionKernels(Accelerator a)
    {
        Forward = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionArgs>(ForwardKernel);
        QueryGrad = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionArgs, GradientArgs>(QueryGradKernel);
        KeyValueGrad = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionArgs, GradientArgs>(KeyValueGradKernel);
        RowDot = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, RowDotArgs>(RowDotKernel);
    }

    public static AttentionKernels Load(Accelerator accelerator) => new(accelerator);

    /// <summary>
    /// Group = (query tile, batch entry, head). Shared: the query tile (pre-scaled), one key and one value tile, the
    /// output accumulator, the score tile and per-row running max / sum / rescale factor.
    /// </summary>
    [IlgpuKernel(Grouping.Explicit)]
    internal static void ForwardKernel(ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> o,
        ArrayView<float> lse, AttentionArgs a)
    {
        var qs = SharedMemory.Allocate<float>(TileFloats);
        var ks = SharedMemory.Allocate<float>(TileFloats);
        var vs = SharedMemory.Allocate<float>(TileFloats);
        var acc = SharedMemory.Allocate<float>(TileFloats);
        var s = SharedMemory.Allocate<float>(Tile * Tile);
        var rowMax = SharedMemory.Allocate<float>(Tile);
        var rowSum = SharedMemory.Allocate<float>(Tile);
        var rowScale = SharedMemory.Allocate<float>(Tile);

        int tid = Group.IdxX, step = Group.DimX;
        int n = a.N, dh = a.Dh;
        int tiles = (n + Tile - 1) / Tile;
        int bh = Grid.IdxX / tiles, i0 = Grid.IdxX % tiles * Tile;
        int b = bh / a.Heads, h = bh % a.Heads;
        int rowsHere = XMath.Min(Tile, n - i0);
        int firstRow = b * n;

        for (int e = tid; e < Tile * dh; e += step)
        {
            int r = e / dh, c = e % dh;
            qs[r * Stride + c] = r < rowsHere ? a.Scale * q[(firstRow + i0 + r) * a.QLd + a.QOff + h * dh + c] : 0f;
            acc[r * Stride + c] = 0f;
        }
        for (int r = tid; r < Tile; r += step)
        {
            rowMax[r] = float.NegativeInfinity;
            rowSum[r] = 0f;
        }
        Group.Barrier();

        for (int j0 = 0; j0 < n; j0 += Tile)
        {
            int colsHere = XMath.Min(Tile, n - j0);
            for (int e = tid; e < Tile * dh; e += step)
            {
                int r = e / dh, c = e % dh;
                bool valid = r < colsHere;
                int row = firstRow + j0 + r;
                ks[r * Stride + c] = valid ? k[row * a.KLd + a.KOff + h * dh + c] : 0f;
                vs[r * Stride + c] = valid ? v[row * a.VLd + a.VOff + h * dh + c] : 0f;
            }
            Group.Barrier();

            for (int e = tid; e < Tile * Tile; e += step)
            {
                int r = e / Tile, c = e % Tile;
                float dot = 0f;
                for (int d = 0; d < dh; d++) dot += qs[r * Stride + d] * ks[c * Stride + d];
                s[e] = dot;
            }
            Group.Barrier();

            // Online softmax: one thread per row updates its running max and sum and leaves exp(s − max) in s.
            for (int r = tid; r < Tile; r += step)
            {
                float old = rowMax[r], max = old;
                for (int c = 0; c < colsHere; c++) max = XMath.Max(max, s[r * Tile + c]);
                float sum = 0f;
                for (int c = 0; c < Tile; c++)
                {
                    float p = c < colsHere ? XMath.Exp(s[r * Tile + c] - max) : 0f;
                    s[r * Tile + c] = p;
                    sum += p;
                }
                float rescale = XMath.Exp(old - max);
                rowScale[r] = rescale;
                rowSum[r] = rowSum[r] * rescale + sum;
                rowMax[r] = max;
            }
            Group.Barrier();

            for (int e = tid; e < Tile * dh; e += step)
            {
                int r = e / dh, c = e % dh;
                float value = acc[r * Stride + c] * rowScale[r];
                for (int j = 0; j < Tile; j++) value += s[r * Tile + j] * vs[j * Stride + c];
                acc[r * Stride + c] = value;
            }
            Group.Barrier();
        }

        for (int e = tid; e < Tile * dh; e += step)
        {
            int r = e / dh, c = e % dh;
            if (r < rowsHere) o[(firstRow + i0 + r) * a.OLd + a.OOff + h * dh + c] = acc[r * Stride + c] / rowSum[r];
        }
        for (int r = tid; r < rowsHere; r += step)
            lse[bh * n + i0 + r] = rowMax[r] + XMath.Log(rowSum[r]);
    }

    /// <summary>D = rowsum(dO ⊙ O) per (batch entry, head, token), grid-stride over those rows.</summary>
    [IlgpuKernel(Grouping.Explicit)]
    internal static void RowDotKernel(ArrayView<float> o, ArrayView<float> dO, ArrayView<float> delta, RowDotArgs a)
    {
        int stride = Grid.DimX * Group.DimX;
        for (int row = Grid.GlobalIndex.X; row < a.Rows; row += stride)
        {
            int bh = row / a.N, t = row % a.N;
            int b = bh / a.Heads, h = bh % a.Heads;
            int token = b * a.N + t;
            float sum = 0f;
            for (int c = 0; c < a.Dh; c++)
                sum += o[token * a.OLd + a.OOff + h * a.Dh + c] * dO[token * a.DOLd + a.DOOff + h * a.Dh + c];
            delta[row] = sum;
        }
    }

    /// <summary>
    /// Group = (query tile, batch entry, head): dQ_i = scale·Σ_j dS_ij·K_j with P_ij = exp(scale·Q_i·K_j − lse_i),
    /// dS_ij = P_ij·(dO_i·V_j − D_i), over all key tiles. dQ is assigned.
    /// </summary>
    [IlgpuKernel(Grouping.Explicit)]
    internal static void QueryGradKernel(ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> dO,
        ArrayView<float> lse, ArrayView<float> delta, ArrayView<float> dq, AttentionArgs a, GradientArgs g)
    {
        var qs = SharedMemory.Allocate<float>(TileFloats);
        var dos = SharedMemory.Allocate<float>(TileFloats);
        var acc = SharedMemory.Allocate<float>(TileFloats);
        var ks = SharedMemory.Allocate<float>(TileFloats);
        var vs = SharedMemory.Allocate<float>(TileFloats);
        var ds = SharedMemory.Allocate<float>(Tile * Tile);
        var rowLse = SharedMemory.Allocate<float>(Tile);
        var rowD = SharedMemory.Allocate<float>(Tile);

        int tid = Group.IdxX, step = Group.DimX;
        int n = a.N, dh = a.Dh;
        int tiles = (n + Tile - 1) / Tile;
        int bh = Grid.IdxX / tiles, i0 = Grid.IdxX % tiles * Tile;
        int b = bh / a.Heads, h = bh % a.Heads;
        int rowsHere = XMath.Min(Tile, n - i0);
        int firstRow = b * n;

        for (int e = tid; e < Tile * dh; e += step)
        {
            int r = e / dh, c = e % dh;
            bool valid = r < rowsHere;
            int row = firstRow + i0 + r;
            qs[r * Stride + c] = valid ? q[row * a.QLd + a.QOff + h * dh + c] : 0f;
            dos[r * Stride + c] = valid ? dO[row * g.DOLd + g.DOOff + h * dh + c] : 0f;
            acc[r * Stride + c] = 0f;
        }
        for (int r = tid; r < Tile; r += step)
        {
            rowLse[r] = r < rowsHere ? lse[bh * n + i0 + r] : 0f;
            rowD[r] = r < rowsHere ? delta[bh * n + i0 + r] : 0f;
        }
        Group.Barrier();

        for (int j0 = 0; j0 < n; j0 += Tile)
        {
            int colsHere = XMath.Min(Tile, n - j0);
            for (int e = tid; e < Tile * dh; e += step)
            {
                int r = e / dh, c = e % dh;
                bool valid = r < colsHere;
                int row = firstRow + j0 + r;
                ks[r * Stride + c] = valid ? k[row * a.KLd + a.KOff + h * dh + c] : 0f;
                vs[r * Stride + c] = valid ? v[row * a.VLd + a.VOff + h * dh + c] : 0f;
            }
            Group.Barrier();

            for (int e = tid; e < Tile * Tile; e += step)
            {
                int r = e / Tile, c = e % Tile;
                float score = 0f, dp = 0f;
                for (int d = 0; d < dh; d++)
                {
                    score += qs[r * Stride + d] * ks[c * Stride + d];
                    dp += dos[r * Stride + d] * vs[c * Stride + d];
                }
                float p = r < rowsHere && c < colsHere ? XMath.Exp(a.Scale * score - rowLse[r]) : 0f;
                ds[e] = p * (dp - rowD[r]);
            }
            Group.Barrier();

            for (int e = tid; e < Tile * dh; e += step)
            {
                int r = e / dh, c = e % dh;
                float sum = 0f;
                for (int j = 0; j < Tile; j++) sum += ds[r * Tile + j] * ks[j * Stride + c];
                acc[r * Stride + c] += a.Scale * sum;
            }
            Group.Barrier();
        }

        for (int e = tid; e < Tile * dh; e += step)
        {
            int r = e / dh, c = e % dh;
            if (r < rowsHere) dq[(firstRow + i0 + r) * g.DqLd + g.DqOff + h * dh + c] = acc[r * Stride + c];
        }
    }

    /// <summary>
    /// Group = (key tile, batch entry, head): dV_j = Σ_i P_ij·dO_i and dK_j = scale·Σ_i dS_ij·Q_i over all query
    /// half tiles. Mode 0 assigns dK and dV; mode 1 (Q = K = V) adds dK + dV into <paramref name="dk"/>, which already
    /// holds dQ for those rows (each group owns its key rows, so no two groups write the same element).
    /// </summary>
    [IlgpuKernel(Grouping.Explicit)]
    internal static void KeyValueGradKernel(ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> dO,
        ArrayView<float> lse, ArrayView<float> delta, ArrayView<float> dk, ArrayView<float> dv, AttentionArgs a, GradientArgs g)
    {
        var ks = SharedMemory.Allocate<float>(TileFloats);
        var vs = SharedMemory.Allocate<float>(TileFloats);
        var dks = SharedMemory.Allocate<float>(TileFloats);
        var dvs = SharedMemory.Allocate<float>(TileFloats);
        var qs = SharedMemory.Allocate<float>(HalfTileFloats);
        var dos = SharedMemory.Allocate<float>(HalfTileFloats);
        var ps = SharedMemory.Allocate<float>(HalfTile * Tile);
        var ds = SharedMemory.Allocate<float>(HalfTile * Tile);
        var rowLse = SharedMemory.Allocate<float>(HalfTile);
        var rowD = SharedMemory.Allocate<float>(HalfTile);

        int tid = Group.IdxX, step = Group.DimX;
        int n = a.N, dh = a.Dh;
        int tiles = (n + Tile - 1) / Tile;
        int bh = Grid.IdxX / tiles, j0 = Grid.IdxX % tiles * Tile;
        int b = bh / a.Heads, h = bh % a.Heads;
        int keysHere = XMath.Min(Tile, n - j0);
        int firstRow = b * n;

        for (int e = tid; e < Tile * dh; e += step)
        {
            int r = e / dh, c = e % dh;
            bool valid = r < keysHere;
            int row = firstRow + j0 + r;
            ks[r * Stride + c] = valid ? k[row * a.KLd + a.KOff + h * dh + c] : 0f;
            vs[r * Stride + c] = valid ? v[row * a.VLd + a.VOff + h * dh + c] : 0f;
            dks[r * Stride + c] = 0f;
            dvs[r * Stride + c] = 0f;
        }
        Group.Barrier();

        for (int i0 = 0; i0 < n; i0 += HalfTile)
        {
            int queriesHere = XMath.Min(HalfTile, n - i0);
            for (int e = tid; e < HalfTile * dh; e += step)
            {
                int r = e / dh, c = e % dh;
                bool valid = r < queriesHere;
                int row = firstRow + i0 + r;
                qs[r * Stride + c] = valid ? q[row * a.QLd + a.QOff + h * dh + c] : 0f;
                dos[r * Stride + c] = valid ? dO[row * g.DOLd + g.DOOff + h * dh + c] : 0f;
            }
            for (int r = tid; r < HalfTile; r += step)
            {
                rowLse[r] = r < queriesHere ? lse[bh * n + i0 + r] : 0f;
                rowD[r] = r < queriesHere ? delta[bh * n + i0 + r] : 0f;
            }
            Group.Barrier();

            for (int e = tid; e < HalfTile * Tile; e += step)
            {
                int r = e / Tile, c = e % Tile;   // r: query, c: key
                float score = 0f, dp = 0f;
                for (int d = 0; d < dh; d++)
                {
                    score += qs[r * Stride + d] * ks[c * Stride + d];
                    dp += dos[r * Stride + d] * vs[c * Stride + d];
                }
                float p = r < queriesHere && c < keysHere ? XMath.Exp(a.Scale * score - rowLse[r]) : 0f;
                ps[e] = p;
                ds[e] = p * (dp - rowD[r]);
            }
            Group.Barrier();

            for (int e = tid; e < Tile * dh; e += step)
            {
                int c = e / dh, d = e % dh;     // c: key, d: head column
                float sumV = 0f, sumK = 0f;
                for (int r = 0; r < HalfTile; r++)
                {
                    sumV += ps[r * Tile + c] * dos[r * Stride + d];
                    sumK += ds[r * Tile + c] * qs[r * Stride + d];
                }
                dvs[c * Stride + d] += sumV;
                dks[c * Stride + d] += a.Scale * sumK;
            }
            Group.Barrier();
        }

        for (int e = tid; e < Tile * dh; e += step)
        {
            int r = e / dh, c = e % dh;
            if (r < keysHere)
            {
                int row = firstRow + j0 + r;
                if (a.Mode == 1)
                {
                    int at = row * g.DkLd + g.DkOff + h * dh + c;
                    dk[at] = dk[at] + dks[r * Stride + c] + dvs[r * Stride + c];
                }
                else
                {
                    dk[row * g.DkLd + g.DkOff + h * dh + c] = dks[r * Stride + c];
                    dv[row * g.DvLd + g.DvOff + h * dh + c] = dvs[r * Stride + c];
                }
            }
        }
    }
}
