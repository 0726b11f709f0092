using CrateIL.Compute.Verification;

namespace CrateIL.Nn.Layers;

/// <summary>
/// Float64 ground truth for the ViT-baseline MHSA block, x + MHSA(LN(x)) with separate q, k, v (with bias) from one
/// fused qkv Linear laid out (3, heads, dh), per batch entry; gradients for an upstream dy.
/// </summary>
public static class MhsaBlockReference
{
    public sealed record Params(float[] Gamma, float[] Beta, float[] Wqkv, float[] Bqkv, float[] Wp, float[] Bp);

    public sealed record Result(double[] Output, double[] Dx, Dictionary<string, double[]> Grads);

    /// <summary>Float64 x + MHSA(LN(x)) and its gradients for upstream dy, per batch entry.</summary>
    public static Result Run(Params p, double[] x, double[] dy, int batch, int n, int dim, int heads, int dh, double[]? wqkvExact = null)
    {
        int inner = heads * dh, wide = 3 * inner;
        double scale = 1 / Math.Sqrt(dh);
        var gamma = SampleData.ToDouble(p.Gamma); var beta = SampleData.ToDouble(p.Beta);
        var wqkv = wqkvExact ?? SampleData.ToDouble(p.Wqkv); var bqkv = SampleData.ToDouble(p.Bqkv);
        var wp = SampleData.ToDouble(p.Wp); var bp = SampleData.ToDouble(p.Bp);
        var output = new double[x.Length]; var dx = new double[x.Length];
        var g = new Dictionary<string, double[]>
        {
            ["norm1.weight"] = new double[dim], ["norm1.bias"] = new double[dim], ["attn.qkv.weight"] = new double[wide * dim],
            ["attn.qkv.bias"] = new double[wide], ["attn.proj.weight"] = new double[dim * inner], ["attn.proj.bias"] = new double[dim],
        };
        for (int b = 0; b < batch; b++)
        {
            var xb = x.AsSpan(b * n * dim, n * dim).ToArray();
            var dyb = dy.AsSpan(b * n * dim, n * dim).ToArray();
            var (y, mean, rstd) = MssaBlockReference.LayerNorm(xb, gamma, beta, n, dim, 1e-5);
            var qkv = IstaReference.MatMulTransB(y, wqkv, n, dim, wide);
            for (int i = 0; i < n; i++) for (int j = 0; j < wide; j++) qkv[i * wide + j] += bqkv[j];
            var o = new double[n * inner];
            var probs = new double[heads][];
            for (int h = 0; h < heads; h++)
            {
                var pr = probs[h] = new double[n * n];
                for (int i = 0; i < n; i++)
                {
                    double max = double.NegativeInfinity;
                    for (int j = 0; j < n; j++)
                    {
                        double s = 0;
                        for (int c = 0; c < dh; c++) s += qkv[i * wide + h * dh + c] * qkv[j * wide + inner + h * dh + c];
                        pr[i * n + j] = s * scale; max = Math.Max(max, s * scale);
                    }
                    double sum = 0;
                    for (int j = 0; j < n; j++) { pr[i * n + j] = Math.Exp(pr[i * n + j] - max); sum += pr[i * n + j]; }
                    for (int j = 0; j < n; j++) pr[i * n + j] /= sum;
                    for (int c = 0; c < dh; c++)
                    {
                        double acc = 0;
                        for (int j = 0; j < n; j++) acc += pr[i * n + j] * qkv[j * wide + 2 * inner + h * dh + c];
                        o[i * inner + h * dh + c] = acc;
                    }
                }
            }
            var a = IstaReference.MatMulTransB(o, wp, n, inner, dim);
            for (int i = 0; i < n; i++) for (int j = 0; j < dim; j++) output[b * n * dim + i * dim + j] = xb[i * dim + j] + a[i * dim + j] + bp[j];

            // Backward.
            Acc(g["attn.proj.weight"], IstaReference.MatMulTransA(dyb, o, dim, n, inner));
            for (int i = 0; i < n; i++) for (int j = 0; j < dim; j++) g["attn.proj.bias"][j] += dyb[i * dim + j];
            var dO = IstaReference.MatMul(dyb, wp, n, dim, inner);
            var dqkv = new double[n * wide];
            for (int h = 0; h < heads; h++)
            {
                var pr = probs[h];
                for (int i = 0; i < n; i++)
                {
                    var dp = new double[n];
                    double dot = 0;
                    for (int j = 0; j < n; j++)
                    {
                        double s = 0;
                        for (int c = 0; c < dh; c++) s += dO[i * inner + h * dh + c] * qkv[j * wide + 2 * inner + h * dh + c];
                        dp[j] = s; dot += s * pr[i * n + j];
                    }
                    for (int j = 0; j < n; j++)
                    {
                        double pij = pr[i * n + j], ds = pij * (dp[j] - dot) * scale;
                        for (int c = 0; c < dh; c++)
                        {
                            dqkv[i * wide + h * dh + c] += ds * qkv[j * wide + inner + h * dh + c];
                            dqkv[j * wide + inner + h * dh + c] += ds * qkv[i * wide + h * dh + c];
                            dqkv[j * wide + 2 * inner + h * dh + c] += pij * dO[i * inner + h * dh + c];
                        }
                    }
                }
            }
            for (int i = 0; i < n; i++) for (int j = 0; j < wide; j++) g["attn.qkv.bias"][j] += dqkv[i * wide + j];
            Acc(g["attn.qkv.weight"], IstaReference.MatMulTransA(dqkv, y, wide, n, dim));
            var dy1 = IstaReference.MatMul(dqkv, wqkv, n, wide, dim);
            var (dxb, dg, db) = MssaBlockReference.LayerNormBackward(xb, mean, rstd, gamma, dy1, n, dim);
            Acc(g["norm1.weight"], dg); Acc(g["norm1.bias"], db);
            for (int i = 0; i < n * dim; i++) dx[b * n * dim + i] = dxb[i] + dyb[i];
        }
        return new Result(output, dx, g);
    }

    private static void Acc(double[] acc, double[] v)
    {
        for (int i = 0; i < acc.Length; i++) acc[i] += v[i];
    }
}
