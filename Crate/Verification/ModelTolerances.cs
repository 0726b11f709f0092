using CrateIL.Compute.Verification;

namespace CrateIL.Crate.Verification;

/// <summary>
/// Whole-model bounds, normwise (relative to each tensor's largest entry), shared by the model tests and
/// <c>crate selftest</c>: logits and features within 1e-5, parameter gradients within 1e-4 of float64 PyTorch.
/// </summary>
public static class ModelTolerances
{
    public const double ActivationBound = 1e-5;
    public const double GradientBound = 1e-4;

    public static Tolerance Activations(ReadOnlySpan<double> expected) => Tolerance.Normwise(expected, ActivationBound);

    public static Tolerance Gradients(ReadOnlySpan<double> expected) => Tolerance.Normwise(expected, GradientBound);

    /// <summary>
    /// One float32 path against another (a device against the CPU): each lies within the bound of float64, so they
    /// may differ by twice the bound.
    /// </summary>
    public static Tolerance AgainstCpu(ReadOnlySpan<double> cpu, double bound) => Tolerance.Normwise(cpu, 2 * bound);
}
