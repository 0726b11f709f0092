using CrateIL.Compute.Devices;
using CrateIL.Compute.Ilgpu;
using CrateIL.Compute.Tensors;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace CrateIL.Compute.Ops;

/// <summary>
/// LayerNorm on ILGPU. Forward and dx: one group per row with shared-memory trees. dγ/dβ: a deterministic
/// two-pass column reduction — pass 1 gives each (row chunk, column) a thread that sums its chunk in row order into
/// a partial buffer; pass 2 gives each column a thread that adds the chunk partials in chunk order. No atomics.
/// </summary>
internal static class LayerNormIlgpu
{
    /// <summary>Rows summed serially by one thread in the dγ/dβ partial pass (enough chunks to fill a GPU).</summary>
    internal const int RowsPerChunk = 32;

    public static void Forward(IlgpuDevice device, Tensor x, Tensor? gamma, Tensor? beta, Tensor y,
        Tensor? mean, Tensor? rstd, int rows, int cols, float eps)
    {
        RowOpChecks.FitsIlgpuIndex("LayerNorm", nameof(x), x);
        var config = new KernelConfig(rows, RowOpChecks.GroupSize(device));
        // Absent optional tensors are replaced by x's view; the flags guarantee they are never touched.
        var args = new LayerNormArgs(cols, eps, gamma is not null, beta is not null, mean is not null);
        device.Kernels<LayerNormKernels>().Forward(config, x.View, (gamma ?? x).View, (beta ?? x).View, y.View,
            (mean ?? x).View, (rstd ?? x).View, args);
    }

    public static void Backward(IlgpuDevice device, Tensor dy, Tensor x, Tensor? gamma, Tensor mean, Tensor rstd,
        Tensor dx, Tensor? dGamma, Tensor? dBeta, int rows, int cols)
    {
        RowOpChecks.FitsIlgpuIndex("LayerNorm backward", nameof(x), x);
        int groupSize = RowOpChecks.GroupSize(device);
        var kernels = device.Kernels<LayerNormKernels>();
        var args = new LayerNormArgs(cols, 0f, gamma is not null, false, false);

        // dγ/dβ read dy before dx is written: dx may alias dy.
        if (dGamma is not null || dBeta is not null)
        {
            int chunks = (rows + RowsPerChunk - 1) / RowsPerChunk;
            int colBlocks = (cols + groupSize - 1) / groupSize;
            var cargs = new ColumnArgs(rows, cols, chunks, colBlocks, dGamma is not null, dBeta is not null);
            // Pooled scratch: after the first step the same size comes back from the pool, nothing is allocated.
            using var partial = device.Allocate(2, chunks, cols);
            kernels.ColumnPartials(new KernelConfig(chunks * colBlocks, groupSize), dy.View, x.View, mean.View, rstd.View, partial.View, cargs);
            kernels.ColumnFinal(new KernelConfig(colBlocks, groupSize), partial.View, (dGamma ?? dBeta)!.View, (dBeta ?? dGamma)!.View, cargs);
        }
        kernels.BackwardDx(new KernelConfig(rows, groupSize), dy.View, x.View, (gamma ?? x).View, mean.View, rstd.View, dx.View, args);
    }
}

internal readonly struct LayerNormArgs(int cols, float eps, bool hasGamma, bool hasBeta, bool saveStats)
{
    public readonly int Cols = cols;
    public readonly float Eps = eps;
    public readonly int HasGamma = hasGamma ? 1 : 0;
    public readonly int HasBeta = hasBeta ? 1 : 0;
    public readonly int SaveStats = saveStats ? 1 : 0;
}

internal readonly struct ColumnArgs(int rows, int cols, int chunks, int colBlocks, bool hasDGamma, bool hasDBeta)
{
    public readonly int Rows = rows;
    public readonly int Cols = cols;
    public readonly int Chunks = chunks;
    public readonly int ColBlocks = colBlocks;
    public readonly int HasDGamma = hasDGamma ? 1 : 0;
    public readonly int HasDBeta = hasDBeta ? 1 : 0;
}

internal sealed class LayerNormKernels : IKernelSet<LayerNormKernels>
{
    public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
        ArrayView<float>, ArrayView<float>, LayerNormArgs> Forward;
    public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
        ArrayView<float>, ArrayView<float>, LayerNormArgs> BackwardDx;
    public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
        ArrayView<float>, ColumnArgs> ColumnPartials;
    public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ColumnArgs> ColumnFinal;

    private LayerNormKernels(Accelerator a)
    {
        Forward = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, ArrayView<float>, LayerNormArgs>(ForwardKernel);
        BackwardDx = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, ArrayView<float>, LayerNormArgs>(BackwardDxKernel);
        ColumnPartials = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, ColumnArgs>(ColumnPartialsKernel);
        ColumnFinal = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ColumnArgs>(ColumnFinalKernel);
    }

    public static LayerNormKernels Load(Accelerator accelerator) => new(accelerator);

