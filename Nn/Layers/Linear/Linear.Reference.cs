namespace CrateIL.Nn.Layers;

/// <summary>Float64 reference of <see cref="Linear"/>: y = x·Wᵀ + b, W [out, in], row-major token rows.</summary>
public static class LinearReference
{
    public static double[] Forward(double[] x, double[] w, double[]? b, int rows, int inFeatures, int outFeatures)
    {
        var y = new double[rows * outFeatures];
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < outFeatures; o++)
            {
                double s = b is null ? 0 : b[o];
                for (int i = 0; i < inFeatures; i++) s += x[r * inFeatures + i] * w[o * inFeatures + i];
                y[r * outFeatures + o] = s;
            }
        return y;
    }

    /// <summary>dx = dy·W; dW = dyᵀ·x; db = Σ_rows dy (fresh, not accumulated).</summary>
    public static (double[] dx, double[] dw, double[] db) Backward(double[] x, double[] w, double[] dy, int rows, int inFeatures, int outFeatures)
    {
        var dx = new double[rows * inFeatures];
        var dw = new double[outFeatures * inFeatures];
        var db = new double[outFeatures];
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < outFeatures; o++)
            {
                double g = dy[r * outFeatures + o];
                db[o] += g;
                for (int i = 0; i < inFeatures; i++)
                {
                    dx[r * inFeatures + i] += g * w[o * inFeatures + i];
                    dw[o * inFeatures + i] += g * x[r * inFeatures + i];
                }
            }
        return (dx, dw, db);
    }
}
