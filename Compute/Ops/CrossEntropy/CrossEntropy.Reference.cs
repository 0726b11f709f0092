namespace CrateIL.Compute.Ops;

/// <summary>
/// Softmax cross-entropy with label smoothing in float64, written from the definition −Σ_c q_c·log p_c
/// (independently of the shifted closed form the backends use): the ground truth for every backend.
/// </summary>
internal static class CrossEntropyReference
{
    public static (double[] Losses, double Mean) Forward(ReadOnlySpan<double> logits, ReadOnlySpan<int> labels,
        int rows, int classes, double smoothing, int ignoreIndex = CrossEntropy.DefaultIgnoreIndex)
    {
        var losses = new double[rows];
        double total = 0;
        int counted = 0;
        for (int r = 0; r < rows; r++)
        {
            if (labels[r] == ignoreIndex) continue;
            var logp = LogSoftmax(logits.Slice(r * classes, classes));
            double loss = 0;
            for (int c = 0; c < classes; c++) loss -= Target(c, labels[r], classes, smoothing) * logp[c];
            losses[r] = loss;
            total += loss;
            counted++;
        }
        return (losses, total / counted);
    }

    /// <summary>∂(upstream · mean loss)/∂logits.</summary>
    public static double[] Backward(ReadOnlySpan<double> logits, ReadOnlySpan<int> labels, int rows, int classes,
        double smoothing, double upstream = 1.0, int ignoreIndex = CrossEntropy.DefaultIgnoreIndex)
    {
        var d = new double[rows * classes];
        int counted = 0;
        foreach (var l in labels) if (l != ignoreIndex) counted++;
        for (int r = 0; r < rows; r++)
        {
            if (labels[r] == ignoreIndex) continue;
            var logp = LogSoftmax(logits.Slice(r * classes, classes));
            for (int c = 0; c < classes; c++)
                d[r * classes + c] = upstream * (Math.Exp(logp[c]) - Target(c, labels[r], classes, smoothing)) / counted;
        }
        return d;
    }

    private static double Target(int c, int label, int classes, double smoothing) =>
        (c == label ? 1.0 - smoothing : 0.0) + smoothing / classes;

    private static double[] LogSoftmax(ReadOnlySpan<double> x)
    {
        double max = double.NegativeInfinity;
        foreach (var v in x) max = Math.Max(max, v);
        double sum = 0;
        foreach (var v in x) sum += Math.Exp(v - max);
        double lse = max + Math.Log(sum);
        var r = new double[x.Length];
        for (int i = 0; i < x.Length; i++) r[i] = x[i] - lse;
        return r;
    }
}
