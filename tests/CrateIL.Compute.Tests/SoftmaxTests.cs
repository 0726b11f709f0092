using CrateIL.Compute.Devices;
using CrateIL.Compute.Ops;
using CrateIL.Compute.Tensors;
using CrateIL.Testing;
using Xunit;

namespace CrateIL.Compute.Tests;

/// <summary>Odd row/column counts shared by the row-op tests; the ILGPU simulator gets a small subset.</summary>
internal static class RowShapes
{
    private static readonly int[] Rows = [1, 7, 65];
    private static readonly int[] Cols = [1, 7, 65, 127, 785];

    public static IEnumerable<(int Rows, int Cols)> For(string backend)
    {
        if (Backends.IsSimulator(backend))
            return [(1, 1), (7, 7), (65, 7), (3, 65), (2, 127), (1, 785)];
        return from r in Rows from c in Cols select (r, c);
    }

    public static Tensor Poisoned(Device device, params int[] shape)
    {
        var t = device.Allocate(shape);
        t.Fill(float.NaN);
        return t;
    }
}

public class SoftmaxTests
{
    private static readonly Tolerance Forward = OpTolerances.SoftmaxForward;
    private static readonly Tolerance BackwardTol = OpTolerances.SoftmaxBackward;

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void ForwardMatchesReference(string backend)
    {
        var dev = Backends.Get(backend);
        int seed = 0;
        foreach (var (rows, cols) in RowShapes.For(backend))
            foreach (float scale in new[] { 1f, 0.125f, -0.5f })
            {
                var x = TestData.Uniform(++seed, rows * cols, -3f, 3f);
                using var tx = dev.FromHost(x, rows, cols);
                using var ty = RowShapes.Poisoned(dev, rows, cols);
                Softmax.Forward(tx, ty, scale);
                var expected = SoftmaxReference.Forward(TestData.ToDouble(x), rows, cols, scale);
                Check.Close(ty.ToArray(), expected, Forward, $"softmax {rows}x{cols} scale {scale} on {backend}");
            }
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void LargeMagnitudeInputsDoNotOverflow(string backend)
    {
        var dev = Backends.Get(backend);
        int rows = 5, cols = Backends.IsSimulator(backend) ? 33 : 785;
        // ±80 scaled by 2 spans ±160: exp(160) overflows float, so only a max-subtracted softmax survives.
        var x = TestData.Uniform(7, rows * cols, -80f, 80f);
        for (int j = 0; j < cols; j++) x[cols + j] = 88f;                 // a constant row → uniform
        for (int j = 0; j < cols; j++) x[2 * cols + j] = -100f + j % 3;   // all very negative
        using var tx = dev.FromHost(x, rows, cols);
        using var ty = RowShapes.Poisoned(dev, rows, cols);
        Softmax.Forward(tx, ty, 2f);
        var y = ty.ToArray();
        Assert.All(y, v => Assert.True(float.IsFinite(v), "softmax produced a non-finite value"));
        // Rounding of 2·x near ±160 is ~1e-5 absolute in the exponent, hence the relative tolerance.
        Check.Close(y, SoftmaxReference.Forward(TestData.ToDouble(x), rows, cols, 2.0), new Tolerance(1e-6, 1e-4), $"softmax ±160 on {backend}");
        for (int r = 0; r < rows; r++)
        {
            double sum = 0;
            for (int j = 0; j < cols; j++) sum += y[r * cols + j];
            Check.Close(sum, 1.0, new Tolerance(1e-5, 0), $"row {r} sums to one");
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void ForwardInPlaceMatchesOutOfPlace(string backend)
    {
        var dev = Backends.Get(backend);
        int rows = 7, cols = 65;
        var x = TestData.Uniform(3, rows * cols, -4f, 4f);
        using var t = dev.FromHost(x, 1, rows, cols);   // rank 3: rows are the product of the leading dims
        Softmax.Forward(t, t, 0.5f);
        Check.Close(t.ToArray(), SoftmaxReference.Forward(TestData.ToDouble(x), rows, cols, 0.5), Forward, $"in-place softmax on {backend}");
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void BackwardMatchesReference(string backend)
    {
        var dev = Backends.Get(backend);
        int seed = 100;
        foreach (var (rows, cols) in RowShapes.For(backend))
            foreach (float scale in new[] { 1f, 0.125f })
            {
                var x = TestData.Uniform(++seed, rows * cols, -3f, 3f);
                var dy = TestData.Normal(++seed, rows * cols);
                var y = Array.ConvertAll(SoftmaxReference.Forward(TestData.ToDouble(x), rows, cols, scale), v => (float)v);
                var expected = SoftmaxReference.Backward(TestData.ToDouble(y), TestData.ToDouble(dy), rows, cols, scale);
                using var ty = dev.FromHost(y, rows, cols);
                using var tdy = dev.FromHost(dy, rows, cols);
                using var tdx = RowShapes.Poisoned(dev, rows, cols);
                Softmax.Backward(ty, tdy, tdx, scale);
                Check.Close(tdx.ToArray(), expected, BackwardTol, $"softmax backward {rows}x{cols} scale {scale} on {backend}");
                Softmax.Backward(ty, tdy, tdy, scale);   // dx may overwrite dy
                Check.Close(tdy.ToArray(), expected, BackwardTol, $"in-place softmax backward {rows}x{cols} on {backend}");
            }
    }

    [Theory]
    [InlineData(1, 1, 1.0)]
    [InlineData(3, 7, 1.0)]
    [InlineData(2, 9, 0.35)]
    public void ReferenceBackwardMatchesFiniteDifferences(int rows, int cols, double scale)
    {
        var x = TestData.ToDouble(TestData.Uniform(rows + cols, rows * cols, -2f, 2f));
        var w = TestData.ToDouble(TestData.Normal(rows * cols + 1, rows * cols));
        double Loss(double[] v) => FiniteDifference.Probe(SoftmaxReference.Forward(v, rows, cols, scale), w);
        var numeric = FiniteDifference.Gradient(Loss, x);
        var analytic = SoftmaxReference.Backward(SoftmaxReference.Forward(x, rows, cols, scale), w, rows, cols, scale);
        Check.Close(analytic, numeric, new Tolerance(1e-7, 1e-6), "softmax reference backward vs finite differences");
    }

    [Fact]
    public void MismatchedShapesAreRejected()
    {
        using var dev = CpuDevice.Create(1);
        using var x = dev.Zeros(3, 4);
        using var y = dev.Zeros(4, 3);
        var e = Assert.Throws<ArgumentException>(() => Softmax.Forward(x, y));
        Assert.Contains("[4, 3]", e.Message);
        using var empty = dev.Zeros(3, 0);
        Assert.Throws<ArgumentException>(() => Softmax.Forward(empty, empty));
        Assert.Throws<ArgumentOutOfRangeException>(() => Softmax.Forward(x, x, float.NaN));
    }
}
