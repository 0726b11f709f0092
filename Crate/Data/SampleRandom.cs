namespace CrateIL.Crate.Data;

/// <summary>
/// A small counter-based random stream (SplitMix64) for augmentation and procedural data. A stream is a pure function of
/// the keys it is created from, so what a sample draws depends only on (seed, epoch, index), never on which thread or in
/// which order the samples are produced.
/// </summary>
public struct SampleRandom
{
    private ulong _state;

    public SampleRandom(ulong state) => _state = state;

    /// <summary>The stream for one sample: keyed by a seed and up to two further integers (e.g. epoch and index).</summary>
    public static SampleRandom For(long seed, long a, long b = 0)
    {
        ulong s = Mix((ulong)seed + 0x9E3779B97F4A7C15UL);
        s = Mix(s ^ (ulong)a * 0xD1B54A32D192ED03UL);
        s = Mix(s ^ (ulong)b * 0xAEF17502108EF2D9UL);
        return new SampleRandom(s);
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong NextUInt64()
    {
        _state += 0x9E3779B97F4A7C15UL;
        return Mix(_state);
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in [lo, hi).</summary>
    public double Uniform(double lo, double hi) => lo + (hi - lo) * NextDouble();

    /// <summary>Uniform integer in [0, n) (n &gt; 0), by a 64-bit multiply-shift (bias below 2^-32).</summary>
    public int NextInt(int n)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n), $"range size {n} must be positive");
        return (int)(((NextUInt64() >> 32) * (ulong)n) >> 32);
    }

    /// <summary>Uniform integer in [lo, hi] inclusive.</summary>
    public int NextInt(int lo, int hi) => lo + NextInt(hi - lo + 1);

    /// <summary>True with probability p.</summary>
    public bool Bernoulli(double p) => NextDouble() < p;

    /// <summary>A standard normal draw (Box–Muller, one value per call).</summary>
    public double NextGaussian()
    {
        double u1 = 1.0 - NextDouble(), u2 = NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }
}
