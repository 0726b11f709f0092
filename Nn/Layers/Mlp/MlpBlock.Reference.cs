using CrateIL.Compute.Ops;

namespace CrateIL.Nn.Layers;

/// <summary>Float64 reference of <see cref="MlpBlock"/>: y = x + W₂·GELU_erf(W₁·LN(x) + b₁) + b₂ on token rows.</summary>
public static class MlpBlockReference
{
    public sealed record Params(double[] Gamma, double[] Beta, double[] W1, double[] B1, double[] W2, double[] B2);

    public sealed record Saved(double[] Mean, double[] Rstd, double[] Normed, double[] Hidden, double[] Activated);

    public sealed record Grads(double[] Dx, double[] DGamma, double[] DBeta, double[] DW1, double[] DB1, double[] DW2, double[] DB2);

    public static (double[] Y, Saved Saved) Forward(double[] x, Params p, int rows, int dim, int hidden)
    {
        var (normed, mean, rstd) = LayerNormReference.Forward(x, p.Gamma, p.Beta, rows, dim);
        var h = LinearReference.Forward(normed, p.W1, p.B1, rows, dim, hidden);
        var a = h.Select(ActivationReference.GeluErf).ToArray();
        var y = LinearReference.Forward(a, p.W2, p.B2, rows, hidden, dim);
        for (int i = 0; i < y.Length; i++) y[i] += x[i];
        return (y, new Saved(mean, rstd, normed, h, a));
    }

    public static Grads Backward(double[] x, double[] dy, Params p, Saved s, int rows, int dim, int hidden)
    {
        var (da, dw2, db2) = LinearReference.Backward(s.Activated, p.W2, dy, rows, hidden, dim);
        var dh = new double[da.Length];
        for (int i = 0; i < dh.Length; i++) dh[i] = da[i] * ActivationReference.GeluErfDerivative(s.Hidden[i]);
        var (dNormed, dw1, db1) = LinearReference.Backward(s.Normed, p.W1, dh, rows, dim, hidden);
        var (dxNorm, dg, dbeta) = LayerNormReference.Backward(dNormed, x, p.Gamma, s.Mean, s.Rstd, rows, dim);
        var dx = new double[x.Length];
        for (int i = 0; i < dx.Length; i++) dx[i] = dy[i] + dxNorm[i];
        return new Grads(dx, dg, dbeta, dw1, db1, dw2, db2);
    }
}
