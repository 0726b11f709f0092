using CrateIL.Compute.Devices;
using CrateIL.Compute.Ops;
using CrateIL.Compute.Tensors;
using CrateIL.Testing;
using Xunit;

namespace CrateIL.Compute.Tests;

public class LayerNormTests
{
    private static readonly Tolerance ForwardTol = OpTolerances.LayerNormForward;
    private static readonly Tolerance BackwardTol = OpTolerances.LayerNormBackward;

    /// <summary>Which affine parameters a case uses.</summary>
    public enum Affine { GammaBeta, None, GammaOnly }

    private static readonly Affine[] AllAffine = [Affine.GammaBeta, Affine.None, Affine.GammaOnly];

    /// <summary>Every shape with every affine variant; on the slow simulator, the variants rotate over the shapes.</summary>
    private static IEnumerable<(int Rows, int Cols, Affine Affine)> Cases(string backend)
    {
        int i = 0;
        foreach (var (rows, cols) in RowShapes.For(backend))
        {
            if (Backends.IsSimulator(backend)) yield return (rows, cols, AllAffine[i++ % AllAffine.Length]);
            else foreach (var a in AllAffine) yield return (rows, cols, a);
        }
    }

    private sealed class Case : IDisposable
    {
        public required int Rows, Cols;
        public required float[] X, Gamma, Beta;
        public required Tensor Tx, Ty, Mean, Rstd;
        public Tensor? TGamma, TBeta;

        public void Dispose()
        {
            Tx.Dispose(); Ty.Dispose(); Mean.Dispose(); Rstd.Dispose(); TGamma?.Dispose(); TBeta?.Dispose();
        }
    }

