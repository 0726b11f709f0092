namespace CrateIL.Compute.Ops;

/// <summary>
/// Float64 activations and their exact derivatives: the ground truth the float backends are tested against, and
/// a base for float64 layer references. Derivatives at kinks follow the float kernels (0 at x = 0 for ReLU,
/// 0 at |x| = t for the soft thresholds).
/// </summary>
internal static class ActivationReference
{
    private const double Sqrt2OverPi = 0.79788456080286535588; // √(2/π)
    private const double GeluCubic = 0.044715;
    private const double InvSqrtPi = 0.56418958354775628695;   // 1/√π
    private const double InvSqrt2Pi = 0.39894228040143267794;  // 1/√(2π)
    private const double Sqrt2 = 1.41421356237309504880;

    public static double Relu(double x) => x > 0 ? x : 0;
    public static double ReluDerivative(double x) => x > 0 ? 1 : 0;

    public static double SoftThreshold(double x, double t) => x > t ? x - t : 0;
    public static double SoftThresholdDerivative(double x, double t) => x > t ? 1 : 0;

    public static double SoftThresholdSymmetric(double x, double t) => x > t ? x - t : x < -t ? x + t : 0;
    public static double SoftThresholdSymmetricDerivative(double x, double t) => x > t || x < -t ? 1 : 0;

    public static double GeluTanh(double x) => 0.5 * x * (1 + Math.Tanh(Sqrt2OverPi * (x + GeluCubic * x * x * x)));

    /// <summary>d/dx of the tanh form: 0.5(1 + tanh u) + 0.5x(1 − tanh²u)·√(2/π)(1 + 3·0.044715x²).</summary>
    public static double GeluTanhDerivative(double x)
    {
        double th = Math.Tanh(Sqrt2OverPi * (x + GeluCubic * x * x * x));
        return 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * Sqrt2OverPi * (1 + 3 * GeluCubic * x * x);
    }

    public static double GeluErf(double x) => x * NormalCdf(x);

    /// <summary>d/dx[x·Φ(x)] = Φ(x) + x·φ(x).</summary>
    public static double GeluErfDerivative(double x) => NormalCdf(x) + x * InvSqrt2Pi * Math.Exp(-0.5 * x * x);

    public static double Gelu(double x, GeluForm form) => form == GeluForm.Tanh ? GeluTanh(x) : GeluErf(x);
    public static double GeluDerivative(double x, GeluForm form) => form == GeluForm.Tanh ? GeluTanhDerivative(x) : GeluErfDerivative(x);

    public static double SoftThreshold(double x, double t, ThresholdKind kind) =>
        kind == ThresholdKind.OneSided ? SoftThreshold(x, t) : SoftThresholdSymmetric(x, t);

    public static double SoftThresholdDerivative(double x, double t, ThresholdKind kind) =>
        kind == ThresholdKind.OneSided ? SoftThresholdDerivative(x, t) : SoftThresholdSymmetricDerivative(x, t);

    /// <summary>Standard normal CDF Φ(x) = ½·erfc(−x/√2) (accurate in both tails).</summary>
    public static double NormalCdf(double x) => 0.5 * Erfc(-x / Sqrt2);

    /// <summary>
    /// erf(x) to ~1e-15 relative: for |x| &lt; 2.5 the series erf(x) = (2/√π)e^(−x²)·Σ (2x²)ⁿ·x/(1·3·…·(2n+1)),
    /// whose terms are all positive (no cancellation, unlike the alternating Taylor series); beyond, 1 − erfc(x).
    /// </summary>
    public static double Erf(double x)
    {
        if (double.IsNaN(x)) return double.NaN;
        double a = Math.Abs(x);
        double r = a < 2.5 ? ErfSeries(a) : 1 - ErfcContinuedFraction(a);
        return x < 0 ? -r : r;
    }

    /// <summary>erfc(x) = 1 − erf(x), with full relative accuracy in the upper tail.</summary>
    public static double Erfc(double x)
    {
        if (double.IsNaN(x)) return double.NaN;
        // The continued fraction keeps full relative accuracy in the tail, where 1 − erf(x) would cancel.
        if (x >= 1) return ErfcContinuedFraction(x);
        if (x <= -1) return 2 - ErfcContinuedFraction(-x);
        return 1 - (x < 0 ? -ErfSeries(-x) : ErfSeries(x));
    }

    private static double ErfSeries(double a)
    {
        double x2 = a * a, term = a, sum = a;
        for (int n = 1; n < 200; n++)
        {
            term *= 2 * x2 / (2 * n + 1);
            sum += term;
            if (term < 1e-17 * sum) break;
        }
        return 2 * InvSqrtPi * Math.Exp(-x2) * sum;
    }

    /// <summary>
    /// erfc(a) = e^(−a²)/√π · 1/(a + (1/2)/(a + 1/(a + (3/2)/(a + …)))), a ≥ 1, evaluated bottom-up; 300 levels
    /// reach double precision from a = 1 up (checked against tabulated values in the tests).
    /// </summary>
    private static double ErfcContinuedFraction(double a)
    {
        if (double.IsPositiveInfinity(a)) return 0;
        double f = a;
        for (int k = 300; k >= 1; k--) f = a + 0.5 * k / f;
        return Math.Exp(-a * a) * InvSqrtPi / f;
    }
}
