using CrateIL.Nn.Layers;
using CrateIL.Testing;
using Xunit;

namespace CrateIL.Nn.Tests;

/// <summary>The float64 references of ISTA and MSSA against float64 finite differences, and their identities.</summary>
public class ReferenceGradientTests
{
    private static readonly Tolerance Fd = new(1e-7, 1e-6);

    private static double[] D(int seed, int n, double scale = 1) => TestData.ToDouble(TestData.Normal(seed, n, (float)scale));

    [Theory]
    [InlineData(1, 5, false)]
    [InlineData(7, 6, false)]
    [InlineData(7, 6, true)]
    public void IstaBackwardMatchesFiniteDifferences(int n, int dim, bool symmetric)
    {
        var z = D(1, n * dim); var dw = D(2, dim * dim, 0.4); var w = D(3, n * dim);
        const double eta = 0.1, lambda = 0.1;
        var (dz, ddw) = IstaReference.Backward(z, dw, w, n, dim, eta, lambda, symmetric);
        var fdz = FiniteDifference.Gradient(v => FiniteDifference.Probe(IstaReference.Forward(v, dw, n, dim, eta, lambda, symmetric), w), z);
        var fdd = FiniteDifference.Gradient(v => FiniteDifference.Probe(IstaReference.Forward(z, v, n, dim, eta, lambda, symmetric), w), dw);
        Check.Close(dz, fdz, Fd, "dZ");
        Check.Close(ddw, fdd, Fd, "dDw");
    }

    [Fact]
    public void IstaIdentities()
    {
        int n = 7, dim = 6;
        var z = D(4, n * dim);
        var relu = z.Select(v => Math.Max(v - 0.01, 0)).ToArray();
        Check.Close(IstaReference.Forward(z, new double[dim * dim], n, dim, 0.1, 0.1), relu, new Tolerance(1e-15, 0), "D = 0");
        var eye = new double[dim * dim];
        for (int i = 0; i < dim; i++) eye[i * dim + i] = 1;
        Check.Close(IstaReference.Forward(z, eye, n, dim, 0.1, 0.1), relu, new Tolerance(1e-15, 0), "D = I");
        var dw = D(5, dim * dim, 0.3);
        Check.Close(IstaReference.Forward(z, dw, n, dim, 0.1, 0.1), IstaReference.ForwardThreeGemm(z, dw, n, dim, 0.1, 0.1), new Tolerance(1e-12, 1e-12), "2-GEMM vs 3-GEMM");
    }

    [Theory]
    [InlineData(7, 8, 1, 6)]
    [InlineData(7, 10, 3, 6)]
    [InlineData(5, 9, 2, 4)]
    public void MssaBackwardMatchesFiniteDifferences(int n, int dim, int heads, int dh)
    {
        int inner = heads * dh;
        var x = D(6, n * dim); var u = D(7, inner * dim, 0.5); var wo = D(8, dim * inner, 0.3); var bo = D(9, dim); var w = D(10, n * dim);
        var (_, saved) = MssaReference.Forward(x, u, wo, bo, n, dim, heads, dh);
        var (dx, du, dwo, dbo) = MssaReference.Backward(x, u, wo, saved, w, n, dim, heads, dh);
        double L(double[] xx, double[] uu, double[] ww, double[] bb) => FiniteDifference.Probe(MssaReference.Forward(xx, uu, ww, bb, n, dim, heads, dh).y, w);
        Check.Close(dx, FiniteDifference.Gradient(v => L(v, u, wo, bo), x), Fd, "dX");
        Check.Close(du, FiniteDifference.Gradient(v => L(x, v, wo, bo), u), Fd, "dU");
        Check.Close(dwo, FiniteDifference.Gradient(v => L(x, u, v, bo), wo), Fd, "dWout");
        Check.Close(dbo, FiniteDifference.Gradient(v => L(x, u, wo, v), bo), Fd, "dBout");
    }

    [Fact]
    public void MssaAttentionRowsSumToOne()
    {
        int n = 7, dim = 8, heads = 2, dh = 4;
        var x = D(11, n * dim); var u = D(12, heads * dh * dim);
        var (_, saved) = MssaReference.Forward(x, u, D(13, dim * heads * dh), null, n, dim, heads, dh);
        foreach (var p in saved.Probs)
            for (int i = 0; i < n; i++)
            {
                Check.Close(p.AsSpan(i * n, n).ToArray().Sum(), 1.0, new Tolerance(1e-14, 0), $"row {i} sum");
            }
    }
}
