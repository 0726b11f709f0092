using CrateIL.Compute.Ops;

namespace CrateIL.Compute.Verification;

/// <summary>
/// The float32-against-float64 bounds of every Compute op, shared by the unit tests and <c>crate selftest</c>
/// (one source of truth: a bound loosened or tightened here changes both).
/// </summary>
public static class OpTolerances
{
    /// <summary>GEMM: float32 accumulation over k terms of size ≤ 1, so the error grows like √k.</summary>
    public static Tolerance Gemm(int k) => new(1e-4 * Math.Sqrt(Math.Max(k, 1)), 1e-4);

    /// <summary>Add, multiply, scale, axpy, bias add: one or two roundings.</summary>
    public static readonly Tolerance Arithmetic = new(1e-7, 1e-6);

    /// <summary>Bias gradient: a column sum over the rows.</summary>
    public static readonly Tolerance BiasGrad = new(1e-5, 1e-5);

    /// <summary>ReLU and the soft thresholds (forward and backward): exact up to one rounding.</summary>
    public static readonly Tolerance Threshold = new(1e-7, 1e-6);

    public static readonly Tolerance GeluForward = new(1e-6, 1e-5);
    public static readonly Tolerance GeluBackward = new(2e-6, 1e-5);

    public static readonly Tolerance SoftmaxForward = new(1e-6, 1e-5);
    public static readonly Tolerance SoftmaxBackward = new(1e-6, 1e-4);

    public static readonly Tolerance LayerNormForward = new(2e-5, 1e-4);
    public static readonly Tolerance LayerNormBackward = new(1e-4, 1e-4);

    public static readonly Tolerance CrossEntropyLoss = new(2e-5, 1e-5);
    public static readonly Tolerance CrossEntropyGrad = new(1e-7, 1e-4);

    /// <summary>Reductions over n elements: max is exact; a float32 sum errs like √n.</summary>
    public static Tolerance Reduction(ReduceOp op, long n) => op switch
    {
        ReduceOp.Max => new Tolerance(0, 0),
        ReduceOp.Sum => new Tolerance(2e-6 * Math.Sqrt(n) + 1e-6, 1e-5),
        _ => new Tolerance(1e-6, 2e-5),
    };
}
