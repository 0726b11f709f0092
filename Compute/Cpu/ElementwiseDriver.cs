using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using CrateIL.Compute.Devices;

namespace CrateIL.Compute.Cpu;

/// <summary>
/// y = f(x), element by element. The math is written once per op as a struct (scalar and Vector256 forms);
/// <see cref="ElementwiseDriver"/> owns the vector loop, the scalar tail and threading. Instance members (not
/// static ones) so an op can carry parameters such as a threshold; the JIT specialises the driver per struct and
/// keeps the fields in registers.
/// </summary>
internal interface IUnaryOperator
{
    float Invoke(float x);
    Vector256<float> Invoke(Vector256<float> x);
}

/// <summary>z = f(a, b), element by element (e.g. a backward pass: dx = f(dy, x)).</summary>
internal interface IBinaryOperator
{
    float Invoke(float a, float b);
    Vector256<float> Invoke(Vector256<float> a, Vector256<float> b);
}

/// <summary>
/// Drives operator structs over float buffers: 4×-unrolled Vector256 loop, single-vector loop, scalar tail,
/// split across <see cref="CpuDevice.Threads"/> for large arrays (chunks are cache-line aligned).
/// The output may be the same buffer as an input (in place); partially overlapping buffers are not supported.
/// </summary>
internal static unsafe class ElementwiseDriver
{
    public static void Unary<TOp>(CpuDevice device, float* x, float* y, int n, TOp op, int grain = CpuParallel.ElementGrain)
        where TOp : struct, IUnaryOperator
    {
        var kernel = new UnaryKernel<TOp>(x, y, op);
        CpuParallel.For(device, n, grain, kernel, align: 16);
    }

    public static void Binary<TOp>(CpuDevice device, float* a, float* b, float* z, int n, TOp op, int grain = CpuParallel.ElementGrain)
        where TOp : struct, IBinaryOperator
    {
        var kernel = new BinaryKernel<TOp>(a, b, z, op);
        CpuParallel.For(device, n, grain, kernel, align: 16);
    }

    /// <summary>Single-threaded y[i] = op(x[i]) for i in [0, n).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void UnaryRange<TOp>(float* x, float* y, int n, in TOp op) where TOp : struct, IUnaryOperator
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            int step = Vector256<float>.Count;
            for (; i <= n - 4 * step; i += 4 * step)
            {
                // Load all four before storing so an in-place call (y == x) stays correct.
                var v0 = Vector256.Load(x + i);
                var v1 = Vector256.Load(x + i + step);
                var v2 = Vector256.Load(x + i + 2 * step);
                var v3 = Vector256.Load(x + i + 3 * step);
                Vector256.Store(op.Invoke(v0), y + i);
                Vector256.Store(op.Invoke(v1), y + i + step);
                Vector256.Store(op.Invoke(v2), y + i + 2 * step);
                Vector256.Store(op.Invoke(v3), y + i + 3 * step);
            }
            for (; i <= n - step; i += step)
                Vector256.Store(op.Invoke(Vector256.Load(x + i)), y + i);
        }
        for (; i < n; i++) y[i] = op.Invoke(x[i]);
    }

    /// <summary>Single-threaded z[i] = op(a[i], b[i]) for i in [0, n).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void BinaryRange<TOp>(float* a, float* b, float* z, int n, in TOp op) where TOp : struct, IBinaryOperator
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            int step = Vector256<float>.Count;
            for (; i <= n - 2 * step; i += 2 * step)
            {
                var a0 = Vector256.Load(a + i);
                var b0 = Vector256.Load(b + i);
                var a1 = Vector256.Load(a + i + step);
                var b1 = Vector256.Load(b + i + step);
                Vector256.Store(op.Invoke(a0, b0), z + i);
                Vector256.Store(op.Invoke(a1, b1), z + i + step);
            }
            for (; i <= n - step; i += step)
                Vector256.Store(op.Invoke(Vector256.Load(a + i), Vector256.Load(b + i)), z + i);
        }
        for (; i < n; i++) z[i] = op.Invoke(a[i], b[i]);
    }

    private readonly struct UnaryKernel<TOp>(float* x, float* y, TOp op) : IRangeKernel where TOp : struct, IUnaryOperator
    {
        private readonly float* _x = x, _y = y;
        private readonly TOp _op = op;

        public void Execute(int start, int count) => UnaryRange(_x + start, _y + start, count, _op);
    }

    private readonly struct BinaryKernel<TOp>(float* a, float* b, float* z, TOp op) : IRangeKernel where TOp : struct, IBinaryOperator
    {
        private readonly float* _a = a, _b = b, _z = z;
        private readonly TOp _op = op;

        public void Execute(int start, int count) => BinaryRange(_a + start, _b + start, _z + start, count, _op);
    }
}
