using CrateIL.Compute.Cpu;
using CrateIL.Compute.Devices;
using CrateIL.Compute.Ops;
using CrateIL.Compute.Tensors;
using CrateIL.Testing;
using Xunit;

namespace CrateIL.Compute.Tests;

public class ActivationTests
{
    /// <summary>Odd sizes (SIMD tails: 1027 is not a multiple of 8 or 32) and, off the simulator, one large
    /// enough to be split across CPU threads.</summary>
    private static int[] Sizes(string backend) =>
        Backends.IsSimulator(backend) ? [1, 7, 65, 127, 785, 1027] : [1, 7, 65, 127, 785, 1027, 100_003];

    private static readonly Tolerance Exact = OpTolerances.Threshold;
    private static readonly Tolerance GeluForwardTol = OpTolerances.GeluForward;
    private static readonly Tolerance GeluBackwardTol = OpTolerances.GeluBackward;
    private const float T = 0.3f;

    private static double[] Map(float[] x, Func<double, double> f) => x.Select(v => f(v)).ToArray();

    private static double[] Map(float[] a, float[] b, Func<double, double, double> f)
    {
        var r = new double[a.Length];
        for (int i = 0; i < r.Length; i++) r[i] = f(a[i], b[i]);
        return r;
    }

    /// <summary>Uniform data plus, where it fits, values that stress overflow paths (±20, ±100, ±0).</summary>
    private static float[] Inputs(int seed, int n, float range)
    {
        var x = TestData.Uniform(seed, n, -range, range);
        float[] extremes = [20f, -20f, 100f, -100f, 0f, -0f, 1e-8f, -1e-8f];
        if (n >= 65) extremes.CopyTo(x, n - extremes.Length - 3);
        return x;
    }

