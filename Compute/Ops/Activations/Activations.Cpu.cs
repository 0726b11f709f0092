using System.Runtime.Intrinsics;
using CrateIL.Compute.Cpu;
using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;

namespace CrateIL.Compute.Ops;

/// <summary>CPU SIMD activations: operator structs (scalar via <see cref="ActivationMath"/>, plus Vector256) run by <see cref="ElementwiseDriver"/>.</summary>
internal static unsafe class ActivationsCpu
{
    /// <summary>GELU costs an exp and a division per element, so smaller arrays already pay for a second thread.</summary>
    private const int TranscendentalGrain = 1 << 13;

    public static void Relu(CpuDevice d, Tensor x, Tensor y) =>
        ElementwiseDriver.Unary(d, x.HostPointer, y.HostPointer, (int)x.Length, new ReluOp());

    public static void ReluBackward(CpuDevice d, Tensor dy, Tensor saved, Tensor dx) =>
        ElementwiseDriver.Binary(d, dy.HostPointer, saved.HostPointer, dx.HostPointer, (int)dy.Length, new PositiveMaskOp());

    public static void SoftThreshold(CpuDevice d, Tensor x, Tensor y, float t, ThresholdKind kind)
    {
        if (kind == ThresholdKind.OneSided)
            ElementwiseDriver.Unary(d, x.HostPointer, y.HostPointer, (int)x.Length, new SoftThresholdOp(t));
        else
            ElementwiseDriver.Unary(d, x.HostPointer, y.HostPointer, (int)x.Length, new SymmetricSoftThresholdOp(t));
    }

    public static void SoftThresholdBackward(CpuDevice d, Tensor dy, Tensor x, Tensor dx, float t, ThresholdKind kind)
    {
        if (kind == ThresholdKind.OneSided)
            ElementwiseDriver.Binary(d, dy.HostPointer, x.HostPointer, dx.HostPointer, (int)dy.Length, new SoftThresholdGradOp(t));
        else
            ElementwiseDriver.Binary(d, dy.HostPointer, x.HostPointer, dx.HostPointer, (int)dy.Length, new SymmetricSoftThresholdGradOp(t));
    }

    public static void SoftThresholdBackwardFromOutput(CpuDevice d, Tensor dy, Tensor y, Tensor dx, ThresholdKind kind)
    {
        if (kind == ThresholdKind.OneSided)
            ElementwiseDriver.Binary(d, dy.HostPointer, y.HostPointer, dx.HostPointer, (int)dy.Length, new PositiveMaskOp());
        else
            ElementwiseDriver.Binary(d, dy.HostPointer, y.HostPointer, dx.HostPointer, (int)dy.Length, new NonZeroMaskOp());
    }

    public static void Gelu(CpuDevice d, Tensor x, Tensor y, GeluForm form)
    {
        if (form == GeluForm.Tanh)
            ElementwiseDriver.Unary(d, x.HostPointer, y.HostPointer, (int)x.Length, new GeluTanhOp(), TranscendentalGrain);
        else
            ElementwiseDriver.Unary(d, x.HostPointer, y.HostPointer, (int)x.Length, new GeluErfOp(), TranscendentalGrain);
    }

    public static void GeluBackward(CpuDevice d, Tensor dy, Tensor x, Tensor dx, GeluForm form)
    {
        if (form == GeluForm.Tanh)
            ElementwiseDriver.Binary(d, dy.HostPointer, x.HostPointer, dx.HostPointer, (int)dy.Length, new GeluTanhGradOp(), TranscendentalGrain);
        else
            ElementwiseDriver.Binary(d, dy.HostPointer, x.HostPointer, dx.HostPointer, (int)dy.Length, new GeluErfGradOp(), TranscendentalGrain);
    }
}

internal readonly struct ReluOp : IUnaryOperator
{
    public float Invoke(float x) => ActivationMath.Relu(x);
    public Vector256<float> Invoke(Vector256<float> x) =>
        Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256<float>.Zero), Vector256<float>.Zero, x);
}

/// <summary>dy·[s > 0]: ReLU backward from its input or output, one-sided soft threshold backward from its output.</summary>
internal readonly struct PositiveMaskOp : IBinaryOperator
{
    public float Invoke(float dy, float s) => ActivationMath.ReluGrad(dy, s);
    public Vector256<float> Invoke(Vector256<float> dy, Vector256<float> s) =>
        Vector256.BitwiseAnd(dy, Vector256.GreaterThan(s, Vector256<float>.Zero));
}

