using System.Globalization;
using Xunit.Sdk;

namespace CrateIL.Testing;

/// <summary>Element-wise comparisons that report the worst element, its index and the tolerance.</summary>
public static class Check
{
    public static void Close(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected, Tolerance tol, string what)
    {
        if (actual.Length != expected.Length)
            throw new XunitException($"{what}: length {actual.Length} != expected {expected.Length}");
        int worst = -1, bad = 0, firstBad = -1;
        double worstExcess = double.NegativeInfinity;
        for (int i = 0; i < actual.Length; i++)
        {
            double a = actual[i], e = expected[i];
            double excess = double.IsNaN(a) || double.IsInfinity(a) != double.IsInfinity(e)
                ? double.PositiveInfinity
                : Math.Abs(a - e) - (tol.Abs + tol.Rel * Math.Abs(e));
            if (double.IsInfinity(a) && double.IsInfinity(e) && Math.Sign(a) == Math.Sign(e)) excess = double.NegativeInfinity;
            if (excess > worstExcess) { worstExcess = excess; worst = i; }
            if (excess > 0) { bad++; if (firstBad < 0) firstBad = i; }
        }
        if (bad > 0)
            throw new XunitException(string.Create(CultureInfo.InvariantCulture,
                $"{what}: {bad} of {actual.Length} elements outside {tol}; worst at [{worst}]: actual {actual[worst]:R}, expected {expected[worst]:R} (first bad at [{firstBad}])"));
    }

    public static void Close(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, Tolerance tol, string what)
    {
        var e = new double[expected.Length];
        for (int i = 0; i < e.Length; i++) e[i] = expected[i];
        Close(actual, e, tol, what);
    }

    public static void Close(ReadOnlySpan<double> actual, ReadOnlySpan<double> expected, Tolerance tol, string what)
    {
        if (actual.Length != expected.Length)
            throw new XunitException($"{what}: length {actual.Length} != expected {expected.Length}");
        for (int i = 0; i < actual.Length; i++)
            if (!tol.Accepts(actual[i], expected[i]))
                throw new XunitException(string.Create(CultureInfo.InvariantCulture,
                    $"{what}: element [{i}] actual {actual[i]:R}, expected {expected[i]:R}, outside {tol}"));
    }

    public static void Close(double actual, double expected, Tolerance tol, string what)
    {
        if (!tol.Accepts(actual, expected))
            throw new XunitException(string.Create(CultureInfo.InvariantCulture, $"{what}: actual {actual:R}, expected {expected:R}, outside {tol}"));
    }
}