    private static Case Run(Device dev, int rows, int cols, Affine affine, int seed, float eps = LayerNorm.DefaultEpsilon)
    {
        // A large common offset checks that the variance is computed from centred values.
        var x = TestData.Normal(seed, rows * cols, std: 2f, mean: 30f);
        var gamma = affine == Affine.None ? [] : TestData.Uniform(seed + 1, cols, 0.5f, 1.5f);
        var beta = affine == Affine.GammaBeta ? TestData.Uniform(seed + 2, cols) : [];
        var c = new Case
        {
            Rows = rows, Cols = cols, X = x, Gamma = gamma, Beta = beta,
            Tx = dev.FromHost(x, rows, cols),
            Ty = RowShapes.Poisoned(dev, rows, cols),
            Mean = RowShapes.Poisoned(dev, rows),
            Rstd = RowShapes.Poisoned(dev, rows),
            TGamma = gamma.Length > 0 ? dev.FromHost(gamma, cols) : null,
            TBeta = beta.Length > 0 ? dev.FromHost(beta, cols) : null,
        };
        LayerNorm.Forward(c.Tx, c.TGamma, c.TBeta, c.Ty, c.Mean, c.Rstd, eps);
        return c;
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void ForwardMatchesReferenceAndSavesStatistics(string backend)
    {
        var dev = Backends.Get(backend);
        int seed = 0;
        foreach (var (rows, cols, affine) in Cases(backend))
            {
                using var c = Run(dev, rows, cols, affine, seed += 3);
                var (y, mean, rstd) = LayerNormReference.Forward(TestData.ToDouble(c.X), TestData.ToDouble(c.Gamma),
                    TestData.ToDouble(c.Beta), rows, cols);
                string what = $"layernorm {rows}x{cols} {affine} on {backend}";
                Check.Close(c.Ty.ToArray(), y, ForwardTol, what + " y");
                Check.Close(c.Mean.ToArray(), mean, new Tolerance(1e-5, 1e-6), what + " mean");
                Check.Close(c.Rstd.ToArray(), rstd, new Tolerance(1e-6, 1e-4), what + " rstd");
            }
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void EpsIsRespected(string backend)
    {
        var dev = Backends.Get(backend);
        const int cols = 6;
        // Row 0 is constant (variance 0: rstd = 1/√eps); row 1 has variance 1e-4, comparable to eps = 1e-4.
        float[] x = [2f, 2f, 2f, 2f, 2f, 2f, 0.01f, -0.01f, 0.01f, -0.01f, 0.01f, -0.01f];
        foreach (float eps in new[] { 1e-5f, 1e-4f, 1e-2f })
        {
            using var tx = dev.FromHost(x, 2, cols);
            using var ty = RowShapes.Poisoned(dev, 2, cols);
            using var mean = RowShapes.Poisoned(dev, 2);
            using var rstd = RowShapes.Poisoned(dev, 2);
            LayerNorm.Forward(tx, null, null, ty, mean, rstd, eps);
            var r = rstd.ToArray();
            Check.Close(r[0], 1.0 / Math.Sqrt((double)eps), new Tolerance(0, 1e-5), $"rstd of a constant row, eps {eps} on {backend}");
            Check.Close(r[1], 1.0 / Math.Sqrt(1e-4 + (double)eps), new Tolerance(0, 1e-4), $"rstd, eps {eps} on {backend}");
            var (y, _, _) = LayerNormReference.Forward(TestData.ToDouble(x), [], [], 2, cols, eps);
            Check.Close(ty.ToArray(), y, ForwardTol, $"y with eps {eps} on {backend}");
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void BackwardMatchesReferenceAndAccumulatesParameterGradients(string backend)
    {
        var dev = Backends.Get(backend);
        int seed = 1000;
        foreach (var (rows, cols, affine) in Cases(backend))
            {
                using var c = Run(dev, rows, cols, affine, seed += 5);
                var dy = TestData.Normal(seed + 4, rows * cols);
                var dGammaInit = TestData.Uniform(seed + 5, cols, -2f, 2f);
                var dBetaInit = TestData.Uniform(seed + 6, cols, -2f, 2f);
                using var tdy = dev.FromHost(dy, rows, cols);
                using var tdx = RowShapes.Poisoned(dev, rows, cols);
                using var tdGamma = dev.FromHost(dGammaInit, cols);
                using var tdBeta = dev.FromHost(dBetaInit, cols);
                bool withGrads = affine != Affine.None;
                LayerNorm.Backward(tdy, c.Tx, c.TGamma, c.Mean, c.Rstd, tdx,
                    withGrads ? tdGamma : null, affine == Affine.GammaBeta ? tdBeta : null);

                var (_, mean, rstd) = LayerNormReference.Forward(TestData.ToDouble(c.X), [], [], rows, cols);
                var (dx, dGamma, dBeta) = LayerNormReference.Backward(TestData.ToDouble(dy), TestData.ToDouble(c.X),
                    TestData.ToDouble(c.Gamma), mean, rstd, rows, cols);
                string what = $"layernorm backward {rows}x{cols} {affine} on {backend}";
                Check.Close(tdx.ToArray(), dx, BackwardTol, what + " dx");
                var expectGamma = TestData.ToDouble(dGammaInit);
                var expectBeta = TestData.ToDouble(dBetaInit);
                for (int j = 0; j < cols; j++)
                {
                    if (withGrads) expectGamma[j] += dGamma[j];
                    if (affine == Affine.GammaBeta) expectBeta[j] += dBeta[j];
                }
                Check.Close(tdGamma.ToArray(), expectGamma, BackwardTol, what + " dGamma (accumulated)");
                Check.Close(tdBeta.ToArray(), expectBeta, BackwardTol, what + " dBeta (accumulated)");

                // dx may overwrite dy; parameter gradients accumulate a second time.
                LayerNorm.Backward(tdy, c.Tx, c.TGamma, c.Mean, c.Rstd, tdy, withGrads ? tdGamma : null, null);
                Check.Close(tdy.ToArray(), dx, BackwardTol, what + " in-place dx");
                if (withGrads)
                {
                    for (int j = 0; j < cols; j++) expectGamma[j] += dGamma[j];
                    Check.Close(tdGamma.ToArray(), expectGamma, BackwardTol, what + " dGamma accumulated twice");
                }
            }
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void ParameterGradientsAreDeterministic(string backend)
    {
        var dev = Backends.Get(backend);
        // Enough rows for several partial-sum ranges on every backend (CPU threads, ILGPU row chunks).
        int rows = Backends.IsSimulator(backend) ? 33 : 400, cols = Backends.IsSimulator(backend) ? 5 : 197;
        using var c = Run(dev, rows, cols, Affine.GammaBeta, 77);
        using var dy = dev.FromHost(TestData.Normal(78, rows * cols), rows, cols);
        using var dx = dev.Allocate(rows, cols);
        float[]? first = null;
        for (int run = 0; run < 2; run++)
        {
            using var dGamma = dev.Zeros(cols);
            using var dBeta = dev.Zeros(cols);
            LayerNorm.Backward(dy, c.Tx, c.TGamma, c.Mean, c.Rstd, dx, dGamma, dBeta);
            var both = dGamma.ToArray().Concat(dBeta.ToArray()).ToArray();
            if (first is null) first = both;
            else Assert.Equal(first, both);   // bitwise
        }
    }

    [Fact]
    public void CpuRowRangesGiveTheSameGradientsAsOneThread()
    {
        // Forces the multi-range dγ/dβ path whatever the machine's core count.
        using var one = CpuDevice.Create(1);
        using var four = CpuDevice.Create(4);
        const int rows = 300, cols = 131;
        var x = TestData.Normal(5, rows * cols);
        var dy = TestData.Normal(6, rows * cols);
        var gamma = TestData.Uniform(7, cols, 0.5f, 1.5f);
        var results = new List<float[]>();
        foreach (var dev in new[] { one, four })
        {
            using var tx = dev.FromHost(x, rows, cols);
            using var tdy = dev.FromHost(dy, rows, cols);
            using var tg = dev.FromHost(gamma, cols);
            using var y = dev.Allocate(rows, cols);
            using var mean = dev.Allocate(rows);
            using var rstd = dev.Allocate(rows);
            using var dx = dev.Allocate(rows, cols);
            using var dGamma = dev.Zeros(cols);
            using var dBeta = dev.Zeros(cols);
            LayerNorm.Forward(tx, tg, null, y, mean, rstd);
            LayerNorm.Backward(tdy, tx, tg, mean, rstd, dx, dGamma, dBeta);
            results.Add([.. dx.ToArray(), .. dGamma.ToArray(), .. dBeta.ToArray()]);
        }
        var (_, m, r) = LayerNormReference.Forward(TestData.ToDouble(x), [], [], rows, cols);
        var (edx, edg, edb) = LayerNormReference.Backward(TestData.ToDouble(dy), TestData.ToDouble(x), TestData.ToDouble(gamma), m, r, rows, cols);
        double[] expected = [.. edx, .. edg, .. edb];
        Check.Close(results[0], expected, BackwardTol, "1 thread");
        Check.Close(results[1], expected, BackwardTol, "4 threads, several row ranges");
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 5)]
    [InlineData(2, 8)]
    public void ReferenceBackwardMatchesFiniteDifferences(int rows, int cols)
    {
        var x = TestData.ToDouble(TestData.Normal(rows * 10 + cols, rows * cols));
        var gamma = TestData.ToDouble(TestData.Uniform(cols + 1, cols, 0.5f, 1.5f));
        var beta = TestData.ToDouble(TestData.Uniform(cols + 2, cols));
        var w = TestData.ToDouble(TestData.Normal(cols + 3, rows * cols));
        const double eps = 1e-3;   // a visible eps so its handling is checked too
        double L(double[] xv, double[] g, double[] b) => FiniteDifference.Probe(LayerNormReference.Forward(xv, g, b, rows, cols, eps).Y, w);

        var (_, mean, rstd) = LayerNormReference.Forward(x, gamma, beta, rows, cols, eps);
        var (dx, dGamma, dBeta) = LayerNormReference.Backward(w, x, gamma, mean, rstd, rows, cols);
        var tol = new Tolerance(1e-6, 1e-5);
        Check.Close(dx, FiniteDifference.Gradient(v => L(v, gamma, beta), x), tol, "layernorm reference dx vs finite differences");
        Check.Close(dGamma, FiniteDifference.Gradient(g => L(x, g, beta), gamma), tol, "layernorm reference dGamma vs finite differences");
        Check.Close(dBeta, FiniteDifference.Gradient(b => L(x, gamma, b), beta), tol, "layernorm reference dBeta vs finite differences");
    }

    [Fact]
    public void BadArgumentsAreRejected()
    {
        using var dev = CpuDevice.Create(1);
        using var x = dev.Zeros(4, 6);
        using var y = dev.Zeros(4, 6);
        using var g = dev.Zeros(5);
        using var stats = dev.Zeros(4);
        var e = Assert.Throws<ArgumentException>(() => LayerNorm.Forward(x, g, null, y));
        Assert.Contains("gamma", e.Message);
        Assert.Throws<ArgumentException>(() => LayerNorm.Forward(x, null, null, y, stats, null));
        Assert.Throws<ArgumentOutOfRangeException>(() => LayerNorm.Forward(x, null, null, y, eps: 0f));
        Assert.Throws<ArgumentException>(() => LayerNorm.Backward(y, x, null, stats, stats, x));
    }
}
