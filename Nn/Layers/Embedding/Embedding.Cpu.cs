using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using CrateIL.Compute.Cpu;
using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;

namespace CrateIL.Nn.Layers;

/// <summary>Host paths of the embedding ops: patchify/unpatchify, CLS + positions (forward and backward), bicubic resize.</summary>
internal static unsafe class EmbeddingCpu
{
    /// <summary>Elements per thread below which splitting costs more than it saves.</summary>
    private const int Grain = 1 << 14;

    private static int GrainUnits(long workPerUnit) => (int)Math.Max(1, Grain / Math.Max(1, workPerUnit));

    // ---- patchify: one unit = one strip of patches (b, grid row r) = P image rows of every channel ----

    public static void Patchify(CpuDevice device, Tensor image, Tensor patches, PatchArgs a) =>
        CpuParallel.For(device, a.Batch * a.GridRows, GrainUnits((long)a.Patch * a.Width * a.Channels),
            new PatchKernel(image.HostPointer, patches.HostPointer, a, toPatches: true));

    public static void Unpatchify(CpuDevice device, Tensor patches, Tensor image, PatchArgs a) =>
        CpuParallel.For(device, a.Batch * a.GridRows, GrainUnits((long)a.Patch * a.Width * a.Channels),
            new PatchKernel(image.HostPointer, patches.HostPointer, a, toPatches: false));

    private readonly struct PatchKernel(float* image, float* patches, PatchArgs a, bool toPatches) : IRangeKernel
    {
        private readonly float* _image = image, _patches = patches;
        private readonly PatchArgs _a = a;
        private readonly bool _toPatches = toPatches;

        public void Execute(int start, int count)
        {
            var a = _a;
            int p = a.Patch, c = a.Channels;
            for (int unit = start; unit < start + count; unit++)
            {
                int b = unit / a.GridRows, r = unit % a.GridRows;
                // First token of this strip; feature (p1·P + p2)·C + ch of token (b, r·w + col).
                float* strip = _patches + ((long)b * a.Tokens + (long)r * a.GridCols) * a.PatchDim;
                for (int ch = 0; ch < c; ch++)
                    for (int p1 = 0; p1 < p; p1++)
                    {
                        float* row = _image + (((long)b * c + ch) * a.Height + (long)r * p + p1) * a.Width;
                        float* feature = strip + p1 * p * c + ch;
                        for (int col = 0; col < a.GridCols; col++)
                        {
                            float* dst = feature + (long)col * a.PatchDim;
                            float* src = row + col * p;
                            if (_toPatches) for (int p2 = 0; p2 < p; p2++) dst[p2 * c] = src[p2];
                            else for (int p2 = 0; p2 < p; p2++) src[p2] = dst[p2 * c];
                        }
                    }
            }
        }
    }

    // ---- X⁰ = concat(cls, e) + table: one unit = one output row (b, n) ----

    public static void AddClsPos(CpuDevice device, Tensor e, Tensor cls, Tensor table, Tensor x0, TokenArgs a) =>
        CpuParallel.For(device, a.Batch * (a.Tokens + 1), GrainUnits(a.Dim),
            new AddClsPosKernel(e.HostPointer, cls.HostPointer, table.HostPointer, x0.HostPointer, a));

