using CrateIL.Compute.Verification;

namespace CrateIL.Nn.Verification;

/// <summary>
/// The float32-against-float64 bounds of the Nn layers and blocks, shared by the unit tests and <c>crate selftest</c>
/// (one source of truth). LayerNorm as a layer uses <see cref="OpTolerances.LayerNormForward"/> and its backward.
/// </summary>
public static class LayerTolerances
{
    public static readonly Tolerance LinearForward = new(2e-6, 1e-5);
    public static readonly Tolerance LinearBackward = new(1e-5, 1e-5);

    public static readonly Tolerance MlpForward = new(5e-5, 1e-4);
    public static readonly Tolerance MlpBackward = new(2e-4, 2e-4);

    /// <summary>ISTA (core and block), forward and backward.</summary>
    public static readonly Tolerance Ista = new(2e-5, 1e-5);

    public static readonly Tolerance PatchEmbeddingForward = new(5e-5, 1e-4);
    public static readonly Tolerance PatchEmbeddingBackward = new(2e-4, 2e-4);

    public static readonly Tolerance HeadForward = new(2e-5, 1e-4);
    public static readonly Tolerance HeadBackward = new(1e-4, 1e-4);

    /// <summary>Optimizer steps (AdamW, Lion, SGD): parameters and first-moment/momentum state after a few steps.</summary>
    public static readonly Tolerance OptimizerStep = new(2e-6, 2e-6);

    /// <summary>AdamW's second moment (squares of gradients, small values).</summary>
    public static readonly Tolerance AdamSecondMoment = new(1e-9, 2e-6);

    /// <summary>
    /// MSSA and MHSA blocks, normwise: |a − e| ≤ 1e-5·max|e| + 1e-5·|e|. Element-wise relative error alone is not
    /// achievable for entries that are sums of cancelling terms (near-zero gradient entries); measured worst cases
    /// are 1–2.5e-6·max|e| (forward and gradients, CPU and PoCL, up to N = 300 and dh = 64), so this has ≥ 4× margin.
    /// </summary>
    public static Tolerance Attention(ReadOnlySpan<double> expected) => Tolerance.Normwise(expected, 1e-5);
}
