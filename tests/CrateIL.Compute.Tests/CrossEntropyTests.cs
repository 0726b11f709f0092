using CrateIL.Compute.Devices;
using CrateIL.Compute.Ops;
using CrateIL.Testing;
using Xunit;

namespace CrateIL.Compute.Tests;

public class CrossEntropyTests
{
    private static readonly Tolerance LossTol = OpTolerances.CrossEntropyLoss;
    private static readonly Tolerance GradTol = OpTolerances.CrossEntropyGrad;
    private static readonly float[] Smoothings = [0f, 0.1f];

    /// <summary>Labels with every 5th row ignored (when there are several rows).</summary>
    private static int[] LabelsFor(int seed, int rows, int classes)
    {
        var labels = TestData.Labels(seed, rows, classes);
        for (int r = 3; r < rows; r += 5) labels[r] = CrossEntropy.DefaultIgnoreIndex;
        return labels;
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void ForwardAndBackwardMatchReference(string backend)
    {
        var dev = Backends.Get(backend);
        int seed = 0;
        foreach (var (rows, classes) in RowShapes.For(backend))
            foreach (float eps in Smoothings)
            {
                // An offset of 40 checks the shifted closed form does not cancel digits.
                var x = TestData.Uniform(++seed, rows * classes, -6f, 6f);
                if (seed % 2 == 0) for (int i = 0; i < x.Length; i++) x[i] += 40f;
                var labels = LabelsFor(seed, rows, classes);
                var xd = TestData.ToDouble(x);
                var (losses, mean) = CrossEntropyReference.Forward(xd, labels, rows, classes, eps);
                string what = $"cross-entropy {rows}x{classes} ε={eps} on {backend}";

                using var tx = dev.FromHost(x, rows, classes);
                using var tl = RowShapes.Poisoned(dev, rows);
                float m = CrossEntropy.Forward(tx, labels, tl, eps);
                Check.Close(tl.ToArray(), losses, LossTol, what + " losses");
                Check.Close(m, mean, LossTol, what + " mean");

                using var td = RowShapes.Poisoned(dev, rows, classes);
                CrossEntropy.Backward(tx, labels, td, eps, upstream: 0.7f);
                var grad = CrossEntropyReference.Backward(xd, labels, rows, classes, eps, 0.7);
                Check.Close(td.ToArray(), grad, GradTol, what + " dlogits");
                CrossEntropy.Backward(tx, labels, tx, eps, upstream: 0.7f);   // in place over the logits
                Check.Close(tx.ToArray(), grad, GradTol, what + " in-place dlogits");
            }
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void DeviceMeanWithTargetsUploadedOnceMatchesReferenceAndTheHostLoss(string backend)
    {
        var dev = Backends.Get(backend);
        using var targets = new CrossEntropyTargets(dev);
        // The mean goes to one slot of a larger buffer (as the trainer's interval log): its neighbours stay untouched.
        using var slots = RowShapes.Poisoned(dev, 3);
        using var slot = slots.Slice(1, 1);
        int seed = 100, batches = 0;
        foreach (var (rows, classes) in RowShapes.For(backend))
            foreach (float eps in Smoothings)
            {
                var x = TestData.Uniform(++seed, rows * classes, -6f, 6f);
                var labels = LabelsFor(seed, rows, classes);
                var xd = TestData.ToDouble(x);
                var (losses, mean) = CrossEntropyReference.Forward(xd, labels, rows, classes, eps);
                string what = $"device cross-entropy {rows}x{classes} ε={eps} on {backend}";
                using var tx = dev.FromHost(x, rows, classes);
                targets.Set(labels, classes);
                batches++;
                Assert.Equal(rows - labels.Count(l => l == CrossEntropy.DefaultIgnoreIndex), targets.Counted);

                using var tl = RowShapes.Poisoned(dev, rows);
                CrossEntropy.Forward(tx, targets, slot, tl, eps);
                var all = slots.ToArray();
                Assert.True(float.IsNaN(all[0]) && float.IsNaN(all[2]), what + ": wrote outside its slot");
                Check.Close(tl.ToArray(), losses, LossTol, what + " losses");
                if (double.IsNaN(mean)) Assert.True(float.IsNaN(all[1]), what + ": every row ignored, the mean must be NaN");
                else Check.Close(all[1], mean, LossTol, what + " mean");
                // The host-reading API gives the very same bits, and so does the forward without a losses tensor.
                Assert.Equal(BitConverter.SingleToInt32Bits(all[1]), BitConverter.SingleToInt32Bits(CrossEntropy.Forward(tx, labels, null, eps)));
                CrossEntropy.Forward(tx, targets, slot, null, eps);
                Assert.Equal(BitConverter.SingleToInt32Bits(all[1]), BitConverter.SingleToInt32Bits(slots.ToArray()[1]));

                // The backward reads the same device labels: no second upload.
                using var td = RowShapes.Poisoned(dev, rows, classes);
                CrossEntropy.Backward(tx, targets, td, eps, upstream: 0.7f);
                Check.Close(td.ToArray(), CrossEntropyReference.Backward(xd, labels, rows, classes, eps, 0.7), GradTol, what + " dlogits");
                Assert.Equal(batches, targets.Uploads);
            }
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void TargetsOfAnotherShapeOrDeviceAreRejected(string backend)
    {
        var dev = Backends.Get(backend);
        using var x = dev.FromHost(TestData.Uniform(2, 15), 5, 3);
        using var mean = dev.Allocate(1);
        using var targets = new CrossEntropyTargets(dev);
        Assert.Throws<ArgumentOutOfRangeException>(() => targets.Set([0, 1, 3], 3));
        targets.Set([0, 1, 2, 0], 3);
        Assert.Contains("4 labels for 5 rows", Assert.Throws<ArgumentException>(() => CrossEntropy.Forward(x, targets, mean)).Message);
        targets.Set([0, 1, 2, 0, 1], 4);
        Assert.Contains("4 classes", Assert.Throws<ArgumentException>(() => CrossEntropy.Backward(x, targets, x)).Message);
        using var cpu = CpuDevice.Create(1);
        using var elsewhere = new CrossEntropyTargets(cpu);
        elsewhere.Set([0, 1, 2, 0, 1], 3);
        Assert.Throws<ArgumentException>(() => CrossEntropy.Forward(x, elsewhere, mean));
        using var two = dev.Allocate(2);
        targets.Set([0, 1, 2, 0, 1], 3);
        Assert.Throws<ArgumentException>(() => CrossEntropy.Forward(x, targets, two));
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void HandComputedTwoClassCase(string backend)
    {
        var dev = Backends.Get(backend);
        // Row 0: p = (1/4, 3/4), label 1. Row 1: p = (1/2, 1/2), label 0. Row 2: ignored.
        float[] x = [0f, MathF.Log(3f), 1f, 1f, 5f, -5f];
        int[] labels = [1, 0, -100];
        using var tx = dev.FromHost(x, 3, 2);
        using var losses = RowShapes.Poisoned(dev, 3);
        using var d = RowShapes.Poisoned(dev, 3, 2);
        var tol = new Tolerance(1e-6, 1e-5);

        // ε = 0: −log p_label; the mean is over the two counted rows.
        float mean = CrossEntropy.Forward(tx, labels, losses);
        Check.Close(losses.ToArray(), [-Math.Log(0.75), Math.Log(2), 0], tol, "losses ε=0");
        Check.Close(mean, (-Math.Log(0.75) + Math.Log(2)) / 2, tol, "mean ε=0");
        CrossEntropy.Backward(tx, labels, d);
        Check.Close(d.ToArray(), [0.25 / 2, -0.25 / 2, -0.5 / 2, 0.5 / 2, 0, 0], tol, "dlogits ε=0");

        // ε = 0.1 with C = 2: q = (0.05, 0.95) for label 1, (0.95, 0.05) for label 0.
        mean = CrossEntropy.Forward(tx, labels, losses, labelSmoothing: 0.1f);
        double l0 = -(0.05 * Math.Log(0.25) + 0.95 * Math.Log(0.75)), l1 = Math.Log(2);
        Check.Close(losses.ToArray(), [l0, l1, 0], tol, "losses ε=0.1");
        Check.Close(mean, (l0 + l1) / 2, tol, "mean ε=0.1");
        CrossEntropy.Backward(tx, labels, d, labelSmoothing: 0.1f, upstream: 2f);
        Check.Close(d.ToArray(), [2 * (0.25 - 0.05) / 2, 2 * (0.75 - 0.95) / 2, 2 * (0.5 - 0.95) / 2, 2 * (0.5 - 0.05) / 2, 0, 0], tol, "dlogits ε=0.1, upstream 2");
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void LargeLogitsStayFinite(string backend)
    {
        var dev = Backends.Get(backend);
        int rows = 4, classes = Backends.IsSimulator(backend) ? 20 : 1000;
        var x = TestData.Uniform(9, rows * classes, -90f, 90f);
        var labels = TestData.Labels(10, rows, classes);
        using var tx = dev.FromHost(x, rows, classes);
        using var tl = RowShapes.Poisoned(dev, rows);
        float mean = CrossEntropy.Forward(tx, labels, tl, 0.1f);
        var (losses, expected) = CrossEntropyReference.Forward(TestData.ToDouble(x), labels, rows, classes, 0.1);
        Assert.True(float.IsFinite(mean));
        Check.Close(tl.ToArray(), losses, new Tolerance(1e-4, 1e-5), $"losses of ±90 logits on {backend}");
        Check.Close(mean, expected, new Tolerance(1e-4, 1e-5), "mean");
    }

    [Theory]
    [InlineData(1, 1, 0.0)]
    [InlineData(4, 5, 0.0)]
    [InlineData(4, 5, 0.1)]
    [InlineData(6, 3, 0.25)]
    public void ReferenceBackwardMatchesFiniteDifferences(int rows, int classes, double eps)
    {
        var x = TestData.ToDouble(TestData.Uniform(rows * 7 + classes, rows * classes, -3f, 3f));
        var labels = LabelsFor(rows, rows, classes);
        const double upstream = 1.3;
        var numeric = FiniteDifference.Gradient(v => upstream * CrossEntropyReference.Forward(v, labels, rows, classes, eps).Mean, x);
        var analytic = CrossEntropyReference.Backward(x, labels, rows, classes, eps, upstream);
        Check.Close(analytic, numeric, new Tolerance(1e-7, 1e-6), "cross-entropy reference backward vs finite differences");
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void AllRowsIgnoredGivesNaNMeanAndZeroGradient(string backend)
    {
        var dev = Backends.Get(backend);
        using var x = dev.FromHost(TestData.Uniform(1, 6), 2, 3);
        int[] labels = [-100, -100];
        Assert.True(float.IsNaN(CrossEntropy.Forward(x, labels)));
        using var d = RowShapes.Poisoned(dev, 2, 3);
        CrossEntropy.Backward(x, labels, d);
        Assert.All(d.ToArray(), v => Assert.Equal(0f, v));
    }

    [Fact]
    public void BadLabelsAreRejected()
    {
        using var dev = CpuDevice.Create(1);
        using var x = dev.Zeros(2, 3);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => CrossEntropy.Forward(x, [0, 3]));
        Assert.Contains("row 1", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => CrossEntropy.Forward(x, [0, -1]));
        Assert.Throws<ArgumentException>(() => CrossEntropy.Forward(x, [0]));
        Assert.Throws<ArgumentOutOfRangeException>(() => CrossEntropy.Forward(x, [0, 1], labelSmoothing: 1.5f));
        Assert.Throws<ArgumentOutOfRangeException>(() => CrossEntropy.Forward(x, [0, 1], ignoreIndex: 2));
    }
}
