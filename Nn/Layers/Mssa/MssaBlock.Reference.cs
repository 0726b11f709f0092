using CrateIL.Compute.Ops;

namespace CrateIL.Nn.Layers;

/// <summary>
/// Float64 ground truth for the PreNorm MSSA block, x½ = x + MSSA(LN(x)), composed from <see cref="MssaReference"/>
/// and a plain LayerNorm, per batch entry; also the row LayerNorm and its backward used by the fixture tests.
/// </summary>
public static class MssaBlockReference
{
    public sealed record Params(double[] NormWeight, double[] NormBias, double[] Qkv, double[]? OutWeight, double[]? OutBias);

    public sealed record Result(double[] Output, double[] Dx, double[] DNormWeight, double[] DNormBias, double[] DQkv,
        double[]? DOutWeight, double[]? DOutBias, double[][] Probs);

    public static Result Run(double[] x, Params p, double[] dy, int batch, int n, int dim, int heads, int dh)
    {
        int inner = heads * dh;
        var wout = p.OutWeight ?? Identity(dim);
        var output = new double[x.Length]; var dx = new double[x.Length];
        var dg = new double[dim]; var db = new double[dim]; var du = new double[inner * dim];
        var dwo = new double[dim * inner]; var dbo = new double[dim];
        var probs = new List<double[]>();
        for (int b = 0; b < batch; b++)
        {
            var xb = x.AsSpan(b * n * dim, n * dim).ToArray();
            var (ln, mean, rstd) = LayerNorm(xb, p.NormWeight, p.NormBias, n, dim, 1e-5);
            var (a, saved) = MssaReference.Forward(ln, p.Qkv, wout, p.OutBias, n, dim, heads, dh);
            probs.AddRange(saved.Probs);
            for (int i = 0; i < n * dim; i++) output[b * n * dim + i] = xb[i] + a[i];
            var dyb = dy.AsSpan(b * n * dim, n * dim).ToArray();
            var (dln, dub, dwob, dbob) = MssaReference.Backward(ln, p.Qkv, wout, saved, dyb, n, dim, heads, dh);
            var (dxb, dgb, dbb) = LayerNormBackward(xb, mean, rstd, p.NormWeight, dln, n, dim);
            for (int i = 0; i < n * dim; i++) dx[b * n * dim + i] = dxb[i] + dyb[i];
            Add(dg, dgb); Add(db, dbb); Add(du, dub); Add(dwo, dwob); Add(dbo, dbob);
        }
        bool project = p.OutWeight is not null;
        return new Result(output, dx, dg, db, du, project ? dwo : null, project ? dbo : null, probs.ToArray());
    }

    public static double[] Identity(int dim)
    {
        var eye = new double[dim * dim];
        for (int i = 0; i < dim; i++) eye[i * dim + i] = 1;
        return eye;
    }

    private static void Add(double[] acc, double[] v)
    {
        for (int i = 0; i < acc.Length; i++) acc[i] += v[i];
    }

    public static (double[] y, double[] mean, double[] rstd) LayerNorm(double[] x, double[] gamma, double[] beta, int n, int dim, double eps) =>
        LayerNormReference.Forward(x, gamma, beta, n, dim, eps);

    public static (double[] dx, double[] dgamma, double[] dbeta) LayerNormBackward(double[] x, double[] mean, double[] rstd, double[] gamma, double[] dy, int n, int dim) =>
        LayerNormReference.Backward(dy, x, gamma, mean, rstd, n, dim);
}