    private static Tensor Poisoned(Device dev, int n)
    {
        var t = dev.Allocate(n);
        t.Fill(float.NaN);
        return t;
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void ReluForwardAndBackwardMatchReference(string backend)
    {
        var dev = Backends.Get(backend);
        foreach (int n in Sizes(backend))
        {
            var x = Inputs(n, n, 3f);
            var dy = TestData.Uniform(n + 1, n);
            using var tx = dev.FromHost(x, n);
            using var tdy = dev.FromHost(dy, n);
            using var ty = Poisoned(dev, n);
            Relu.Forward(tx, ty);
            var y = ty.ToArray();
            Check.Close(y, Map(x, ActivationReference.Relu), Exact, $"{backend} relu n={n}");

            var expected = Map(dy, x, (g, v) => g * ActivationReference.ReluDerivative(v));
            using var dx = Poisoned(dev, n);
            Relu.Backward(tdy, tx, dx);
            Check.Close(dx.ToArray(), expected, Exact, $"{backend} relu backward from x n={n}");
            dx.Fill(float.NaN);
            Relu.Backward(tdy, ty, dx);
            Check.Close(dx.ToArray(), expected, Exact, $"{backend} relu backward from y n={n}");

            Relu.Forward(tx, tx);
            Check.Close(tx.ToArray(), y, new Tolerance(0, 0), $"{backend} relu in place n={n}");
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void SoftThresholdForwardAndBackwardMatchReference(string backend)
    {
        var dev = Backends.Get(backend);
        foreach (var kind in new[] { ThresholdKind.OneSided, ThresholdKind.Symmetric })
            foreach (int n in Sizes(backend))
            {
                var x = Inputs(n, n, 2f);
                var dy = TestData.Uniform(n + 2, n);
                using var tx = dev.FromHost(x, n);
                using var tdy = dev.FromHost(dy, n);
                using var ty = Poisoned(dev, n);
                SoftThreshold.Forward(tx, ty, T, kind);
                var y = ty.ToArray();
                Check.Close(y, Map(x, v => ActivationReference.SoftThreshold(v, T, kind)), Exact, $"{backend} {kind} n={n}");

                var expected = Map(dy, x, (g, v) => g * ActivationReference.SoftThresholdDerivative(v, T, kind));
                using var dx = Poisoned(dev, n);
                SoftThreshold.Backward(tdy, tx, dx, T, kind);
                Check.Close(dx.ToArray(), expected, Exact, $"{backend} {kind} backward n={n}");
                dx.Fill(float.NaN);
                SoftThreshold.BackwardFromOutput(tdy, ty, dx, kind);
                Check.Close(dx.ToArray(), expected, Exact, $"{backend} {kind} backward from output n={n}");

                // dx may overwrite dy.
                SoftThreshold.Backward(tdy, tx, tdy, T, kind);
                Check.Close(tdy.ToArray(), expected, Exact, $"{backend} {kind} backward in place n={n}");
            }
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void GeluForwardAndBackwardMatchReference(string backend)
    {
        var dev = Backends.Get(backend);
        foreach (var form in new[] { GeluForm.Tanh, GeluForm.Erf })
            foreach (int n in Sizes(backend))
            {
                var x = Inputs(3 * n, n, 6f);
                var dy = TestData.Uniform(n + 3, n);
                using var tx = dev.FromHost(x, n);
                using var tdy = dev.FromHost(dy, n);
                using var ty = Poisoned(dev, n);
                Gelu.Forward(tx, ty, form);
                Check.Close(ty.ToArray(), Map(x, v => ActivationReference.Gelu(v, form)), GeluForwardTol, $"{backend} gelu-{form} n={n}");

                using var dx = Poisoned(dev, n);
                Gelu.Backward(tdy, tx, dx, form);
                Check.Close(dx.ToArray(), Map(dy, x, (g, v) => g * ActivationReference.GeluDerivative(v, form)), GeluBackwardTol,
                    $"{backend} gelu-{form} backward n={n}");
            }
    }

    /// <summary>The float erf (scalar, Vector256 and device kernel) against the float64 erf: A&S 7.1.26 promises 1.5e-7, the series near 0 keeps that.</summary>
    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public unsafe void ErfApproximationStaysWithinItsErrorBound(string backend)
    {
        var dev = Backends.Get(backend);
        const int n = 12_001;
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = -6f + 12f * i / (n - 1);
        var expected = Map(x, ActivationReference.Erf);
        var bound = new Tolerance(2e-7, 0); // A&S 1.5e-7 + float rounding (half an ulp near 1 is 6e-8); measured max 1.7e-7
        float[] y;
        if (dev is CpuDevice)
        {
            y = new float[n];
            fixed (float* px = x, py = y) ElementwiseDriver.UnaryRange(px, py, n, new ErfOp());
            var scalar = x.Select(ActivationMath.Erf).ToArray();
            Check.Close(scalar, expected, bound, "scalar erf");
        }
        else
        {
            using var tx = dev.FromHost(x, n);
            using var ty = Poisoned(dev, n);
            ActivationsIlgpu.Erf((IlgpuDevice)dev, tx, ty);
            y = ty.ToArray();
        }
        Check.Close(y, expected, bound, $"{backend} erf");
    }

    [Fact]
    public void ReferenceErfMatchesTabulatedValues()
    {
        var tol = new Tolerance(0, 4e-15);
        (double X, double Erf)[] erf =
        [
            (0.1, 0.1124629160182849), (0.5, 0.5204998778130465), (1, 0.8427007929497149), (1.5, 0.9661051464753108),
            (2, 0.9953222650189527), (2.4999, 0.9995928300996666), (2.5, 0.999593047982555), (3, 0.9999779095030014),
            (4, 0.9999999845827421), (-1, -0.8427007929497149), (0, 0),
        ];
        foreach (var (x, e) in erf) Check.Close(ActivationReference.Erf(x), e, tol, $"erf({x})");
        (double X, double Erfc)[] erfc =
        [
            (2.5, 0.0004069520174449589), (3, 2.2090496998585438e-05), (5, 1.5374597944280351e-12),
            (10, 2.088487583762545e-45), (-1, 1.842700792949715), (0.5, 1 - 0.5204998778130465),
        ];
        foreach (var (x, e) in erfc) Check.Close(ActivationReference.Erfc(x), e, tol, $"erfc({x})");
        Check.Close(ActivationReference.NormalCdf(0), 0.5, tol, "Φ(0)");
        Check.Close(ActivationReference.NormalCdf(-3), 0.0013498980316300946, new Tolerance(0, 1e-14), "Φ(-3)");
        Check.Close(ActivationReference.NormalCdf(-8), 6.220960574271785e-16, new Tolerance(0, 1e-13), "Φ(-8)");
    }

    /// <summary>Each reference derivative against central differences of its reference forward (away from kinks).</summary>
    [Fact]
    public void ReferenceBackwardsMatchFiniteDifferences()
    {
        var x0 = TestData.ToDouble(TestData.Uniform(7, 64, -4f, 4f));
        var w = TestData.ToDouble(TestData.Uniform(8, 64));
        var cases = new (string Name, Func<double, double> F, Func<double, double> D, double[] Kinks)[]
        {
            ("relu", ActivationReference.Relu, ActivationReference.ReluDerivative, [0]),
            ("soft-threshold", v => ActivationReference.SoftThreshold(v, T), v => ActivationReference.SoftThresholdDerivative(v, T), [T]),
            ("soft-threshold-symmetric", v => ActivationReference.SoftThresholdSymmetric(v, T),
                v => ActivationReference.SoftThresholdSymmetricDerivative(v, T), [T, -T]),
            ("gelu-tanh", ActivationReference.GeluTanh, ActivationReference.GeluTanhDerivative, []),
            ("gelu-erf", ActivationReference.GeluErf, ActivationReference.GeluErfDerivative, []),
        };
        foreach (var (name, f, d, kinks) in cases)
        {
            // Keep every sample at least 1e-3 from a kink, where the one-sided derivatives differ.
            var x = x0.Select(v => kinks.Any(k => Math.Abs(v - k) < 1e-3) ? v + 2e-3 : v).ToArray();
            var numeric = FiniteDifference.Gradient(v => FiniteDifference.Probe(v.Select(f).ToArray(), w), x);
            var analytic = x.Select((v, i) => w[i] * d(v)).ToArray();
            Check.Close(analytic, numeric, new Tolerance(1e-7, 1e-6), $"{name} reference backward vs finite differences");
        }
    }

    [Fact]
    public void CpuSingleThreadedPathDoesNotAllocate()
    {
        using var dev = CpuDevice.Create(2);
        const int n = 1027;
        using var x = dev.FromHost(TestData.Uniform(1, n), n);
        using var dy = dev.FromHost(TestData.Uniform(2, n), n);
        using var y = dev.Allocate(n);
        void Run()
        {
            Relu.Forward(x, y);
            Relu.Backward(dy, x, y);
            SoftThreshold.Forward(x, y, T, ThresholdKind.Symmetric);
            SoftThreshold.Backward(dy, x, y, T);
            Gelu.Forward(x, y, GeluForm.Erf);
            Gelu.Backward(dy, x, y, GeluForm.Tanh);
        }
        Run();
        long before = GC.GetAllocatedBytesForCurrentThread();
        Run();
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void BadArgumentsAreClearErrors()
    {
        using var dev = CpuDevice.Create(1);
        using var a = dev.Allocate(3, 5);
        using var b = dev.Allocate(16);
        var e = Assert.Throws<ArgumentException>(() => Relu.Forward(a, b));
        Assert.Contains("Relu.Forward", e.Message);
        Assert.Contains("[3, 5]", e.Message);
        Assert.Throws<ArgumentException>(() => Gelu.Backward(a, a, b));
        var t = Assert.Throws<ArgumentOutOfRangeException>(() => SoftThreshold.Forward(a, a, -0.1f, ThresholdKind.Symmetric));
        Assert.Contains("t ≥ 0", t.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => SoftThreshold.Forward(a, a, float.NaN));
        Assert.Throws<ArgumentOutOfRangeException>(() => Gelu.Forward(a, a, (GeluForm)7));
        using var flat = dev.Allocate(15);
        Relu.Forward(a, flat); // equal lengths, different shapes: allowed (flat view)
    }
}
