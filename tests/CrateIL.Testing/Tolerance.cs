namespace CrateIL.Testing;

/// <summary>
/// An explicit per-op tolerance: |actual − expected| ≤ Abs + Rel·|expected| must hold element-wise.
/// </summary>
public readonly record struct Tolerance(double Abs, double Rel)
{
    public bool Accepts(double actual, double expected) =>
        !double.IsNaN(actual) && Math.Abs(actual - expected) <= Abs + Rel * Math.Abs(expected);

    public override string ToString() => $"abs {Abs:g3} + rel {Rel:g3}";
}
