namespace CrateIL.Compute.Ops;

/// <summary>Plain float64-accumulating GEMM: the ground truth every backend is tested against.</summary>
internal static class GemmReference
{
    /// <summary>Computes C in float64 from float inputs; C holds β·C_in on entry semantics (C_in read only if β ≠ 0).</summary>
    public static void Run(in GemmArgs g, ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<double> c)
    {
        for (int bt = 0; bt < g.Batch; bt++)
            for (int i = 0; i < g.M; i++)
                for (int j = 0; j < g.N; j++)
                {
                    double s = 0;
                    for (int p = 0; p < g.K; p++) s += (double)a[(int)g.IndexA(bt, i, p)] * b[(int)g.IndexB(bt, p, j)];
                    long ci = g.IndexC(bt, i, j);
                    c[(int)ci] = g.Alpha * s + (g.Beta == 0f ? 0.0 : g.Beta * c[(int)ci]);
                }
    }
}
