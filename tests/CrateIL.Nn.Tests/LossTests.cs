using CrateIL.Compute.Ops;
using CrateIL.Nn.Losses;
using CrateIL.Testing;
using Xunit;

namespace CrateIL.Nn.Tests;

public class LossTests
{
    /// <summary>timm's LabelSmoothingCrossEntropy in float64: mean over rows of (1−s)·NLL + s·mean_c(−log p_c).</summary>
    private static double Timm(double[] logits, int[] labels, int classes, double s)
    {
        double total = 0;
        for (int r = 0; r < labels.Length; r++)
        {
            var row = logits.AsSpan(r * classes, classes);
            double max = double.NegativeInfinity;
            foreach (var v in row) max = Math.Max(max, v);
            double sum = 0;
            foreach (var v in row) sum += Math.Exp(v - max);
            double lse = max + Math.Log(sum);
            double nll = lse - row[labels[r]];
            double smooth = 0;
            foreach (var v in row) smooth += lse - v;
            total += (1 - s) * nll + s * smooth / classes;
        }
        return total / labels.Length;
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void HandComputedSmallCase(string backend)
    {
        var device = Backends.Get(backend);
        // Row 0: logits ln[1, 2, 1] → p = [¼, ½, ¼], label 1. NLL = ln 2, mean_c(−log p) = (2 ln 2 + ln 2 + 2 ln 2)/3 = 5/3 ln 2,
        // loss = 0.9·ln 2 + 0.1·5/3·ln 2. Row 1: equal logits, p = ⅓ each: loss = ln 3 for any smoothing.
        float l2 = MathF.Log(2f);
        using var logits = device.FromHost([0f, l2, 0f, 5f, 5f, 5f], 2, 3);
        using var dLogits = device.Allocate(2, 3);
        dLogits.Fill(float.NaN);
        var loss = new SoftmaxCrossEntropyLoss(labelSmoothing: 0.1f);
        float mean = loss.ForwardBackward(logits, [1, 2], dLogits);
        double row0 = (0.9 + 0.1 * 5.0 / 3.0) * Math.Log(2), row1 = Math.Log(3);
        Check.Close(mean, (row0 + row1) / 2, new Tolerance(1e-6, 1e-6), "mean loss");
        // d = (p − q)/rows, q = 0.9·onehot + 0.1/3.
        double u = 0.1 / 3;
        double[] expected = [(0.25 - u) / 2, (0.5 - 0.9 - u) / 2, (0.25 - u) / 2, (1.0 / 3 - u) / 2, (1.0 / 3 - u) / 2, (1.0 / 3 - 0.9 - u) / 2];
        Check.Close(dLogits.ToArray(), expected, new Tolerance(1e-7, 1e-6), "dlogits");
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void TimmFormEqualsTargetDistributionForm(string backend)
    {
        var device = Backends.Get(backend);
        int rows = Backends.IsSimulator(backend) ? 7 : 65, classes = Backends.IsSimulator(backend) ? 13 : 1000;
        var x = TestData.Normal(8, rows * classes, std: 3f);
        var labels = TestData.Labels(9, rows, classes);
        var xd = TestData.ToDouble(x);
        foreach (var s in new[] { 0.0f, 0.1f, 0.5f })
        {
            double timm = Timm(xd, labels, classes, s);
            var (_, qForm) = CrossEntropyReference.Forward(xd, labels, rows, classes, s);
            Check.Close(timm, qForm, new Tolerance(1e-12, 1e-12), $"timm form vs PyTorch target form, s = {s}");
            using var logits = device.FromHost(x, rows, classes);
            using var d = device.Allocate(rows, classes);
            d.Fill(float.NaN);
            var loss = new SoftmaxCrossEntropyLoss(s);
            Check.Close(loss.Forward(logits, labels), timm, new Tolerance(1e-6, 1e-5), $"loss vs timm, s = {s}");
            loss.Backward(d);
            Check.Close(d.ToArray(), CrossEntropyReference.Backward(xd, labels, rows, classes, s), new Tolerance(1e-7, 1e-5), $"dlogits, s = {s}");
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void MatchesTimmAndPyTorchFixture(string backend)
    {
        var device = Backends.Get(backend);
        var f = OptimFixture.Load().Loss;
        int rows = f.GetProperty("rows").GetInt32(), classes = f.GetProperty("classes").GetInt32();
        float s = (float)f.GetProperty("smoothing").GetDouble();
        var logits = f.GetProperty("logits").EnumerateArray().Select(v => (float)v.GetDouble()).ToArray();
        var labels = f.GetProperty("labels").EnumerateArray().Select(v => v.GetInt32()).ToArray();
        var dExpected = f.GetProperty("dlogits").EnumerateArray().Select(v => v.GetDouble()).ToArray();
        double timm = f.GetProperty("timm").GetDouble();
        Check.Close(f.GetProperty("torch").GetDouble(), timm, new Tolerance(1e-12, 1e-12), "PyTorch F.cross_entropy vs timm in the fixture");
        using var x = device.FromHost(logits, rows, classes);
        // dlogits written over the logits (allowed) to check the in-place form too.
        var loss = new SoftmaxCrossEntropyLoss(s);
        float mean = loss.ForwardBackward(x, labels, x);
        Check.Close(mean, timm, new Tolerance(1e-6, 0), "loss vs timm fixture");
        Check.Close(x.ToArray(), dExpected, new Tolerance(1e-6, 0), "dlogits vs autograd fixture");
    }

    /// <summary>
    /// The training step's loss: the mean left in a device tensor, the labels uploaded once for forward and backward
    /// (counted by <see cref="SoftmaxCrossEntropyLoss.LabelUploads"/>), the same bits as the host-reading forward.
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void DeviceForwardUploadsTheLabelsOnceAndMatchesTheHostForward(string backend)
    {
        var device = Backends.Get(backend);
        int rows = 13, classes = Backends.IsSimulator(backend) ? 11 : 1000;
        var x = TestData.Normal(21, rows * classes, std: 2f);
        var labels = TestData.Labels(22, rows, classes);
        labels[4] = CrateIL.Compute.Ops.CrossEntropy.DefaultIgnoreIndex;
        var xd = TestData.ToDouble(x);
        using var logits = device.FromHost(x, rows, classes);
        using var mean = device.Allocate(1);
        using var d = device.Allocate(rows, classes);
        using var loss = new SoftmaxCrossEntropyLoss(0.1f);
        Assert.Equal(0, loss.LabelUploads);
        for (int batch = 1; batch <= 3; batch++)
        {
            loss.Forward(logits, labels, mean);
            loss.Backward(d, upstream: 0.5f);
            Assert.Equal(batch, loss.LabelUploads);
        }
        var (_, expected) = CrossEntropyReference.Forward(xd, labels, rows, classes, 0.1, CrateIL.Compute.Ops.CrossEntropy.DefaultIgnoreIndex);
        float onDevice = mean.ToArray()[0];
        Check.Close(onDevice, expected, new Tolerance(1e-6, 1e-5), $"device mean loss on {backend}");
        Check.Close(d.ToArray(), CrossEntropyReference.Backward(xd, labels, rows, classes, 0.1, 0.5), new Tolerance(1e-7, 1e-5), $"dlogits on {backend}");
        Assert.Equal(BitConverter.SingleToInt32Bits(onDevice), BitConverter.SingleToInt32Bits(loss.Forward(logits, labels)));
        Assert.Equal(4, loss.LabelUploads);
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void TopOneAndTopFiveCounts(string backend)
    {
        var device = Backends.Get(backend);
        // 3 rows × 7 classes. Row 0: label is the max (top-1). Row 1: label ranks 4th (top-5 only).
        // Row 2: label ties with class 1 at the max; class 1 comes first → rank 1 (top-5, not top-1).
        float[] x =
        [
            0f, 1f, 9f, 2f, 3f, 4f, 5f,
            7f, 6f, 5f, 4f, 3f, 2f, 1f,
            0f, 8f, 1f, 8f, 2f, 3f, 4f,
        ];
        using var logits = device.FromHost(x, 3, 7);
        var c = TopKAccuracy.Count(logits, [2, 3, 3]);
        Assert.Equal(new TopKCounts(1, 3, 3), c);
        Span<int> counts = stackalloc int[3];
        TopKAccuracy.Count(logits, [6, 6, 0], [1, 7, 8], counts);
        Assert.Equal([0, 3, 3], counts.ToArray());
        // Fewer classes than k: every row counts at k (timm clamps k to the class count).
        using var two = device.FromHost([1f, 0f, 0f, 1f], 2, 2);
        Assert.Equal(new TopKCounts(1, 2, 2), TopKAccuracy.Count(two, [0, 0]));
    }

    [Fact]
    public void MisuseIsRejected()
    {
        using var cpu = CrateIL.Compute.Devices.CpuDevice.Create(1);
        using var logits = cpu.Zeros(2, 3);
        using var d = cpu.Zeros(2, 3);
        Assert.Throws<ArgumentOutOfRangeException>(() => new SoftmaxCrossEntropyLoss(1.5f));
        var loss = new SoftmaxCrossEntropyLoss();
        Assert.Throws<InvalidOperationException>(() => loss.Backward(d));
        Assert.Throws<ArgumentException>(() => loss.Forward(logits, [0]));
        Assert.Throws<ArgumentOutOfRangeException>(() => loss.Forward(logits, [0, 3]));
        Assert.Throws<ArgumentOutOfRangeException>(() => TopKAccuracy.Count(logits, [0, 3]));
        Assert.Throws<ArgumentException>(() => TopKAccuracy.Count(logits, [0]));
        Check.Close(loss.Forward(logits, [0, 2]), Math.Log(3), new Tolerance(1e-6, 1e-6), "uniform logits");
    }
}
