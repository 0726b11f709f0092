using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using CrateIL.Compute.Cpu;
using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;

namespace CrateIL.Nn.Layers;

/// <summary>Dropout on the host: the hash computed eight lanes at a time (Vector256 integer ops), split over threads.</summary>
internal static unsafe class DropoutCpu
{
    public static void Apply(CpuDevice device, Tensor x, Tensor y, DropoutArgs args) =>
        CpuParallel.For(device, (int)x.Length, CpuParallel.ElementGrain, new Kernel(x.HostPointer, y.HostPointer, args), align: 16);

    private readonly struct Kernel(float* x, float* y, DropoutArgs args) : IRangeKernel
    {
        private readonly float* _x = x, _y = y;
        private readonly DropoutArgs _args = args;

        public void Execute(int start, int count) => Range(_x, _y, start, start + count, _args);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Range(float* x, float* y, int start, int end, in DropoutArgs a)
    {
        int i = start;
        if (Vector256.IsHardwareAccelerated)
        {
            var k0 = Vector256.Create(a.K0);
            var k1 = Vector256.Create(a.K1);
            var threshold = Vector256.Create(a.Threshold);
            var scale = Vector256.Create(a.Scale);
            var lanes = Vector256.Create(0u, 1u, 2u, 3u, 4u, 5u, 6u, 7u);
            for (; i <= end - 8; i += 8)
            {
                var h = DropoutHash.Hash(Vector256.Create((uint)i) + lanes, k0, k1);
                var keep = Vector256.GreaterThanOrEqual(h, threshold).AsSingle();
                Vector256.Store(Vector256.ConditionalSelect(keep, Vector256.Load(x + i) * scale, Vector256<float>.Zero), y + i);
            }
        }
        for (; i < end; i++)
            y[i] = DropoutHash.Hash((uint)i, a.K0, a.K1) >= a.Threshold ? x[i] * a.Scale : 0f;
    }
}
