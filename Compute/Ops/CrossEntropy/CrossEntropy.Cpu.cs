using System.Numerics.Tensors;
using CrateIL.Compute.Cpu;
using CrateIL.Compute.Devices;
using Tensor = CrateIL.Compute.Tensors.Tensor;

namespace CrateIL.Compute.Ops;

/// <summary>
/// Softmax cross-entropy on the CPU. Per row, with m = max x and S = Σ exp(x − m):
/// loss = log S − (1−ε)(x_label − m) − ε·mean(x − m), which is −Σ q·log softmax(x) without forming log p.
/// </summary>
internal static unsafe class CrossEntropyCpu
{
    /// <summary>Per-row losses into <paramref name="losses"/>, their mean over the counted rows into meanLoss[0].</summary>
    public static void Forward(CpuDevice device, Tensor logits, ReadOnlySpan<int> labels, Tensor losses, Tensor meanLoss,
        int rows, int classes, float smoothing, int ignoreIndex, int counted)
    {
        fixed (int* pl = labels)   // the parallel loop finishes inside this fixed block
            RowMath.ForRows(device, rows, classes, new ForwardKernel(logits.HostPointer, pl, losses.HostPointer, classes, smoothing, ignoreIndex));
        // Row order, float64: the mean is deterministic and does not lose the small losses of a large batch.
        double total = 0;
        float* p = losses.HostPointer;
        for (int r = 0; r < rows; r++) total += p[r];
        meanLoss.HostPointer[0] = (float)(total / counted);
    }

    public static void Backward(CpuDevice device, Tensor logits, ReadOnlySpan<int> labels, Tensor dLogits,
        int rows, int classes, float smoothing, int ignoreIndex, float scale)
    {
        fixed (int* pl = labels)
            RowMath.ForRows(device, rows, classes, new BackwardKernel(logits.HostPointer, pl, dLogits.HostPointer, classes, smoothing, ignoreIndex, scale));
    }

    private readonly struct ForwardKernel(float* px, int* lab, float* po, int classes, float smoothing, int ignoreIndex) : IRowChunkKernel
    {
        public void Execute(int chunk, int start, int end)
        {
            for (int r = start; r < end; r++)
            {
                int label = lab[r];
                if (label == ignoreIndex) { po[r] = 0f; continue; }
                var row = new ReadOnlySpan<float>(px + (long)r * classes, classes);
                float m = TensorPrimitives.Max(row);
                float loss = MathF.Log(RowMath.SumExp(row, 1f, m)) - (1f - smoothing) * (row[label] - m);
                if (smoothing != 0f) loss -= smoothing * RowMath.SumShifted(row, m) / classes;
                po[r] = loss;
            }
        }
    }

    private readonly struct BackwardKernel(float* px, int* lab, float* pd, int classes, float smoothing, int ignoreIndex, float scale) : IRowChunkKernel
    {
        public void Execute(int chunk, int start, int end)
        {
            float uniform = scale * smoothing / classes;
            for (int r = start; r < end; r++)
            {
                long o = (long)r * classes;
                var d = new Span<float>(pd + o, classes);
                int label = lab[r];
                if (label == ignoreIndex) { d.Clear(); continue; }
                var row = new ReadOnlySpan<float>(px + o, classes);
                float m = TensorPrimitives.Max(row);
                RowMath.ScaleShift(row, 1f, m, d);   // the row is fully read first, so d may alias it
                TensorPrimitives.Exp(d, d);
                float k = scale / TensorPrimitives.Sum(d);
                RowMath.ScaleShift(d, k, uniform, d);  // scale·(p − ε/C)
                d[label] -= scale * (1f - smoothing);
            }
        }
    }
}
