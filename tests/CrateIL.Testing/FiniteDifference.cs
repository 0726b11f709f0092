namespace CrateIL.Testing;

/// <summary>Central finite differences in float64, for checking reference backward passes.</summary>
public static class FiniteDifference
{
    /// <summary>∂f/∂x_i for every i, by (f(x+h e_i) − f(x−h e_i)) / 2h. <paramref name="x"/> is restored.</summary>
    public static double[] Gradient(Func<double[], double> f, double[] x, double h = 1e-6)
    {
        var g = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            double xi = x[i];
            x[i] = xi + h; double fp = f(x);
            x[i] = xi - h; double fm = f(x);
            x[i] = xi;
            g[i] = (fp - fm) / (2 * h);
        }
        return g;
    }

    /// <summary>
    /// A scalar probe of a vector function: L(x) = Σ_j w_j·y_j(x) with fixed weights, so that the analytic
    /// input gradient of L is the backward pass applied to dy = w.
    /// </summary>
    public static double Probe(double[] y, double[] w)
    {
        double s = 0;
        for (int i = 0; i < y.Length; i++) s += y[i] * w[i];
        return s;
    }
}
