namespace CrateIL.Compute.Ops;

/// <summary>Row softmax and its backward in float64: the ground truth for every backend.</summary>
internal static class SoftmaxReference
{
    public static double[] Forward(ReadOnlySpan<double> x, int rows, int cols, double scale = 1.0)
    {
        var y = new double[rows * cols];
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * cols, cols);
            double max = double.NegativeInfinity;
            for (int j = 0; j < cols; j++) max = Math.Max(max, scale * xr[j]);
            double sum = 0;
            for (int j = 0; j < cols; j++) sum += y[r * cols + j] = Math.Exp(scale * xr[j] - max);
            for (int j = 0; j < cols; j++) y[r * cols + j] /= sum;
        }
        return y;
    }

    /// <summary>dx = scale · y ⊙ (dy − Σ dy⊙y) per row.</summary>
    public static double[] Backward(ReadOnlySpan<double> y, ReadOnlySpan<double> dy, int rows, int cols, double scale = 1.0)
    {
        var dx = new double[rows * cols];
        for (int r = 0; r < rows; r++)
        {
            int o = r * cols;
            double dot = 0;
            for (int j = 0; j < cols; j++) dot += dy[o + j] * y[o + j];
            for (int j = 0; j < cols; j++) dx[o + j] = scale * y[o + j] * (dy[o + j] - dot);
        }
        return dx;
    }
}
