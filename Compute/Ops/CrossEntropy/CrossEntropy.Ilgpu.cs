using CrateIL.Compute.Devices;
using CrateIL.Compute.Ilgpu;
using CrateIL.Compute.Tensors;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace CrateIL.Compute.Ops;

/// <summary>
/// Softmax cross-entropy on ILGPU: one group per row. Labels arrive as the float codes of a
/// <see cref="CrossEntropyTargets"/> (class indices are exact in float32 up to 2^24; ignored rows are coded −1), uploaded
/// once per batch and shared by the forward and the backward. The mean loss is reduced by one more single-group kernel
/// into a device slot, so nothing waits for the device.
/// </summary>
internal static class CrossEntropyIlgpu
{
    /// <summary>Largest class index a float label codes exactly.</summary>
    private const int MaxClasses = 1 << 24;

    public static void Forward(IlgpuDevice device, Tensor logits, Tensor codes, Tensor losses, Tensor meanLoss,
        int rows, int classes, float smoothing, int counted)
    {
        Check(logits, classes);
        var kernels = device.Kernels<CrossEntropyKernels>();
        int groupSize = RowOpChecks.GroupSize(device);
        kernels.Forward(new KernelConfig(rows, groupSize), logits.View, codes.View, losses.View, new CrossEntropyArgs(classes, smoothing, 0f));
        // Ignored rows hold 0, so the sum over all rows is the sum over the counted ones; one group, fixed order.
        kernels.Mean(new KernelConfig(1, groupSize), losses.View, meanLoss.View, new CrossEntropyMeanArgs(rows, counted));
    }

    public static void Backward(IlgpuDevice device, Tensor logits, Tensor codes, Tensor dLogits,
        int rows, int classes, float smoothing, float scale)
    {
        Check(logits, classes);
        device.Kernels<CrossEntropyKernels>().Backward(new KernelConfig(rows, RowOpChecks.GroupSize(device)),
            logits.View, codes.View, dLogits.View, new CrossEntropyArgs(classes, smoothing, scale));
    }

    private static void Check(Tensor logits, int classes)
    {
        RowOpChecks.FitsIlgpuIndex("CrossEntropy", nameof(logits), logits);
        if (classes > MaxClasses)
            throw new ArgumentException($"CrossEntropy on ILGPU codes labels as float32 and supports up to {MaxClasses} classes, got {classes}", nameof(logits));
    }
}

/// <summary>Rows of the per-row losses and the rows that count (the mean's denominator; 0 gives NaN).</summary>
internal readonly struct CrossEntropyMeanArgs(int rows, int counted)
{
    public readonly int Rows = rows;
    public readonly int Counted = counted;
}

/// <summary>Classes, label smoothing ε, and the gradient scale upstream/(counted rows).</summary>
internal readonly struct CrossEntropyArgs(int classes, float smoothing, float scale)
{
    public readonly int Classes = classes;
    public readonly float Smoothing = smoothing;
    public readonly float Scale = scale;
}

internal sealed class CrossEntropyKernels : IKernelSet<CrossEntropyKernels>
{
    public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, CrossEntropyArgs> Forward;
    public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, CrossEntropyArgs> Backward;
    public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, CrossEntropyMeanArgs> Mean;

    private CrossEntropyKernels(Accelerator a)
    {
        Forward = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, CrossEntropyArgs>(ForwardKernel);
        Backward = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, CrossEntropyArgs>(BackwardKernel);
        Mean = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, CrossEntropyMeanArgs>(MeanKernel);
    }

    public static CrossEntropyKernels Load(Accelerator accelerator) => new(accelerator);

    /// <summary>
    /// Group = row: m = max x, then S = Σ exp(x − m) and Σ (x − m) from one two-buffer tree;
    /// loss = log S − (1−ε)(x_label − m) − ε·Σ(x − m)/C, or 0 for an ignored row (label &lt; 0).
    /// </summary>
    [IlgpuKernel(Grouping.Explicit)]
    internal static void ForwardKernel(ArrayView<float> logits, ArrayView<float> labels, ArrayView<float> losses, CrossEntropyArgs args)
    {
        var sharedA = SharedMemory.Allocate<float>(GroupReduce.MaxGroupSize);
        var sharedB = SharedMemory.Allocate<float>(GroupReduce.MaxGroupSize);
        int tid = Group.IdxX, step = Group.DimX, classes = args.Classes, row = Grid.IdxX;
        int o = row * classes;

        float localMax = float.NegativeInfinity;
        for (int j = tid; j < classes; j += step) localMax = XMath.Max(localMax, logits[o + j]);
        float m = GroupReduce.Max(sharedA, localMax);

        float sumExp = 0f, sumShift = 0f;
        for (int j = tid; j < classes; j += step)
        {
            float d = logits[o + j] - m;
            sumExp += XMath.Exp(d);
            sumShift += d;
        }
        var sums = GroupReduce.Sum2(sharedA, sharedB, sumExp, sumShift);

        if (tid == 0)
        {
            int label = (int)labels[row];
            float loss = 0f;
            if (label >= 0)
                loss = XMath.Log(sums.A) - (1f - args.Smoothing) * (logits[o + label] - m) - args.Smoothing * sums.B / classes;
            losses[row] = loss;
        }
    }

    /// <summary>Group = row: d = scale·(softmax − q), q = (1−ε)·onehot + ε/C; ignored rows get 0. d may alias the logits.</summary>
    [IlgpuKernel(Grouping.Explicit)]
    internal static void BackwardKernel(ArrayView<float> logits, ArrayView<float> labels, ArrayView<float> dLogits, CrossEntropyArgs args)
    {
        var shared = SharedMemory.Allocate<float>(GroupReduce.MaxGroupSize);
        int tid = Group.IdxX, step = Group.DimX, classes = args.Classes, row = Grid.IdxX;
        int o = row * classes;
        int label = (int)labels[row];

        float localMax = float.NegativeInfinity;
        for (int j = tid; j < classes; j += step) localMax = XMath.Max(localMax, logits[o + j]);
        float m = GroupReduce.Max(shared, localMax);

        float localSum = 0f;
        for (int j = tid; j < classes; j += step) localSum += XMath.Exp(logits[o + j] - m);
        float k = args.Scale / GroupReduce.Sum(shared, localSum);

        float uniform = args.Scale * args.Smoothing / classes;
        float hit = args.Scale * (1f - args.Smoothing);
        for (int j = tid; j < classes; j += step)
        {
            float d = k * XMath.Exp(logits[o + j] - m) - uniform;
            if (j == label) d -= hit;
            dLogits[o + j] = label >= 0 ? d : 0f;
        }
    }

    /// <summary>One group: mean[0] = Σ losses / counted (NaN when no row counts), summed in a fixed order.</summary>
    [IlgpuKernel(Grouping.Explicit)]
    internal static void MeanKernel(ArrayView<float> losses, ArrayView<float> mean, CrossEntropyMeanArgs args)
    {
        var shared = SharedMemory.Allocate<float>(GroupReduce.MaxGroupSize);
        int tid = Group.IdxX;
        float local = 0f;
        for (int r = tid; r < args.Rows; r += Group.DimX) local += losses[r];
        float total = GroupReduce.Sum(shared, local);
        if (tid == 0) mean[0] = args.Counted > 0 ? total / args.Counted : float.NaN;
    }
}
