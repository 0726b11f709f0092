using ILGPU;
using ILGPU.Algorithms;

namespace CrateIL.Compute.Ops;

/// <summary>
/// Shared-memory tree reductions across one explicitly grouped ILGPU group, for use inside kernels. Portable by
/// construction: plain shared memory and <see cref="Group.Barrier"/> only (no atomics, no group/warp collectives,
/// which fail to build on PoCL and on some OpenCL GPUs). The group size must be a power of two ≤
/// <see cref="MaxGroupSize"/>; the shared buffers are allocated at that maximum and only the first Group.DimX
/// entries are used. Every thread of the group must call these (they contain barriers).
/// </summary>
internal static class GroupReduce
{
    /// <summary>Largest group the trees support (the shared allocation size).</summary>
    public const int MaxGroupSize = 256;

    /// <summary>Σ of <paramref name="value"/> over the group, returned to every thread.</summary>
    public static float Sum(ArrayView<float> shared, float value)
    {
        int tid = Group.IdxX;
        shared[tid] = value;
        Group.Barrier();
        for (int s = Group.DimX >> 1; s > 0; s >>= 1)
        {
            if (tid < s) shared[tid] += shared[tid + s];
            Group.Barrier();
        }
        float result = shared[0];
        // Everyone has read the result before the buffer can be reused by the next reduction.
        Group.Barrier();
        return result;
    }

    /// <summary>Max of <paramref name="value"/> over the group, returned to every thread.</summary>
    public static float Max(ArrayView<float> shared, float value)
    {
        int tid = Group.IdxX;
        shared[tid] = value;
        Group.Barrier();
        for (int s = Group.DimX >> 1; s > 0; s >>= 1)
        {
            if (tid < s) shared[tid] = XMath.Max(shared[tid], shared[tid + s]);
            Group.Barrier();
        }
        float result = shared[0];
        Group.Barrier();
        return result;
    }

    /// <summary>Two sums at once (one tree, two buffers): saves a barrier chain when a row needs both.</summary>
    public static FloatPair Sum2(ArrayView<float> sharedA, ArrayView<float> sharedB, float a, float b)
    {
        int tid = Group.IdxX;
        sharedA[tid] = a;
        sharedB[tid] = b;
        Group.Barrier();
        for (int s = Group.DimX >> 1; s > 0; s >>= 1)
        {
            if (tid < s)
            {
                sharedA[tid] += sharedA[tid + s];
                sharedB[tid] += sharedB[tid + s];
            }
            Group.Barrier();
        }
        var result = new FloatPair(sharedA[0], sharedB[0]);
        Group.Barrier();
        return result;
    }
}

/// <summary>Two floats returned from a kernel helper (plain struct: no refs cross function boundaries in kernels).</summary>
internal readonly struct FloatPair(float a, float b)
{
    public readonly float A = a;
    public readonly float B = b;
}
