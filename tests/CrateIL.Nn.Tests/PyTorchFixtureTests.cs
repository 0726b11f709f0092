using CrateIL.Nn.Layers;
using CrateIL.Testing;
using Xunit;

namespace CrateIL.Nn.Tests;

/// <summary>
/// The float64 layer references composed as one CRATE layer (LN → MSSA → residual → LN → ISTA) against the
/// float64 fixtures of our PyTorch reference: forward outputs, attention probabilities, and all gradients.
/// </summary>
public class PyTorchFixtureTests
{
    private static readonly Tolerance Tight = new(1e-10, 1e-9);

    [Theory]
    [InlineData("layer_n7_d10_h3_dh6_float64")]
    [InlineData("layer_n65_d12_h1_dh12_float64")]
    public void ReferenceLayerMatchesPyTorch(string name)
    {
        var f = LayerFixture.Load(name);
        int n = f.N, dim = f.Dim, heads = f.Heads, dh = f.DimHead, inner = heads * dh;
        var p = f.Params;
        bool projectOut = p.ContainsKey("0.fn.to_out.0.weight");
        Assert.Equal(!(heads == 1 && dh == dim), projectOut);
        var identity = new double[dim * inner];
        for (int i = 0; i < dim; i++) identity[i * inner + i] = 1;
        var wout = projectOut ? p["0.fn.to_out.0.weight"] : identity;
        var bout = projectOut ? p["0.fn.to_out.0.bias"] : null;

        var y = new List<double>(); var half = new List<double>(); var probs = new List<double>(); var dx = new List<double>();
        var g = new Dictionary<string, double[]>();
        void Acc(string k, double[] v) { if (!g.TryGetValue(k, out var a)) g[k] = a = new double[v.Length]; for (int i = 0; i < v.Length; i++) a[i] += v[i]; }

        for (int b = 0; b < f.Batch; b++)
        {
            var x = f.X.AsSpan(b * n * dim, n * dim).ToArray();
            var (ln1, m1, r1) = Ln(x, p["0.norm.weight"], p["0.norm.bias"], n, dim, f.Eps);
            var (a, saved) = MssaReference.Forward(ln1, p["0.fn.qkv.weight"], wout, bout, n, dim, heads, dh);
            var h = x.Zip(a, (u, v) => u + v).ToArray();
            var (ln2, m2, r2) = Ln(h, p["1.norm.weight"], p["1.norm.bias"], n, dim, f.Eps);
            var yb = IstaReference.Forward(ln2, p["1.fn.weight"], n, dim, f.Eta, f.Lambda);
            y.AddRange(yb); half.AddRange(h);
            foreach (var hp in saved.Probs) probs.AddRange(hp);

            var dy = f.Probe.AsSpan(b * n * dim, n * dim).ToArray();
            var (dz, ddw) = IstaReference.Backward(ln2, p["1.fn.weight"], dy, n, dim, f.Eta, f.Lambda);
            Acc("1.fn.weight", ddw);
            var (dh2, dg2, db2) = LnBackward(h, m2, r2, p["1.norm.weight"], dz, n, dim);
            Acc("1.norm.weight", dg2); Acc("1.norm.bias", db2);
            var (dln1, du, dwo, dbo) = MssaReference.Backward(ln1, p["0.fn.qkv.weight"], wout, saved, dh2, n, dim, heads, dh);
            Acc("0.fn.qkv.weight", du);
            if (projectOut) { Acc("0.fn.to_out.0.weight", dwo); Acc("0.fn.to_out.0.bias", dbo); }
            var (dx1, dg1, db1) = LnBackward(x, m1, r1, p["0.norm.weight"], dln1, n, dim);
            Acc("0.norm.weight", dg1); Acc("0.norm.bias", db1);
            dx.AddRange(dx1.Zip(dh2, (u, v) => u + v));
        }
        Check.Close(half.ToArray(), f.Half, Tight, "x + MSSA(LN(x))");
        Check.Close(y.ToArray(), f.Y, Tight, "layer output");
        Check.Close(probs.ToArray(), f.Probs, Tight, "attention probabilities");
        Check.Close(dx.ToArray(), f.Dx, Tight, "dX");
        Assert.Equal(f.Grads.Keys.Order(), g.Keys.Order());
        foreach (var (k, v) in f.Grads) Check.Close(g[k], v, Tight, "grad " + k);
    }

    private static (double[] y, double[] mean, double[] rstd) Ln(double[] x, double[] gamma, double[] beta, int n, int dim, double eps) =>
        MssaBlockReference.LayerNorm(x, gamma, beta, n, dim, eps);

    private static (double[] dx, double[] dgamma, double[] dbeta) LnBackward(double[] x, double[] mean, double[] rstd, double[] gamma, double[] dy, int n, int dim) =>
        MssaBlockReference.LayerNormBackward(x, mean, rstd, gamma, dy, n, dim);
}
