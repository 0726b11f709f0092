namespace CrateIL.Compute.Verification;

/// <summary>
/// An explicit per-op tolerance: |actual − expected| ≤ Abs + Rel·|expected| must hold element-wise.
/// Lives in the library (not the test project) so that the tests and <c>crate selftest</c> judge with the same bounds.
/// </summary>
public readonly record struct Tolerance(double Abs, double Rel)
{
    public bool Accepts(double actual, double expected) =>
        !double.IsNaN(actual) && Math.Abs(actual - expected) <= Abs + Rel * Math.Abs(expected);

    /// <summary>
    /// A relative error of <paramref name="bound"/> measured against the tensor's scale: Abs = bound·max|e|, Rel = bound.
    /// For results whose entries are sums of cancelling terms, where element-wise relative error is not achievable.
    /// </summary>
    public static Tolerance Normwise(ReadOnlySpan<double> expected, double bound)
    {
        double scale = 0;
        foreach (var e in expected) scale = Math.Max(scale, Math.Abs(e));
        return new Tolerance(bound * scale, bound);
    }

    public override string ToString() => $"abs {Abs:g3} + rel {Rel:g3}";
}
