namespace CrateIL.Testing;

/// <summary>Deterministic random test data (the library's <see cref="SampleData"/>, which the self-test uses too).</summary>
public static class TestData
{
    public static float[] Uniform(int seed, long n, float lo = -1f, float hi = 1f) => SampleData.Uniform(seed, n, lo, hi);

    public static float[] Normal(int seed, long n, float std = 1f, float mean = 0f) => SampleData.Normal(seed, n, std, mean);

    public static double[] ToDouble(ReadOnlySpan<float> x) => SampleData.ToDouble(x);

    public static int[] Labels(int seed, int n, int classes) => SampleData.Labels(seed, n, classes);
}
