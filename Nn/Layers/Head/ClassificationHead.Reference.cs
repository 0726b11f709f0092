using CrateIL.Compute.Ops;

namespace CrateIL.Nn.Layers;

/// <summary>Float64 reference of <see cref="ClassificationHead"/>: pool → LayerNorm → Linear.</summary>
public static class ClassificationHeadReference
{
    public sealed record Saved(double[] Pooled, double[] Mean, double[] Rstd, double[] Normed);

    public static double[] Pool(double[] x, int batch, int tokens, int dim, Pooling pooling)
    {
        var pooled = new double[batch * dim];
        for (int b = 0; b < batch; b++)
            for (int j = 0; j < dim; j++)
            {
                if (pooling == Pooling.Cls) { pooled[b * dim + j] = x[b * tokens * dim + j]; continue; }
                double s = 0;
                for (int t = 0; t < tokens; t++) s += x[(b * tokens + t) * dim + j];
                pooled[b * dim + j] = s / tokens;
            }
        return pooled;
    }

    public static (double[] Logits, Saved Saved) Forward(double[] x, double[] gamma, double[] beta, double[] w, double[] bias,
        int batch, int tokens, int dim, int classes, Pooling pooling)
    {
        var pooled = Pool(x, batch, tokens, dim, pooling);
        var (normed, mean, rstd) = LayerNormReference.Forward(pooled, gamma, beta, batch, dim);
        return (LinearReference.Forward(normed, w, bias, batch, dim, classes), new Saved(pooled, mean, rstd, normed));
    }

    /// <summary>dx (assigned) and fresh parameter gradients dγ, dβ, dW, db.</summary>
    public static (double[] Dx, double[] DGamma, double[] DBeta, double[] DW, double[] DB) Backward(double[] dLogits, double[] gamma, double[] w,
        Saved s, int batch, int tokens, int dim, int classes, Pooling pooling)
    {
        var (dNormed, dw, db) = LinearReference.Backward(s.Normed, w, dLogits, batch, dim, classes);
        var (dPooled, dg, dbeta) = LayerNormReference.Backward(dNormed, s.Pooled, gamma, s.Mean, s.Rstd, batch, dim);
        var dx = new double[batch * tokens * dim];
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < tokens; t++)
                for (int j = 0; j < dim; j++)
                    dx[(b * tokens + t) * dim + j] = pooling == Pooling.Mean ? dPooled[b * dim + j] / tokens : t == 0 ? dPooled[b * dim + j] : 0;
        return (dx, dg, dbeta, dw, db);
    }
}
