using CrateIL.Compute.Tensors;
using CrateIL.Crate.Models;

namespace CrateIL.Crate.Training;

/// <summary>The white-box measurements of one layer on the probe batch (means over the batch).</summary>
/// <param name="CodingRatePerHead">Rᶜ of each head's L2-normalised qkv output, mean over images.</param>
/// <param name="CodingRate">Sum of <paramref name="CodingRatePerHead"/> (the reference's Σ_k ½·logdet).</param>
/// <param name="Sparsity">Fraction of exact zeros in the layer's ISTA (second-half) output, mean over images.</param>
public sealed record LayerProbe(int Layer, double[] CodingRatePerHead, double CodingRate, double Sparsity);

/// <summary>
/// The layer-wise analysis of CRATE's vis_utils (crate-reference §1.5 last row, §1.8) on a fixed batch:
/// the coding rate Rᶜ(Z) = Σ_heads ½·logdet(I_m + (p/(m·ε))·X·Xᵀ) of each head's qkv output X [m tokens, p = dim_head]
/// with every token row L2-normalised first and ε = 0.01 (not ε², as the reference code does), and the sparsity of
/// the ISTA output (fraction of exact zeros). The log-determinant is computed on the host in float64 by Cholesky.
/// Because logdet(I_m + c·X·Xᵀ) = logdet(I_p + c·Xᵀ·X) (Sylvester's determinant identity), the smaller of the two
/// Grams is factorised: p×p whenever the head is narrower than the token count, which it always is for CRATE.
/// </summary>
public static class WhiteBoxProbes
{
    /// <summary>The reference code's ε.</summary>
    public const double Epsilon = 0.01;

    /// <summary>
    /// Rᶜ of one head: ½·logdet(I_m + (p/(m·ε))·X·Xᵀ) for tokens <paramref name="tokens"/> [m, p] (row-major),
    /// each row L2-normalised first (a zero row stays zero). Uses the p×p Gram when p &lt; m.
    /// </summary>
    public static double CodingRate(ReadOnlySpan<float> tokens, int m, int p, double epsilon = Epsilon)
    {
        if (m < 1 || p < 1) throw new ArgumentOutOfRangeException(nameof(m), $"CodingRate: need m ≥ 1 tokens and p ≥ 1 features (got {m}, {p})");
        if (tokens.Length < (long)m * p) throw new ArgumentException($"CodingRate: {tokens.Length} values for {m}×{p} tokens", nameof(tokens));
        if (!(epsilon > 0)) throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, "CodingRate: ε must be positive");
        var x = new double[m * p];
        for (int i = 0; i < m; i++)
        {
            double sum = 0;
            for (int j = 0; j < p; j++) { double v = tokens[i * p + j]; sum += v * v; }
            double scale = sum > 0 ? 1.0 / Math.Sqrt(sum) : 0.0;
            for (int j = 0; j < p; j++) x[i * p + j] = tokens[i * p + j] * scale;
        }
        double c = p / (m * epsilon);
        int n = Math.Min(m, p);
        var gram = new double[n * n];
        if (p <= m)
        {
            // I_p + c·XᵀX
            for (int a = 0; a < p; a++)
                for (int b = 0; b <= a; b++)
                {
                    double s = 0;
                    for (int i = 0; i < m; i++) s += x[i * p + a] * x[i * p + b];
                    gram[a * n + b] = gram[b * n + a] = c * s;
                }
        }
        else
        {
            // I_m + c·XXᵀ
            for (int a = 0; a < m; a++)
                for (int b = 0; b <= a; b++)
                {
                    double s = 0;
                    for (int j = 0; j < p; j++) s += x[a * p + j] * x[b * p + j];
                    gram[a * n + b] = gram[b * n + a] = c * s;
                }
        }
        for (int i = 0; i < n; i++) gram[i * n + i] += 1.0;
        return 0.5 * LogDetCholesky(gram, n);
    }

    /// <summary>logdet of a symmetric positive-definite n×n matrix (overwritten with its Cholesky factor).</summary>
    public static double LogDetCholesky(double[] a, int n)
    {
        double logdet = 0;
        for (int j = 0; j < n; j++)
        {
            double d = a[j * n + j];
            for (int k = 0; k < j; k++) d -= a[j * n + k] * a[j * n + k];
            if (!(d > 0)) throw new ArithmeticException($"LogDetCholesky: the matrix is not positive definite (pivot {j} = {d})");
            double l = Math.Sqrt(d);
            a[j * n + j] = l;
            logdet += 2 * Math.Log(l);
            for (int i = j + 1; i < n; i++)
            {
                double s = a[i * n + j];
                for (int k = 0; k < j; k++) s -= a[i * n + k] * a[j * n + k];
                a[i * n + j] = s / l;
            }
        }
        return logdet;
    }

    /// <summary>Fraction of exact zeros in <paramref name="values"/>.</summary>
    public static double ZeroFraction(ReadOnlySpan<float> values)
    {
        if (values.IsEmpty) return 0;
        int zeros = 0;
        foreach (float v in values) if (v == 0f) zeros++;
        return (double)zeros / values.Length;
    }

    /// <summary>
    /// Runs <paramref name="model"/> (in evaluation mode) on <paramref name="images"/> [B, C, H, W] and measures every
    /// layer. Restores the model's training flag afterwards.
    /// </summary>
    public static LayerProbe[] Measure(CrateModel model, Tensor images)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(images);
        bool training = model.Training;
        model.Training = false;
        try
        {
            model.Forward(images);
            var c = model.Config;
            int batch = model.Batch, tokens = model.Tokens, heads = c.Heads, p = c.DimHead, inner = c.Inner;
            var result = new LayerProbe[c.Depth];
            using var keys = model.Device.Allocate(batch, tokens, inner);
            var keyHost = new float[batch * tokens * inner];
            var head = new float[tokens * p];
            for (int l = 0; l < c.Depth; l++)
            {
                model.Keys(l, keys);
                keys.CopyTo(keyHost);
                var perHead = new double[heads];
                for (int b = 0; b < batch; b++)
                    for (int h = 0; h < heads; h++)
                    {
                        for (int t = 0; t < tokens; t++)
                            keyHost.AsSpan((b * tokens + t) * inner + h * p, p).CopyTo(head.AsSpan(t * p, p));
                        perHead[h] += CodingRate(head, tokens, p) / batch;
                    }
                var features = model.Features(l + 1).ToArray();
                double sparsity = 0;
                int perImage = tokens * c.Dim;
                for (int b = 0; b < batch; b++) sparsity += ZeroFraction(features.AsSpan(b * perImage, perImage)) / batch;
                result[l] = new LayerProbe(l, perHead, perHead.Sum(), sparsity);
            }
            return result;
        }
        finally
        {
            model.Training = training;
        }
    }
}
