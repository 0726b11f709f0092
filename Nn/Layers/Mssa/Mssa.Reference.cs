namespace CrateIL.Nn.Layers;

/// <summary>
/// Float64 reference of CRATE's multi-head subspace self-attention on normalised tokens Y [n, dim]:
/// w = Y·Uᵀ [n, heads·dh] shared as query, key and value; per head S = softmax(w_k·w_kᵀ·dh^−½), O_k = S·w_k;
/// out = concat_k(O_k)·Woutᵀ + bout. (The residual and the pre-LayerNorm live in the block.)
/// </summary>
public static class MssaReference
{
    public sealed record Saved(double[] W, double[][] Probs, double[] O);

    public static (double[] y, Saved saved) Forward(double[] x, double[] u, double[] wout, double[]? bout, int n, int dim, int heads, int dh)
    {
        int inner = heads * dh;
        var w = IstaReference.MatMulTransB(x, u, n, dim, inner);
        var o = new double[n * inner];
        var probs = new double[heads][];
        double scale = 1.0 / Math.Sqrt(dh);
        for (int h = 0; h < heads; h++)
        {
            var p = new double[n * n];
            for (int i = 0; i < n; i++)
            {
                double max = double.NegativeInfinity;
                for (int j = 0; j < n; j++)
                {
                    double s = 0;
                    for (int c = 0; c < dh; c++) s += w[i * inner + h * dh + c] * w[j * inner + h * dh + c];
                    p[i * n + j] = s * scale;
                    max = Math.Max(max, p[i * n + j]);
                }
                double sum = 0;
                for (int j = 0; j < n; j++) { p[i * n + j] = Math.Exp(p[i * n + j] - max); sum += p[i * n + j]; }
                for (int j = 0; j < n; j++) p[i * n + j] /= sum;
                for (int c = 0; c < dh; c++)
                {
                    double acc = 0;
                    for (int j = 0; j < n; j++) acc += p[i * n + j] * w[j * inner + h * dh + c];
                    o[i * inner + h * dh + c] = acc;
                }
            }
            probs[h] = p;
        }
        var y = IstaReference.MatMulTransB(o, wout, n, inner, dim);
        if (bout is not null)
            for (int i = 0; i < n; i++)
                for (int j = 0; j < dim; j++) y[i * dim + j] += bout[j];
        return (y, new Saved(w, probs, o));
    }

    /// <summary>Gradients of one call: dX (assigned), dU, dWout, dBout (to be accumulated by the caller).</summary>
    public static (double[] dx, double[] du, double[] dwout, double[] dbout) Backward(
        double[] x, double[] u, double[] wout, Saved saved, double[] dy, int n, int dim, int heads, int dh)
    {
        int inner = heads * dh;
        double scale = 1.0 / Math.Sqrt(dh);
        var dwout = IstaReference.MatMulTransA(dy, saved.O, dim, n, inner);   // dyᵀ·O
        var dbout = new double[dim];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < dim; j++) dbout[j] += dy[i * dim + j];
        var dO = IstaReference.MatMul(dy, wout, n, dim, inner);                // dy·Wout
        var dw = new double[n * inner];
        var w = saved.W;
        for (int h = 0; h < heads; h++)
        {
            var p = saved.Probs[h];
            for (int i = 0; i < n; i++)
            {
                // dP_ij = dO_i · w_j ; dS = P ⊙ (dP − Σ_j dP_ij P_ij)
                var dp = new double[n];
                double dot = 0;
                for (int j = 0; j < n; j++)
                {
                    double s = 0;
                    for (int c = 0; c < dh; c++) s += dO[i * inner + h * dh + c] * w[j * inner + h * dh + c];
                    dp[j] = s;
                    dot += s * p[i * n + j];
                }
                for (int j = 0; j < n; j++)
                {
                    double pij = p[i * n + j];
                    double ds = pij * (dp[j] - dot) * scale;
                    for (int c = 0; c < dh; c++)
                    {
                        // value path: dw_j += P_ij·dO_i ; score path (S = w·wᵀ): dw_i += dS_ij·w_j, dw_j += dS_ij·w_i
                        dw[j * inner + h * dh + c] += pij * dO[i * inner + h * dh + c] + ds * w[i * inner + h * dh + c];
                        dw[i * inner + h * dh + c] += ds * w[j * inner + h * dh + c];
                    }
                }
            }
        }
        var du = IstaReference.MatMulTransA(dw, x, inner, n, dim);             // dwᵀ·Y
        var dx = IstaReference.MatMul(dw, u, n, inner, dim);                   // dw·U
        return (dx, du, dwout, dbout);
    }
}
