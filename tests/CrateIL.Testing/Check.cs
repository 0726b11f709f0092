using System.Globalization;
using CrateIL.Compute.Verification;
using Xunit.Sdk;

namespace CrateIL.Testing;

/// <summary>Element-wise comparisons that report the worst element, its index and the tolerance.</summary>
public static class Check
{
    public static void Close(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected, Tolerance tol, string what)
    {
        if (actual.Length != expected.Length)
            throw new XunitException($"{what}: length {actual.Length} != expected {expected.Length}");
        var c = Comparison.Of(actual, expected, tol);
        if (!c.Passed)
            throw new XunitException(string.Create(CultureInfo.InvariantCulture,
                $"{what}: {c.Failures} of {c.Length} elements outside {tol}; worst at [{c.WorstIndex}]: actual {actual[c.WorstIndex]:R}, expected {expected[c.WorstIndex]:R} (first bad at [{c.FirstFailure}])"));
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
