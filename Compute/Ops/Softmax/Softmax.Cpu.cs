using System.Numerics.Tensors;
using CrateIL.Compute.Cpu;
using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;
using Tensor = CrateIL.Compute.Tensors.Tensor;

namespace CrateIL.Compute.Ops;

/// <summary>Row softmax on the CPU: TensorPrimitives/Vector256 per row, rows split across threads when large.</summary>
internal static unsafe class SoftmaxCpu
{
    public static void Forward(CpuDevice device, Tensor x, Tensor y, int rows, int cols, float scale) =>
        RowMath.ForRows(device, rows, cols, new ForwardKernel(x.HostPointer, y.HostPointer, cols, scale));

    public static void Backward(CpuDevice device, Tensor y, Tensor dy, Tensor dx, int rows, int cols, float scale) =>
        RowMath.ForRows(device, rows, cols, new BackwardKernel(y.HostPointer, dy.HostPointer, dx.HostPointer, cols, scale));

    private readonly struct ForwardKernel(float* px, float* py, int cols, float scale) : IRowChunkKernel
    {
        public void Execute(int chunk, int start, int end)
        {
            for (int r = start; r < end; r++)
            {
                long o = (long)r * cols;
                var xr = new ReadOnlySpan<float>(px + o, cols);
                var yr = new Span<float>(py + o, cols);
                float shift = RowMath.ScaledMax(xr, scale);
                RowMath.ScaleShift(xr, scale, shift, yr);   // x is fully read here, so y may alias it
                TensorPrimitives.Exp(yr, yr);
                TensorPrimitives.Multiply(yr, 1f / TensorPrimitives.Sum(yr), yr);
            }
        }
    }

    private readonly struct BackwardKernel(float* py, float* pdy, float* pdx, int cols, float scale) : IRowChunkKernel
    {
        public void Execute(int chunk, int start, int end)
        {
            for (int r = start; r < end; r++)
            {
                long o = (long)r * cols;
                var yr = new ReadOnlySpan<float>(py + o, cols);
                var dyr = new ReadOnlySpan<float>(pdy + o, cols);
                var dxr = new Span<float>(pdx + o, cols);
                // Each element of dy is read before the same element of dx is written, so dx may be dy.
                RowMath.SoftmaxGrad(dyr, yr, TensorPrimitives.Dot(dyr, yr), scale, dxr);
            }
        }
    }
}
