namespace CrateIL.Compute.Ops;

/// <summary>Float64 elementwise arithmetic and bias: the ground truth for the float backends.</summary>
internal static class ElementwiseReference
{
    public static double[] Add(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        var z = new double[x.Length];
        for (int i = 0; i < z.Length; i++) z[i] = (double)x[i] + y[i];
        return z;
    }

    public static double[] Multiply(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        var z = new double[x.Length];
        for (int i = 0; i < z.Length; i++) z[i] = (double)x[i] * y[i];
        return z;
    }

    public static double[] Scale(ReadOnlySpan<float> x, double alpha)
    {
        var y = new double[x.Length];
        for (int i = 0; i < y.Length; i++) y[i] = alpha * x[i];
        return y;
    }

    /// <summary>y_in + α·x.</summary>
    public static double[] Axpy(double alpha, ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        var r = new double[x.Length];
        for (int i = 0; i < r.Length; i++) r[i] = y[i] + alpha * x[i];
        return r;
    }

    /// <summary>y[r, c] = x[r, c] + bias[c] for x of rows × bias.Length.</summary>
    public static double[] BiasAdd(ReadOnlySpan<float> x, ReadOnlySpan<float> bias)
    {
        int cols = bias.Length;
        var y = new double[x.Length];
        for (int i = 0; i < y.Length; i++) y[i] = (double)x[i] + bias[i % cols];
        return y;
    }

    /// <summary>dbias_in[c] + Σ_r dy[r, c] (the accumulate semantics of the backward pass).</summary>
    public static double[] BiasGrad(ReadOnlySpan<float> dy, ReadOnlySpan<float> dbiasIn)
    {
        int cols = dbiasIn.Length;
        var g = new double[cols];
        for (int c = 0; c < cols; c++) g[c] = dbiasIn[c];
        for (int i = 0; i < dy.Length; i++) g[i % cols] += dy[i];
        return g;
    }
}
