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
}