    private readonly struct AddClsPosKernel(float* e, float* cls, float* table, float* x0, TokenArgs a) : IRangeKernel
    {
        private readonly float* _e = e, _cls = cls, _table = table, _x0 = x0;
        private readonly TokenArgs _a = a;

        public void Execute(int start, int count)
        {
            int d = _a.Dim, rows = _a.Tokens + 1;
            for (int unit = start; unit < start + count; unit++)
            {
                int b = unit / rows, n = unit % rows;
                float* src = n == 0 ? _cls : _e + ((long)b * _a.Tokens + n - 1) * d;
                Add(src, _table + (long)n * d, _x0 + (long)unit * d, d);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Add(float* x, float* y, float* z, int n)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
            for (; i <= n - 8; i += 8) Vector256.Store(Vector256.Load(x + i) + Vector256.Load(y + i), z + i);
        for (; i < n; i++) z[i] = x[i] + y[i];
    }

    // ---- backward: one unit = one table row n; Σ over the batch in batch order (as the ILGPU kernel) ----

    public static void ClsPosBackward(CpuDevice device, Tensor dx0, Tensor de, Tensor dcls, Tensor dpos, TokenArgs a) =>
        CpuParallel.For(device, a.Tokens + 1, GrainUnits((long)a.Batch * a.Dim),
            new ClsPosBackwardKernel(dx0.HostPointer, de.HostPointer, dcls.HostPointer, dpos.HostPointer, a));

    private readonly struct ClsPosBackwardKernel(float* dx0, float* de, float* dcls, float* dpos, TokenArgs a) : IRangeKernel
    {
        private readonly float* _dx0 = dx0, _de = de, _dcls = dcls, _dpos = dpos;
        private readonly TokenArgs _a = a;

        public void Execute(int start, int count)
        {
            int d = _a.Dim, rows = _a.Tokens + 1, batch = _a.Batch;
            long rowStride = (long)rows * d;
            for (int n = start; n < start + count; n++)
            {
                float* first = _dx0 + (long)n * d;
                float* deRow = n == 0 ? null : _de + (long)(n - 1) * d;
                float* dposRow = _dpos + (long)n * d;
                int j = 0;
                if (Vector256.IsHardwareAccelerated)
                    for (; j <= d - 8; j += 8)
                    {
                        var sum = Vector256<float>.Zero;
                        for (int b = 0; b < batch; b++)
                        {
                            var g = Vector256.Load(first + b * rowStride + j);
                            sum += g;
                            if (deRow != null) Vector256.Store(g, deRow + (long)b * _a.Tokens * d + j);
                        }
                        Vector256.Store(Vector256.Load(dposRow + j) + sum, dposRow + j);
                        if (n == 0) Vector256.Store(Vector256.Load(_dcls + j) + sum, _dcls + j);
                    }
                for (; j < d; j++)
                {
                    float sum = 0f;
                    for (int b = 0; b < batch; b++)
                    {
                        float g = first[b * rowStride + j];
                        sum += g;
                        if (deRow != null) deRow[(long)b * _a.Tokens * d + j] = g;
                    }
                    dposRow[j] += sum;
                    if (n == 0) _dcls[j] += sum;
                }
            }
        }
    }

    // ---- bicubic: one unit = one output row of the grid; whole channel rows at a time (SIMD, contiguous) ----

    public static void Bicubic(CpuDevice device, Tensor src, Tensor dst, BicubicArgs a) =>
        CpuParallel.For(device, a.OutRows, GrainUnits((long)a.OutCols * a.Channels * 16),
            new BicubicKernel(src.HostPointer, dst.HostPointer, a));

    /// <summary>Channels above which the per-cell row buffer is not taken from the stack.</summary>
    private const int StackChannels = 2048;

    private readonly struct BicubicKernel(float* src, float* dst, BicubicArgs a) : IRangeKernel
    {
        private readonly float* _src = src, _dst = dst;
        private readonly BicubicArgs _a = a;

        public void Execute(int start, int count)
        {
            int c = _a.Channels;
            Span<float> row = c <= StackChannels ? stackalloc float[c] : new float[c];
            for (int oy = start; oy < start + count; oy++)
            {
                var ty = CubicTaps.Of(_a.ScaleRows, oy, _a.InRows);
                for (int ox = 0; ox < _a.OutCols; ox++)
                {
                    var tx = CubicTaps.Of(_a.ScaleCols, ox, _a.InCols);
                    var cell = new Span<float>(_dst + ((long)oy * _a.OutCols + ox) * c, c);
                    // Same association as the kernel and PyTorch: each source row along x first, then the rows along y.
                    Interpolate(ty.I0, tx, row);
                    TensorPrimitives.Multiply(row, ty.W0, cell);
                    Interpolate(ty.I1, tx, row);
                    TensorPrimitives.MultiplyAdd(row, ty.W1, cell, cell);
                    Interpolate(ty.I2, tx, row);
                    TensorPrimitives.MultiplyAdd(row, ty.W2, cell, cell);
                    Interpolate(ty.I3, tx, row);
                    TensorPrimitives.MultiplyAdd(row, ty.W3, cell, cell);
                }
            }
        }

        private void Interpolate(int y, in CubicTaps tx, Span<float> row)
        {
            int c = _a.Channels;
            float* line = _src + (long)y * _a.InCols * c;
            TensorPrimitives.Multiply(new ReadOnlySpan<float>(line + (long)tx.I0 * c, c), tx.W0, row);
            TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(line + (long)tx.I1 * c, c), tx.W1, row, row);
            TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(line + (long)tx.I2 * c, c), tx.W2, row, row);
            TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(line + (long)tx.I3 * c, c), tx.W3, row, row);
        }
    }
}

/// <summary>Batch, patch tokens N (the CLS row makes N + 1) and width of one CLS/position call.</summary>
internal readonly struct TokenArgs(int batch, int tokens, int dim)
{
    public readonly int Batch = batch;
    public readonly int Tokens = tokens;
    public readonly int Dim = dim;
}
