using CrateIL.Compute.Devices;
using CrateIL.Compute.Ilgpu;
using CrateIL.Compute.Ops;
using CrateIL.Compute.Tensors;
using ILGPU;
using ILGPU.Runtime;

namespace CrateIL.Nn.Layers;

/// <summary>
/// ILGPU paths of the embedding ops: grid-stride kernels, one thread per output element (gathers, no scatter, so no
/// atomics); the CLS/position gradient gives each table element one thread that sums the batch in order.
/// </summary>
internal static class EmbeddingIlgpu
{
    public static void Patchify(IlgpuDevice d, Tensor image, Tensor patches, PatchArgs a) =>
        d.Kernels<EmbeddingKernels>().Patchify(GridStride.Config(d, a.Length), image.View, patches.View, a);

    public static void Unpatchify(IlgpuDevice d, Tensor patches, Tensor image, PatchArgs a) =>
        d.Kernels<EmbeddingKernels>().Unpatchify(GridStride.Config(d, a.Length), patches.View, image.View, a);

    public static void AddClsPos(IlgpuDevice d, Tensor e, Tensor cls, Tensor table, Tensor x0, TokenArgs a) =>
        d.Kernels<EmbeddingKernels>().AddClsPos(GridStride.Config(d, x0.Length), e.View, cls.View, table.View, x0.View, a);

    public static void ClsPosBackward(IlgpuDevice d, Tensor dx0, Tensor de, Tensor dcls, Tensor dpos, TokenArgs a) =>
        d.Kernels<EmbeddingKernels>().ClsPosBackward(GridStride.Config(d, (long)(a.Tokens + 1) * a.Dim), dx0.View, de.View, dcls.View, dpos.View, a);

    public static void Bicubic(IlgpuDevice d, Tensor src, Tensor dst, BicubicArgs a) =>
        d.Kernels<EmbeddingKernels>().Bicubic(GridStride.Config(d, dst.Length), src.View, dst.View, a);
}

internal sealed class EmbeddingKernels : IKernelSet<EmbeddingKernels>
{
    private readonly Accelerator _a;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, PatchArgs>? _patchify, _unpatchify;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TokenArgs>? _addClsPos;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TokenArgs>? _clsPosBackward;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, BicubicArgs>? _bicubic;

    private EmbeddingKernels(Accelerator a) => _a = a;

    public static EmbeddingKernels Load(Accelerator accelerator) => new(accelerator);

    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, PatchArgs> Patchify =>
        _patchify ??= _a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, PatchArgs>(PatchifyKernel);
    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, PatchArgs> Unpatchify =>
        _unpatchify ??= _a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, PatchArgs>(UnpatchifyKernel);
    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TokenArgs> AddClsPos =>
        _addClsPos ??= _a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TokenArgs>(AddClsPosKernel);
    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TokenArgs> ClsPosBackward =>
        _clsPosBackward ??= _a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TokenArgs>(ClsPosBackwardKernel);
    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, BicubicArgs> Bicubic =>
        _bicubic ??= _a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, BicubicArgs>(BicubicKernel);

