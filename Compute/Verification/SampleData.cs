namespace CrateIL.Compute.Verification;

/// <summary>Deterministic pseudo-random data for the self-test and the unit tests (same seed, same numbers).</summary>
public static class SampleData
{
    /// <summary>Uniform in [lo, hi).</summary>
    public static float[] Uniform(int seed, long n, float lo = -1f, float hi = 1f)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (long i = 0; i < n; i++) a[i] = lo + (float)r.NextDouble() * (hi - lo);
        return a;
    }

    /// <summary>Normal (Box–Muller) with the given standard deviation and mean.</summary>
    public static float[] Normal(int seed, long n, float std = 1f, float mean = 0f)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (long i = 0; i < n; i++)
        {
            double u1 = 1.0 - r.NextDouble(), u2 = r.NextDouble();
            a[i] = mean + std * (float)(Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
        return a;
    }

    public static double[] ToDouble(ReadOnlySpan<float> x)
    {
        var d = new double[x.Length];
        for (int i = 0; i < x.Length; i++) d[i] = x[i];
        return d;
    }

    public static int[] Labels(int seed, int n, int classes)
    {
        var r = new Random(seed);
        var a = new int[n];
        for (int i = 0; i < n; i++) a[i] = r.Next(classes);
        return a;
    }
}
