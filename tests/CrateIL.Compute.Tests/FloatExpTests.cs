using CrateIL.Compute.Cpu;
using Xunit;

namespace CrateIL.Compute.Tests;

public class FloatExpTests
{
    /// <summary>Distance in units in the last place between a float and the correctly rounded float of a double.</summary>
    private static long UlpDistance(float actual, double exact)
    {
        float rounded = (float)exact;
        int a = BitConverter.SingleToInt32Bits(actual), b = BitConverter.SingleToInt32Bits(rounded);
        return Math.Abs((long)a - b);
    }

    /// <summary>Within 2 ulp of the correctly rounded e^x over the whole normal-result range (dense near 0, where
    /// softmax shifts put most arguments, plus a sweep of every exponent).</summary>
    [Fact]
    public void WithinTwoUlpOfMathExpOverTheFloatRange()
    {
        var rng = new Random(11);
        long worst = 0;
        float worstX = 0;
        void Check(float x)
        {
            long d = UlpDistance(FloatExp.Exp(x), Math.Exp(x));
            if (d > worst) (worst, worstX) = (d, x);
        }
        for (int i = 0; i < 200_000; i++) Check(FloatExp.Min + (FloatExp.Max - FloatExp.Min) * rng.NextSingle());
        for (int i = 0; i < 100_000; i++) Check(-20f * rng.NextSingle());
        for (int e = -40; e <= 6; e++) { Check(MathF.ScaleB(1f, e)); Check(-MathF.ScaleB(1f, e)); }
        Check(0f); Check(-0f); Check(FloatExp.Min); Check(FloatExp.Max); Check(88.7f); Check(-87.3f);
        Assert.True(worst <= 2, $"{worst} ulp at x = {worstX:R}");
    }

    [Fact]
    public void SpecialValues()
    {
        Assert.Equal(1f, FloatExp.Exp(0f));
        Assert.Equal(0f, FloatExp.Exp(-100f));
        Assert.Equal(0f, FloatExp.Exp(float.NegativeInfinity));
        Assert.Equal(float.PositiveInfinity, FloatExp.Exp(89f));
        Assert.Equal(float.PositiveInfinity, FloatExp.Exp(float.PositiveInfinity));
        Assert.True(float.IsNaN(FloatExp.Exp(float.NaN)));
        Assert.True(float.IsFinite(FloatExp.Exp(FloatExp.Max)));
    }

    /// <summary>
    /// The softmax variant is bit-identical to <see cref="FloatExp.Exp(float)"/> from below the flush threshold up to
    /// 88.37 (a dense sweep of the shifted-score range [−90, 1] and every exponent of both signs), NaN stays NaN, and
    /// above that it returns +∞.
    /// </summary>
    [Fact]
    public void NonPositiveVariantIsBitIdenticalWhereDefined()
    {
        var rng = new Random(12);
        void Same(float x) => Assert.True(
            BitConverter.SingleToInt32Bits(FloatExp.ExpNonPositive(x)) == BitConverter.SingleToInt32Bits(FloatExp.Exp(x)),
            $"x = {x:R}: {FloatExp.ExpNonPositive(x):R} vs {FloatExp.Exp(x):R}");
        for (int i = 0; i < 300_000; i++) Same(-90f + 91f * rng.NextSingle());
        for (int i = 0; i < 100_000; i++) Same(-100f + 188.37f * rng.NextSingle());
        for (int e = -40; e <= 6; e++) { Same(MathF.ScaleB(1f, e)); Same(-MathF.ScaleB(1f, e)); }
        Same(0f); Same(-0f); Same(FloatExp.Min); Same(88.37f); Same(float.NegativeInfinity);
        Assert.True(float.IsNaN(FloatExp.ExpNonPositive(float.NaN)));
        Assert.Equal(float.PositiveInfinity, FloatExp.ExpNonPositive(89f));
    }
}