    /// <summary>Group = row: mean, then the two-pass variance, then y; thread 0 saves mean and rstd.</summary>
    [IlgpuKernel(Grouping.Explicit)]
    internal static void ForwardKernel(ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta,
        ArrayView<float> y, ArrayView<float> mean, ArrayView<float> rstd, LayerNormArgs args)
    {
        var shared = SharedMemory.Allocate<float>(GroupReduce.MaxGroupSize);
        int tid = Group.IdxX, step = Group.DimX, cols = args.Cols, row = Grid.IdxX;
        int o = row * cols;

        float local = 0f;
        for (int j = tid; j < cols; j += step) local += x[o + j];
        float m = GroupReduce.Sum(shared, local) / cols;

        local = 0f;
        for (int j = tid; j < cols; j += step)
        {
            float d = x[o + j] - m;
            local += d * d;
        }
        float s = XMath.Rsqrt(GroupReduce.Sum(shared, local) / cols + args.Eps);

        for (int j = tid; j < cols; j += step)
        {
            float v = (x[o + j] - m) * s;
            if (args.HasGamma != 0) v *= gamma[j];
            if (args.HasBeta != 0) v += beta[j];
            y[o + j] = v;
        }
        if (tid == 0 && args.SaveStats != 0)
        {
            mean[row] = m;
            rstd[row] = s;
        }
    }

    /// <summary>Group = row: dx = rstd·(g − mean(g) − n·mean(g⊙n)), both sums from one two-buffer tree.</summary>
    [IlgpuKernel(Grouping.Explicit)]
    internal static void BackwardDxKernel(ArrayView<float> dy, ArrayView<float> x, ArrayView<float> gamma,
        ArrayView<float> mean, ArrayView<float> rstd, ArrayView<float> dx, LayerNormArgs args)
    {
        var sharedG = SharedMemory.Allocate<float>(GroupReduce.MaxGroupSize);
        var sharedGN = SharedMemory.Allocate<float>(GroupReduce.MaxGroupSize);
        int tid = Group.IdxX, step = Group.DimX, cols = args.Cols, row = Grid.IdxX;
        int o = row * cols;
        float m = mean[row], s = rstd[row];

        float sg = 0f, sgn = 0f;
        for (int j = tid; j < cols; j += step)
        {
            float g = args.HasGamma != 0 ? dy[o + j] * gamma[j] : dy[o + j];
            sg += g;
            sgn += g * (x[o + j] - m) * s;
        }
        var sums = GroupReduce.Sum2(sharedG, sharedGN, sg, sgn);
        float meanG = sums.A / cols, meanGN = sums.B / cols;

        for (int j = tid; j < cols; j += step)
        {
            float g = args.HasGamma != 0 ? dy[o + j] * gamma[j] : dy[o + j];
            float n = (x[o + j] - m) * s;
            dx[o + j] = s * (g - meanG - n * meanGN);
        }
    }

    /// <summary>
    /// Pass 1 of dγ/dβ: group → (chunk, column block), thread → column; sums dy⊙n and dy over the chunk's rows in
    /// order into partial[0, chunk, col] and partial[1, chunk, col]. Adjacent threads read adjacent columns.
    /// </summary>
    [IlgpuKernel(Grouping.Explicit)]
    internal static void ColumnPartialsKernel(ArrayView<float> dy, ArrayView<float> x, ArrayView<float> mean,
        ArrayView<float> rstd, ArrayView<float> partial, ColumnArgs args)
    {
        int chunk = Grid.IdxX / args.ColBlocks;
        int col = (Grid.IdxX - chunk * args.ColBlocks) * Group.DimX + Group.IdxX;
        if (col >= args.Cols) return;
        int start = chunk * LayerNormIlgpu.RowsPerChunk;
        int end = XMath.Min(start + LayerNormIlgpu.RowsPerChunk, args.Rows);
        float sdg = 0f, sdb = 0f;
        for (int r = start; r < end; r++)
        {
            float d = dy[r * args.Cols + col];
            sdg += d * (x[r * args.Cols + col] - mean[r]) * rstd[r];
            sdb += d;
        }
        partial[chunk * args.Cols + col] = sdg;
        partial[(args.Chunks + chunk) * args.Cols + col] = sdb;
    }

    /// <summary>Pass 2 of dγ/dβ: thread → column; adds the chunk partials in chunk order, then dγ += / dβ +=.</summary>
    [IlgpuKernel(Grouping.Explicit)]
    internal static void ColumnFinalKernel(ArrayView<float> partial, ArrayView<float> dGamma, ArrayView<float> dBeta, ColumnArgs args)
    {
        int col = Grid.IdxX * Group.DimX + Group.IdxX;
        if (col >= args.Cols) return;
        float sdg = 0f, sdb = 0f;
        for (int c = 0; c < args.Chunks; c++)
        {
            sdg += partial[c * args.Cols + col];
            sdb += partial[(args.Chunks + c) * args.Cols + col];
        }
        if (args.HasDGamma != 0) dGamma[col] += sdg;
        if (args.HasDBeta != 0) dBeta[col] += sdb;
    }
}
