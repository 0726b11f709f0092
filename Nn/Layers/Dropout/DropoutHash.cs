using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace CrateIL.Nn.Layers;

/// <summary>
/// The dropout mask as a stateless counter-based hash: element i is kept iff Hash(i, key) ≥ threshold, where the
/// 64-bit key comes from (seed, step). Plain 32-bit integer arithmetic (wrapping multiply, xor, shifts) gives the
/// same bits in C# on the host and in ILGPU kernels (PTX, OpenCL, CPU accelerator), so every backend draws the same
/// mask, and Backward regenerates it instead of storing it.
/// </summary>
internal static class DropoutHash
{
    /// <summary>The two 32-bit key halves for one (seed, step): SplitMix64 of the seed mixed with the step.</summary>
    public static (uint K0, uint K1) Key(ulong seed, long step)
    {
        ulong z = SplitMix64(seed ^ SplitMix64(unchecked((ulong)step + 0x9E3779B97F4A7C15UL)));
        return ((uint)z, (uint)(z >> 32));
    }

    /// <summary>Elements whose hash is below this are dropped: round(p·2³²), so P(drop) = p to within 2⁻³².</summary>
    public static uint Threshold(float p) => (uint)Math.Min(uint.MaxValue, Math.Round(p * 4294967296.0));

    /// <summary>The keep factor 1/(1 − p) (inverted dropout: the expectation of the output equals the input).</summary>
    public static float Scale(float p) => (float)(1.0 / (1.0 - p));

    /// <summary>Two rounds of a 32-bit avalanche mix (Wellons' lowbias32 constants) keyed by k0 and k1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Hash(uint index, uint k0, uint k1)
    {
        uint h = Mix(index ^ k0);
        return Mix(h + k1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Mix(uint x)
    {
        x ^= x >> 16;
        x *= 0x21F0AAADu;
        x ^= x >> 15;
        x *= 0x735A2D97u;
        x ^= x >> 15;
        return x;
    }

    /// <summary><see cref="Hash(uint, uint, uint)"/> of eight consecutive indices.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<uint> Hash(Vector256<uint> index, Vector256<uint> k0, Vector256<uint> k1)
    {
        var h = Mix(index ^ k0);
        return Mix(h + k1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> Mix(Vector256<uint> x)
    {
        x ^= Vector256.ShiftRightLogical(x, 16);
        x *= Vector256.Create(0x21F0AAADu);
        x ^= Vector256.ShiftRightLogical(x, 15);
        x *= Vector256.Create(0x735A2D97u);
        x ^= Vector256.ShiftRightLogical(x, 15);
        return x;
    }

    private static ulong SplitMix64(ulong z)
    {
        unchecked
        {
            z += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
    }
}