/// <summary>dy·[y ≠ 0]: symmetric soft threshold backward from its output.</summary>
internal readonly struct NonZeroMaskOp : IBinaryOperator
{
    public float Invoke(float dy, float y) => ActivationMath.NonZeroGrad(dy, y);
    public Vector256<float> Invoke(Vector256<float> dy, Vector256<float> y) =>
        Vector256.AndNot(dy, Vector256.Equals(y, Vector256<float>.Zero));
}

internal readonly struct SoftThresholdOp(float t) : IUnaryOperator
{
    private readonly float _t = t;
    public float Invoke(float x) => ActivationMath.SoftThreshold(x, _t);
    public Vector256<float> Invoke(Vector256<float> x)
    {
        var d = x - Vector256.Create(_t);
        return Vector256.ConditionalSelect(Vector256.LessThan(d, Vector256<float>.Zero), Vector256<float>.Zero, d);
    }
}

internal readonly struct SoftThresholdGradOp(float t) : IBinaryOperator
{
    private readonly float _t = t;
    public float Invoke(float dy, float x) => ActivationMath.SoftThresholdGrad(dy, x, _t);
    public Vector256<float> Invoke(Vector256<float> dy, Vector256<float> x) =>
        Vector256.BitwiseAnd(dy, Vector256.GreaterThan(x, Vector256.Create(_t)));
}

internal readonly struct SymmetricSoftThresholdOp(float t) : IUnaryOperator
{
    private readonly float _t = t;
    public float Invoke(float x) => ActivationMath.SoftThresholdSymmetric(x, _t);
    public Vector256<float> Invoke(Vector256<float> x)
    {
        var t = Vector256.Create(_t);
        var above = Vector256.BitwiseAnd(x - t, Vector256.GreaterThan(x, t));
        var below = Vector256.BitwiseAnd(x + t, Vector256.LessThan(x, -t));
        return above | below;
    }
}

internal readonly struct SymmetricSoftThresholdGradOp(float t) : IBinaryOperator
{
    private readonly float _t = t;
    public float Invoke(float dy, float x) => ActivationMath.SoftThresholdSymmetricGrad(dy, x, _t);
    public Vector256<float> Invoke(Vector256<float> dy, Vector256<float> x)
    {
        var t = Vector256.Create(_t);
        return Vector256.BitwiseAnd(dy, Vector256.GreaterThan(x, t) | Vector256.LessThan(x, -t));
    }
}

/// <summary>Vector256 forms of the GELU gates; same formulas as <see cref="ActivationMath"/>.</summary>
internal static class GeluVector
{
    public static Vector256<float> TanhGate(Vector256<float> x)
    {
        var one = Vector256<float>.One;
        var inner = Vector256.MultiplyAddEstimate(Vector256.Create(ActivationMath.GeluCubic), x * x, one);
        var minus2u = Vector256.Create(-2f * ActivationMath.Sqrt2OverPi) * x * inner;
        return one / (one + Vector256.Exp(minus2u));
    }