    /// <summary>Patch element (b, t, f) ← image element; thread per patch element.</summary>
    [IlgpuKernel(Grouping.Explicit)]
    internal static void PatchifyKernel(ArrayView<float> image, ArrayView<float> patches, PatchArgs a)
    {
        int n = a.Length, stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < n; i += stride)
            patches[i] = image[ImageIndex(i, a)];
    }

    /// <summary>Image element ← patch element; thread per image element (the permutation's inverse, gathered).</summary>
    [IlgpuKernel(Grouping.Explicit)]
    internal static void UnpatchifyKernel(ArrayView<float> patches, ArrayView<float> image, PatchArgs a)
    {
        int n = a.Length, stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < n; i += stride)
        {
            int x = i % a.Width, rest = i / a.Width;
            int y = rest % a.Height; rest /= a.Height;
            int ch = rest % a.Channels, b = rest / a.Channels;
            int r = y / a.Patch, p1 = y % a.Patch, col = x / a.Patch, p2 = x % a.Patch;
            int token = b * a.Tokens + r * a.GridCols + col;
            image[i] = patches[token * a.PatchDim + (p1 * a.Patch + p2) * a.Channels + ch];
        }
    }

    /// <summary>Index into the [B, C, H, W] image of patch element i of [B, N, P·P·C].</summary>
    private static int ImageIndex(int i, PatchArgs a)
    {
        int f = i % a.PatchDim, token = i / a.PatchDim;
        int t = token % a.Tokens, b = token / a.Tokens;
        int ch = f % a.Channels, pp = f / a.Channels;
        int p1 = pp / a.Patch, p2 = pp % a.Patch;
        int r = t / a.GridCols, col = t % a.GridCols;
        return ((b * a.Channels + ch) * a.Height + r * a.Patch + p1) * a.Width + col * a.Patch + p2;
    }

    /// <summary>X⁰[b, n, j] = table[n, j] + (n = 0 ? cls[j] : e[b, n − 1, j]).</summary>
    [IlgpuKernel(Grouping.Explicit)]
    internal static void AddClsPosKernel(ArrayView<float> e, ArrayView<float> cls, ArrayView<float> table, ArrayView<float> x0, TokenArgs a)
    {
        int rows = a.Tokens + 1;
        int total = a.Batch * rows * a.Dim, stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < total; i += stride)
        {
            int j = i % a.Dim, row = i / a.Dim;
            int n = row % rows, b = row / rows;
            float v = n == 0 ? cls[j] : e[(b * a.Tokens + n - 1) * a.Dim + j];
            x0[i] = v + table[n * a.Dim + j];
        }
    }

    /// <summary>
    /// Thread per table element (n, j): de[b, n − 1, j] = dX⁰[b, n, j]; dpos[n, j] += Σ_b dX⁰[b, n, j];
    /// dcls[j] += the same sum for n = 0. Batch summed in order: deterministic, no atomics.
    /// </summary>
    [IlgpuKernel(Grouping.Explicit)]
    internal static void ClsPosBackwardKernel(ArrayView<float> dx0, ArrayView<float> de, ArrayView<float> dcls, ArrayView<float> dpos, TokenArgs a)
    {
        int rows = a.Tokens + 1;
        int total = rows * a.Dim, stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < total; i += stride)
        {
            int j = i % a.Dim, n = i / a.Dim;
            float sum = 0f;
            for (int b = 0; b < a.Batch; b++)
            {
                float g = dx0[b * total + i];
                sum += g;
                if (n > 0) de[(b * a.Tokens + n - 1) * a.Dim + j] = g;
            }
            dpos[i] += sum;
            if (n == 0) dcls[j] += sum;
        }
    }

    /// <summary>One output element (cell, channel) of the bicubic resize: 4 × 4 clamped taps.</summary>
    [IlgpuKernel(Grouping.Explicit)]
    internal static void BicubicKernel(ArrayView<float> src, ArrayView<float> dst, BicubicArgs a)
    {
        int total = a.OutRows * a.OutCols * a.Channels, stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < total; i += stride)
        {
            int ch = i % a.Channels, cell = i / a.Channels;
            int ox = cell % a.OutCols, oy = cell / a.OutCols;
            var ty = CubicTaps.Of(a.ScaleRows, oy, a.InRows);
            var tx = CubicTaps.Of(a.ScaleCols, ox, a.InCols);
            float r0 = Row(src, a, ty.I0, tx, ch), r1 = Row(src, a, ty.I1, tx, ch);
            float r2 = Row(src, a, ty.I2, tx, ch), r3 = Row(src, a, ty.I3, tx, ch);
            dst[i] = r0 * ty.W0 + r1 * ty.W1 + r2 * ty.W2 + r3 * ty.W3;
        }
    }

    private static float Row(ArrayView<float> src, BicubicArgs a, int y, CubicTaps tx, int ch)
    {
        int row = y * a.InCols, c = a.Channels;
        return src[(row + tx.I0) * c + ch] * tx.W0 + src[(row + tx.I1) * c + ch] * tx.W1
             + src[(row + tx.I2) * c + ch] * tx.W2 + src[(row + tx.I3) * c + ch] * tx.W3;
    }
}
