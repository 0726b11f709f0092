using System.Buffers;
using CrateIL.Compute.Devices;
using CrateIL.Compute.Ilgpu;
using CrateIL.Compute.Tensors;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace CrateIL.Compute.Ops;

/// <summary>
/// Softmax cross-entropy on ILGPU: one group per row. Labels travel as a pooled float tensor (class indices are
/// exact in float32 up to 2^24; ignored rows are coded −1): it reuses the device's buffer pool and needs no
/// second buffer type, and each call rents its own buffer, so concurrent calls never share label storage.
/// </summary>
internal static class CrossEntropyIlgpu
{
    /// <summary>Largest class index a float label codes exactly.</summary>
    private const int MaxClasses = 1 << 24;

    public static float Forward(IlgpuDevice device, Tensor logits, ReadOnlySpan<int> labels, Tensor? losses,
        int rows, int classes, float smoothing, int ignoreIndex, int counted)
    {
        Check(logits, classes);
        using var temp = losses is null ? device.Allocate(rows) : null;
        var output = losses ?? temp!;
        using var labelTensor = Upload(device, labels, ignoreIndex);
        device.Kernels<CrossEntropyKernels>().Forward(new KernelConfig(rows, RowOpChecks.GroupSize(device)),
            logits.View, labelTensor.View, output.View, new CrossEntropyArgs(classes, smoothing, 0f));
        // Ignored rows hold 0, so the deterministic whole-tensor sum over all rows is the sum over counted rows.
        return Reduce.All(output, ReduceOp.Sum) / counted;
    }

    public static void Backward(IlgpuDevice device, Tensor logits, ReadOnlySpan<int> labels, Tensor dLogits,
        int rows, int classes, float smoothing, int ignoreIndex, float scale)
    {
        Check(logits, classes);
        using var labelTensor = Upload(device, labels, ignoreIndex);
        device.Kernels<CrossEntropyKernels>().Backward(new KernelConfig(rows, RowOpChecks.GroupSize(device)),
            logits.View, labelTensor.View, dLogits.View, new CrossEntropyArgs(classes, smoothing, scale));
    }

    private static void Check(Tensor logits, int classes)
    {
        RowOpChecks.FitsIlgpuIndex("CrossEntropy", nameof(logits), logits);
        if (classes > MaxClasses)
            throw new ArgumentException($"CrossEntropy on ILGPU codes labels as float32 and supports up to {MaxClasses} classes, got {classes}", nameof(logits));
    }

    /// <summary>Labels as a pooled float tensor, staged through a pooled host array (no steady-state allocation).</summary>
    private static Tensor Upload(IlgpuDevice device, ReadOnlySpan<int> labels, int ignoreIndex)
    {
        var staging = ArrayPool<float>.Shared.Rent(labels.Length);
        try
        {
            for (int i = 0; i < labels.Length; i++) staging[i] = labels[i] == ignoreIndex ? -1f : labels[i];
            var t = device.Allocate(labels.Length);
            t.CopyFrom(staging.AsSpan(0, labels.Length));
            return t;
        }
        finally
        {
            ArrayPool<float>.Shared.Return(staging);
        }
    }
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

    private CrossEntropyKernels(Accelerator a)
    {
        Forward = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, CrossEntropyArgs>(ForwardKernel);
        Backward = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, CrossEntropyArgs>(BackwardKernel);
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
}
