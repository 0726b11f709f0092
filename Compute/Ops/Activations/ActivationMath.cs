using ILGPU.Algorithms;

namespace CrateIL.Compute.Ops;

/// <summary>
/// Scalar float32 activation math, written once: ILGPU kernels call these directly, and the CPU operator
/// structs use them for the scalar tail (their Vector256 forms follow the same formulas). Only plain arithmetic
/// and <see cref="XMath"/> so every function lowers to PTX and OpenCL C.
/// </summary>
internal static class ActivationMath
{
    /// <summary>√(2/π), the GELU tanh-form scale.</summary>
    public const float Sqrt2OverPi = 0.7978845608028654f;
    /// <summary>The cubic coefficient of the GELU tanh form.</summary>
    public const float GeluCubic = 0.044715f;
    public const float InvSqrt2 = 0.7071067811865476f;
    /// <summary>1/√(2π): the standard normal density at 0.</summary>
    public const float InvSqrt2Pi = 0.3989422804014327f;

    // Abramowitz & Stegun 7.1.26: erfc(z) ≈ t·(a1 + t(a2 + t(a3 + t(a4 + t·a5))))·e^(−z²), t = 1/(1 + p·z), z ≥ 0;
    // |error| ≤ 1.5e-7 on erf.
    public const float ErfP = 0.3275911f;
    public const float ErfA1 = 0.254829592f;
    public const float ErfA2 = -0.284496736f;
    public const float ErfA3 = 1.421413741f;
    public const float ErfA4 = -1.453152027f;
    public const float ErfA5 = 1.061405429f;

    // Near 0 the A&S form computes erf as 1 − (something ≈ 1) and loses ~2e-7 to float cancellation, so
    // |z| < ErfSeriesLimit uses the Taylor series erf(z) = (2/√π)·Σ (−1)ⁿ z^(2n+1)/(n!(2n+1)) through n = 10
    // (next term < 1.2e-9 at the limit).
    public const float ErfSeriesLimit = 1f;
    public const float ErfS0 = 1.1283791670955126f;
    public const float ErfS1 = -0.37612638903183754f;
    public const float ErfS2 = 0.11283791670955126f;
    public const float ErfS3 = -0.026866170645131252f;
    public const float ErfS4 = 0.005223977625442188f;
    public const float ErfS5 = -0.0008548327023450852f;
    public const float ErfS6 = 0.00012055332981789664f;
    public const float ErfS7 = -1.492565035840625e-05f;
    public const float ErfS8 = 1.6462114365889246e-06f;
    public const float ErfS9 = -1.6365844691234924e-07f;
    public const float ErfS10 = 1.4807192815879218e-08f;

    /// <summary>max(x, 0); NaN stays NaN.</summary>
    public static float Relu(float x) => x < 0f ? 0f : x;

    /// <summary>dy·[s > 0], where s is the ReLU input or its output (same sign test).</summary>
    public static float ReluGrad(float dy, float s) => s > 0f ? dy : 0f;

    /// <summary>ReLU(x − t): CRATE's one-sided soft threshold (non-negative ISTA step).</summary>
    public static float SoftThreshold(float x, float t)
    {
        float d = x - t;
        return d < 0f ? 0f : d;
    }

    public static float SoftThresholdGrad(float dy, float x, float t) => x > t ? dy : 0f;

    /// <summary>sign(x)·max(|x| − t, 0): the symmetric soft threshold (t ≥ 0).</summary>
    public static float SoftThresholdSymmetric(float x, float t) => x > t ? x - t : x < -t ? x + t : 0f;

    public static float SoftThresholdSymmetricGrad(float dy, float x, float t) => x > t || x < -t ? dy : 0f;

    /// <summary>dy·[y ≠ 0] for y = the symmetric soft threshold's output.</summary>
    public static float NonZeroGrad(float dy, float y) => y != 0f ? dy : 0f;

    /// <summary>
    /// The tanh-form GELU gate 0.5·(1 + tanh(u)), u = √(2/π)(x + 0.044715x³), computed as the logistic σ(2u)
    /// (identical function; no cancellation and no separate tanh).
    /// </summary>
    public static float GeluTanhGate(float x)
    {
        float u = Sqrt2OverPi * x * (1f + GeluCubic * x * x);
        return 1f / (1f + XMath.Exp(-2f * u));
    }

    public static float GeluTanh(float x) => x * GeluTanhGate(x);

    /// <summary>dy·d/dx[x·σ(2u)] = dy·(s + 2x·s(1 − s)·u'), u' = √(2/π)(1 + 3·0.044715x²).</summary>
    public static float GeluTanhGrad(float dy, float x)
    {
        float s = GeluTanhGate(x);
        float du = Sqrt2OverPi * (1f + 3f * GeluCubic * x * x);
        return dy * (s + 2f * x * s * (1f - s) * du);
    }

    /// <summary>
    /// Standard normal CDF Φ(x): ½ + ½·erf(x/√2) by the series near 0, else A&amp;S 7.1.26 applied to erfc(|x|/√2); <paramref name="expHalfSquare"/> must be
    /// e^(−x²/2) (shared with the density in the backward pass). The tail is computed directly, so Φ(x) for
    /// negative x has no cancellation.
    /// </summary>
    public static float NormalCdf(float x, float expHalfSquare)
    {
        float zs = x * InvSqrt2;
        if (XMath.Abs(zs) < ErfSeriesLimit) return 0.5f + 0.5f * ErfSeries(zs);
        float z = XMath.Abs(zs);
        float t = 1f / (1f + ErfP * z);
        float poly = t * (ErfA1 + t * (ErfA2 + t * (ErfA3 + t * (ErfA4 + t * ErfA5))));
        float tail = 0.5f * poly * expHalfSquare;
        return x >= 0f ? 1f - tail : tail;
    }

    /// <summary>The odd Taylor polynomial of erf, for |z| &lt; <see cref="ErfSeriesLimit"/>.</summary>
    public static float ErfSeries(float z)
    {
        float z2 = z * z;
        float p = ErfS9 + z2 * ErfS10;
        p = ErfS8 + z2 * p;
        p = ErfS7 + z2 * p;
        p = ErfS6 + z2 * p;
        p = ErfS5 + z2 * p;
        p = ErfS4 + z2 * p;
        p = ErfS3 + z2 * p;
        p = ErfS2 + z2 * p;
        p = ErfS1 + z2 * p;
        p = ErfS0 + z2 * p;
        return z * p;
    }

    /// <summary>erf(x): Taylor series near 0, A&amp;S 7.1.26 beyond (|error| ≤ 1.5e-7 plus float rounding).</summary>
    public static float Erf(float x)
    {
        float z = XMath.Abs(x);
        if (z < ErfSeriesLimit) return ErfSeries(x);
        float t = 1f / (1f + ErfP * z);
        float poly = t * (ErfA1 + t * (ErfA2 + t * (ErfA3 + t * (ErfA4 + t * ErfA5))));
        float r = 1f - poly * XMath.Exp(-z * z);
        return x < 0f ? -r : r;
    }

    /// <summary>x·Φ(x) = 0.5x(1 + erf(x/√2)).</summary>
    public static float GeluErf(float x) => x * NormalCdf(x, XMath.Exp(-0.5f * x * x));

    /// <summary>dy·(Φ(x) + x·φ(x)).</summary>
    public static float GeluErfGrad(float dy, float x)
    {
        float e = XMath.Exp(-0.5f * x * x);
        return dy * (NormalCdf(x, e) + x * e * InvSqrt2Pi);
    }
}
