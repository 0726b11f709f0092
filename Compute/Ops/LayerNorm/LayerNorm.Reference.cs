namespace CrateIL.Compute.Ops;

/// <summary>LayerNorm forward/backward in float64 (two-pass statistics): the ground truth for every backend.</summary>
internal static class LayerNormReference
{
    /// <summary>Empty <paramref name="gamma"/>/<paramref name="beta"/> mean no scale / no shift.</summary>
    public static (double[] Y, double[] Mean, double[] Rstd) Forward(ReadOnlySpan<double> x, ReadOnlySpan<double> gamma,
        ReadOnlySpan<double> beta, int rows, int cols, double eps = LayerNorm.DefaultEpsilon)
    {
        var y = new double[rows * cols];
        var mean = new double[rows];
        var rstd = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * cols, cols);
            double m = 0;
            foreach (var v in xr) m += v;
            m /= cols;
            double var = 0;
            foreach (var v in xr) var += (v - m) * (v - m);
            var /= cols;
            double s = 1.0 / Math.Sqrt(var + eps);
            for (int j = 0; j < cols; j++)
                y[r * cols + j] = (xr[j] - m) * s * (gamma.IsEmpty ? 1.0 : gamma[j]) + (beta.IsEmpty ? 0.0 : beta[j]);
            mean[r] = m;
            rstd[r] = s;
        }
        return (y, mean, rstd);
    }

    /// <summary>
    /// dx = rstd·(g − mean(g) − n·mean(g⊙n)) with g = γ⊙dy, n = (x − mean)·rstd; dγ = Σ_rows dy⊙n; dβ = Σ_rows dy.
    /// Returns fresh dγ/dβ (not accumulated).
    /// </summary>
    public static (double[] Dx, double[] DGamma, double[] DBeta) Backward(ReadOnlySpan<double> dy, ReadOnlySpan<double> x,
        ReadOnlySpan<double> gamma, ReadOnlySpan<double> mean, ReadOnlySpan<double> rstd, int rows, int cols)
    {
        var dx = new double[rows * cols];
        var dGamma = new double[cols];
        var dBeta = new double[cols];
        for (int r = 0; r < rows; r++)
        {
            int o = r * cols;
            double sg = 0, sgn = 0;
            for (int j = 0; j < cols; j++)
            {
                double n = (x[o + j] - mean[r]) * rstd[r];
                double g = dy[o + j] * (gamma.IsEmpty ? 1.0 : gamma[j]);
                sg += g;
                sgn += g * n;
                dGamma[j] += dy[o + j] * n;
                dBeta[j] += dy[o + j];
            }
            sg /= cols;
            sgn /= cols;
            for (int j = 0; j < cols; j++)
            {
                double n = (x[o + j] - mean[r]) * rstd[r];
                double g = dy[o + j] * (gamma.IsEmpty ? 1.0 : gamma[j]);
                dx[o + j] = rstd[r] * (g - sg - n * sgn);
            }
        }
        return (dx, dGamma, dBeta);
    }
}
