namespace CrateIL.Compute.Ops;

/// <summary>Reductions in float64: the ground truth for every backend.</summary>
internal static class ReduceReference
{
    public static double Of(ReadOnlySpan<double> x, ReduceOp op)
    {
        double acc = op == ReduceOp.Max ? double.NegativeInfinity : 0.0;
        foreach (var v in x)
            acc = op switch
            {
                ReduceOp.Sum => acc + v,
                ReduceOp.Max => Math.Max(acc, v),
                _ => acc + v * v,
            };
        return op == ReduceOp.L2Norm ? Math.Sqrt(acc) : acc;
    }

    public static double[] Rows(ReadOnlySpan<double> x, int rows, int cols, ReduceOp op)
    {
        var r = new double[rows];
        for (int i = 0; i < rows; i++) r[i] = Of(x.Slice(i * cols, cols), op);
        return r;
    }
}
