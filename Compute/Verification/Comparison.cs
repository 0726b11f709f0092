namespace CrateIL.Compute.Verification;

/// <summary>
/// The outcome of comparing a float32 result with its float64 expectation under a <see cref="Tolerance"/>: the worst
/// element (largest excess over the bound), how many elements fail, and the error figures a report prints.
/// </summary>
/// <param name="MaxAbsError">max |a − e| over all elements (∞ when a NaN or a wrong infinity appears).</param>
/// <param name="MaxRelError">normwise relative error max |a − e| / max |e| (the scale the tolerances are set against).</param>
/// <param name="WorstRatio">max |a − e| / (Abs + Rel·|e|): at most 1 where every element passes.</param>
public readonly record struct Comparison(int Length, int Failures, int WorstIndex, int FirstFailure, double WorstActual,
    double WorstExpected, double MaxAbsError, double MaxRelError, double WorstRatio)
{
    public bool Passed => Failures == 0;

    /// <summary>
    /// Element-wise comparison. NaN, or an infinity where a finite value is expected (or the reverse), fails; equal
    /// infinities pass. A length mismatch fails every element.
    /// </summary>
    public static Comparison Of(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected, Tolerance tol)
    {
        if (actual.Length != expected.Length)
            return new Comparison(Math.Max(actual.Length, expected.Length), Math.Max(actual.Length, expected.Length), -1, -1,
                double.NaN, double.NaN, double.PositiveInfinity, double.PositiveInfinity, double.PositiveInfinity);
        int worst = -1, bad = 0, firstBad = -1;
        double worstExcess = double.NegativeInfinity, maxAbs = 0, scale = 0, worstRatio = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            double a = actual[i], e = expected[i];
            double bound = tol.Abs + tol.Rel * Math.Abs(e);
            double excess, err;
            if (double.IsInfinity(a) && double.IsInfinity(e) && Math.Sign(a) == Math.Sign(e)) { excess = double.NegativeInfinity; err = 0; }
            else if (double.IsNaN(a) || double.IsInfinity(a) != double.IsInfinity(e)) { excess = double.PositiveInfinity; err = double.PositiveInfinity; }
            else { err = Math.Abs(a - e); excess = err - bound; }
            if (excess > worstExcess) { worstExcess = excess; worst = i; }
            if (excess > 0) { bad++; if (firstBad < 0) firstBad = i; }
            maxAbs = Math.Max(maxAbs, err);
            if (!double.IsInfinity(e)) scale = Math.Max(scale, Math.Abs(e));
            worstRatio = Math.Max(worstRatio, bound > 0 ? err / bound : err > 0 ? double.PositiveInfinity : 0);
        }
        return new Comparison(actual.Length, bad, worst, firstBad,
            worst >= 0 ? actual[worst] : double.NaN, worst >= 0 ? expected[worst] : double.NaN,
            maxAbs, scale > 0 ? maxAbs / scale : maxAbs, worstRatio);
    }

    public static Comparison Of(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, Tolerance tol)
    {
        var e = new double[expected.Length];
        for (int i = 0; i < e.Length; i++) e[i] = expected[i];
        return Of(actual, e, tol);
    }
}
