using CrateIL.Compute.Devices;
using CrateIL.Compute.Ops;
using CrateIL.Testing;
using Xunit;

namespace CrateIL.Compute.Tests;

public class ReductionTests
{
    private static readonly ReduceOp[] Ops = [ReduceOp.Sum, ReduceOp.Max, ReduceOp.L2Norm];

    private static Tolerance TolFor(ReduceOp op, long n) => OpTolerances.Reduction(op, n);

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void RowReductionsMatchReference(string backend)
    {
        var dev = Backends.Get(backend);
        int seed = 0;
        foreach (var (rows, cols) in RowShapes.For(backend))
            foreach (var op in Ops)
            {
                // All-negative rows for max check the identity is −∞, not 0.
                var x = op == ReduceOp.Max && seed % 2 == 0
                    ? TestData.Uniform(++seed, rows * cols, -5f, -1f)
                    : TestData.Uniform(++seed, rows * cols, -3f, 3f);
                using var tx = dev.FromHost(x, rows, cols);
                using var result = RowShapes.Poisoned(dev, rows);
                Reduce.Rows(tx, result, op);
                Check.Close(result.ToArray(), ReduceReference.Rows(TestData.ToDouble(x), rows, cols, op), TolFor(op, cols),
                    $"{op} rows {rows}x{cols} on {backend}");
            }
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void WholeTensorReductionsMatchReferenceAndAreDeterministic(string backend)
    {
        var dev = Backends.Get(backend);
        int[][] shapes = Backends.IsSimulator(backend)
            ? [[1], [7, 1], [3, 5, 43], [1000]]
            : [[1], [7, 1], [3, 5, 43], [65, 785], [2, 100003]];
        int seed = 50;
        foreach (var shape in shapes)
            foreach (var op in Ops)
            {
                long n = shape.Aggregate(1L, (a, b) => a * b);
                var x = op == ReduceOp.Max ? TestData.Uniform(++seed, n, -9f, -2f) : TestData.Uniform(++seed, n);
                using var tx = dev.FromHost(x, shape);
                using var result = RowShapes.Poisoned(dev, 1);
                Reduce.All(tx, result, op);
                float first = result.ToArray()[0];
                Check.Close(first, ReduceReference.Of(TestData.ToDouble(x), op), TolFor(op, n), $"{op} of [{string.Join(", ", shape)}] on {backend}");
                float again = Reduce.All(tx, op);
                Assert.Equal(BitConverter.SingleToInt32Bits(first), BitConverter.SingleToInt32Bits(again));
            }
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void NamedShortcutsAgreeWithTheGeneralForm(string backend)
    {
        var dev = Backends.Get(backend);
        float[] x = [3f, -4f, 0f, 12f, 1f, -1f];
        using var t = dev.FromHost(x, 2, 3);
        Assert.Equal(11f, Reduce.Sum(t));
        Assert.Equal(12f, Reduce.Max(t));
        Check.Close(Reduce.L2Norm(t), Math.Sqrt(171.0), new Tolerance(0, 1e-6), "l2 norm");
        using var rows = dev.Allocate(2);
        Reduce.SumRows(t, rows);
        Assert.Equal([-1f, 12f], rows.ToArray());
        Reduce.MaxRows(t, rows);
        Assert.Equal([3f, 12f], rows.ToArray());
        Reduce.L2NormRows(t, rows);
        Check.Close(rows.ToArray(), [5.0, Math.Sqrt(146.0)], new Tolerance(0, 1e-6), "l2 rows");
    }

    [Fact]
    public void EmptyAndMismatchedInputs()
    {
        using var dev = CpuDevice.Create(1);
        using var empty = dev.Zeros(0);
        Assert.Equal(0f, Reduce.Sum(empty));
        Assert.Equal(0f, Reduce.L2Norm(empty));
        Assert.Throws<ArgumentException>(() => Reduce.Max(empty));
        using var x = dev.Zeros(4, 3);
        using var wrong = dev.Zeros(3);
        var e = Assert.Throws<ArgumentException>(() => Reduce.SumRows(x, wrong));
        Assert.Contains("4 elements", e.Message);
    }
}