    /// <summary>Φ(x) given e = e^(−x²/2); see <see cref="ActivationMath.NormalCdf"/>.</summary>
    public static Vector256<float> NormalCdf(Vector256<float> x, Vector256<float> expHalfSquare)
    {
        var one = Vector256<float>.One;
        var z = Vector256.Abs(x) * Vector256.Create(ActivationMath.InvSqrt2);
        var t = one / Vector256.MultiplyAddEstimate(Vector256.Create(ActivationMath.ErfP), z, one);
        var p = Vector256.MultiplyAddEstimate(t, Vector256.Create(ActivationMath.ErfA5), Vector256.Create(ActivationMath.ErfA4));
        p = Vector256.MultiplyAddEstimate(t, p, Vector256.Create(ActivationMath.ErfA3));
        p = Vector256.MultiplyAddEstimate(t, p, Vector256.Create(ActivationMath.ErfA2));
        p = Vector256.MultiplyAddEstimate(t, p, Vector256.Create(ActivationMath.ErfA1));
        var tail = Vector256.Create(0.5f) * t * p * expHalfSquare;
        var asFar = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(x, Vector256<float>.Zero), one - tail, tail);
        var half = Vector256.Create(0.5f);
        var near = Vector256.MultiplyAddEstimate(half, Series(x * Vector256.Create(ActivationMath.InvSqrt2)), half);
        return Vector256.ConditionalSelect(Vector256.LessThan(z, Vector256.Create(ActivationMath.ErfSeriesLimit)), near, asFar);
    }

    public static Vector256<float> ExpHalfSquare(Vector256<float> x) => Vector256.Exp(Vector256.Create(-0.5f) * x * x);

    /// <summary>erf(x) by A&amp;S 7.1.26 (vector form of <see cref="ActivationMath.Erf"/>): erf(x) = 2Φ(x√2) − 1.</summary>
    public static Vector256<float> Erf(Vector256<float> x)
    {
        var one = Vector256<float>.One;
        var z = Vector256.Abs(x);
        var t = one / Vector256.MultiplyAddEstimate(Vector256.Create(ActivationMath.ErfP), z, one);
        var p = Vector256.MultiplyAddEstimate(t, Vector256.Create(ActivationMath.ErfA5), Vector256.Create(ActivationMath.ErfA4));
        p = Vector256.MultiplyAddEstimate(t, p, Vector256.Create(ActivationMath.ErfA3));
        p = Vector256.MultiplyAddEstimate(t, p, Vector256.Create(ActivationMath.ErfA2));
        p = Vector256.MultiplyAddEstimate(t, p, Vector256.Create(ActivationMath.ErfA1));
        var r = one - t * p * Vector256.Exp(-(z * z));
        var far = Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256<float>.Zero), -r, r);
        return Vector256.ConditionalSelect(Vector256.LessThan(z, Vector256.Create(ActivationMath.ErfSeriesLimit)), Series(x), far);
    }

    /// <summary>Vector form of <see cref="ActivationMath.ErfSeries"/>.</summary>
    private static Vector256<float> Series(Vector256<float> z)
    {
        var z2 = z * z;
        var p = Vector256.MultiplyAddEstimate(z2, Vector256.Create(ActivationMath.ErfS10), Vector256.Create(ActivationMath.ErfS9));
        p = Vector256.MultiplyAddEstimate(z2, p, Vector256.Create(ActivationMath.ErfS8));
        p = Vector256.MultiplyAddEstimate(z2, p, Vector256.Create(ActivationMath.ErfS7));
        p = Vector256.MultiplyAddEstimate(z2, p, Vector256.Create(ActivationMath.ErfS6));
        p = Vector256.MultiplyAddEstimate(z2, p, Vector256.Create(ActivationMath.ErfS5));
        p = Vector256.MultiplyAddEstimate(z2, p, Vector256.Create(ActivationMath.ErfS4));
        p = Vector256.MultiplyAddEstimate(z2, p, Vector256.Create(ActivationMath.ErfS3));
        p = Vector256.MultiplyAddEstimate(z2, p, Vector256.Create(ActivationMath.ErfS2));
        p = Vector256.MultiplyAddEstimate(z2, p, Vector256.Create(ActivationMath.ErfS1));
        p = Vector256.MultiplyAddEstimate(z2, p, Vector256.Create(ActivationMath.ErfS0));
        return z * p;
    }
}

internal readonly struct GeluTanhOp : IUnaryOperator
{
    public float Invoke(float x) => ActivationMath.GeluTanh(x);
    public Vector256<float> Invoke(Vector256<float> x) => x * GeluVector.TanhGate(x);
}

internal readonly struct GeluTanhGradOp : IBinaryOperator
{
    public float Invoke(float dy, float x) => ActivationMath.GeluTanhGrad(dy, x);
    public Vector256<float> Invoke(Vector256<float> dy, Vector256<float> x)
    {
        var s = GeluVector.TanhGate(x);
        var du = Vector256.MultiplyAddEstimate(Vector256.Create(3f * ActivationMath.GeluCubic * ActivationMath.Sqrt2OverPi), x * x,
            Vector256.Create(ActivationMath.Sqrt2OverPi));
        var slope = Vector256.Create(2f) * x * s * (Vector256<float>.One - s) * du;
        return dy * (s + slope);
    }
}

internal readonly struct GeluErfOp : IUnaryOperator
{
    public float Invoke(float x) => ActivationMath.GeluErf(x);
    public Vector256<float> Invoke(Vector256<float> x) => x * GeluVector.NormalCdf(x, GeluVector.ExpHalfSquare(x));
}

internal readonly struct GeluErfGradOp : IBinaryOperator
{
    public float Invoke(float dy, float x) => ActivationMath.GeluErfGrad(dy, x);
    public Vector256<float> Invoke(Vector256<float> dy, Vector256<float> x)
    {
        var e = GeluVector.ExpHalfSquare(x);
        var pdfTerm = x * e * Vector256.Create(ActivationMath.InvSqrt2Pi);
        return dy * (GeluVector.NormalCdf(x, e) + pdfTerm);
    }
}

/// <summary>The float erf approximation over a buffer (for accuracy tests of both the scalar and vector forms).</summary>
internal readonly struct ErfOp : IUnaryOperator
{
    public float Invoke(float x) => ActivationMath.Erf(x);
    public Vector256<float> Invoke(Vector256<float> x) => GeluVector.Erf(x);
}
