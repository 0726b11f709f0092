using CrateIL.Compute.Devices;
using CrateIL.Nn.Layers;
using CrateIL.Testing;
using Xunit;
using static CrateIL.Nn.Tests.LayerTesting;

namespace CrateIL.Nn.Tests;

public class DropoutTests
{
    /// <summary>The float32 result every backend must produce bit for bit: x·(float)(1/(1−p)) where kept, else 0.</summary>
    private static float[] Expected(float[] x, float p, ulong seed, long step)
    {
        var keep = DropoutReference.Mask(x.Length, p, seed, step);
        float scale = (float)(1.0 / (1.0 - p));
        return x.Select((v, i) => keep[i] ? v * scale : 0f).ToArray();
    }

    private static int[] Lengths(string backend) => Backends.IsSimulator(backend) ? [1, 7, 65, 301] : [1, 7, 65, 785, 70_001];

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void MaskIsIdenticalOnEveryBackendForwardAndBackward(string backend)
    {
        var dev = Backends.Get(backend);
        int seed = 1;
        foreach (int n in Lengths(backend))
            foreach (float p in new[] { 0.1f, 0.5f, 0.9f })
            {
                var layer = new Dropout(p, seed: 0xC0FFEEUL + (ulong)n);
                long step = 1000 + n;
                var xh = TestData.Normal(seed++, n);
                var dyh = TestData.Normal(seed++, n);
                using var x = dev.FromHost(xh, n);
                using var y = Poisoned(dev, n);
                using var dy = dev.FromHost(dyh, n);
                using var dx = Poisoned(dev, n);
                layer.Forward(x, y, step);
                layer.Backward(dy, dx);
                Assert.Equal(Expected(xh, p, layer.Seed, step), y.ToArray());
                Assert.Equal(Expected(dyh, p, layer.Seed, step), dx.ToArray());
            }
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void InPlaceIdentityCasesAndStepDependence(string backend)
    {
        var dev = Backends.Get(backend);
        const int n = 257;
        var xh = TestData.Normal(3, n);
        var layer = new Dropout(0.3f, seed: 42);

        using var t = dev.FromHost(xh, n);
        layer.Forward(t, t, step: 5);                       // in place
        Assert.Equal(Expected(xh, 0.3f, 42, 5), t.ToArray());
        layer.Backward(t, t);                               // in place, same mask again
        var twice = Expected(Expected(xh, 0.3f, 42, 5), 0.3f, 42, 5);
        Assert.Equal(twice, t.ToArray());

        using var x = dev.FromHost(xh, n);
        using var y = Poisoned(dev, n);
        layer.Forward(x, y, step: 6);
        Assert.NotEqual(Expected(xh, 0.3f, 42, 5), y.ToArray());   // another step, another mask

        layer.Training = false;
        layer.Forward(x, y, step: 6);
        Assert.Equal(xh, y.ToArray());
        layer.Backward(x, y);
        Assert.Equal(xh, y.ToArray());

        var none = new Dropout(0f, seed: 1);
        using var z = Poisoned(dev, n);
        none.Forward(x, z, step: 1);
        Assert.Equal(xh, z.ToArray());
    }

    [Fact]
    public void DropFractionAndMeanMatchP()
    {
        using var dev = CpuDevice.Create();
        const int n = 200_000;
        var ones = Enumerable.Repeat(1f, n).ToArray();
        foreach (float p in new[] { 0.1f, 0.25f, 0.5f })
        {
            var layer = new Dropout(p, seed: 7);
            using var x = dev.FromHost(ones, n);
            using var y = Poisoned(dev, n);
            layer.Forward(x, y, step: 3);
            var v = y.ToArray();
            double dropped = v.Count(f => f == 0f) / (double)n;
            double sigma = Math.Sqrt(p * (1 - p) / n);
            Assert.InRange(dropped, p - 5 * sigma, p + 5 * sigma);
            Assert.InRange(v.Average(), 1 - 5 * sigma / (1 - p), 1 + 5 * sigma / (1 - p));   // inverted scaling keeps the mean
            Assert.All(v, f => Assert.True(f == 0f || f == (float)(1.0 / (1.0 - p))));
        }
    }

    [Fact]
    public void MasksDifferAcrossSeedsAndStepsAndAreReproducible()
    {
        const int n = 4096;
        var a = DropoutReference.Mask(n, 0.5f, 1, 0);
        Assert.Equal(a, DropoutReference.Mask(n, 0.5f, 1, 0));
        foreach (var other in new[] { DropoutReference.Mask(n, 0.5f, 2, 0), DropoutReference.Mask(n, 0.5f, 1, 1) })
        {
            int agree = a.Zip(other).Count(z => z.First == z.Second);
            Assert.InRange(agree, n / 2 - 5 * 32, n / 2 + 5 * 32);   // independent masks agree on about half (σ = 32)
        }
        // Adjacent elements are not correlated: runs of equal bits behave like coin flips.
        int changes = 0;
        for (int i = 1; i < n; i++) if (a[i] != a[i - 1]) changes++;
        Assert.InRange(changes, n / 2 - 5 * 32, n / 2 + 5 * 32);
    }

    [Fact]
    public void ReferenceGradientMatchesFiniteDifferences()
    {
        var x = D(1, 37); var probe = D(2, 37);
        var fd = FiniteDifference.Gradient(v => FiniteDifference.Probe(DropoutReference.Forward(v, 0.4f, 9, 2), probe), x);
        Check.Close(DropoutReference.Forward(probe, 0.4f, 9, 2), fd, Fd, "dropout dx = mask ⊙ dy / (1 − p)");
    }

    [Fact]
    public void RejectsBadArguments()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new Dropout(1f));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Dropout(-0.1f));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Dropout(float.NaN));
        using var dev = CpuDevice.Create(1);
        var layer = new Dropout(0.5f);
        using var a = dev.Zeros(5);
        using var b = dev.Zeros(6);
        Assert.Throws<InvalidOperationException>(() => layer.Backward(a, a));
        Assert.Throws<ArgumentException>(() => layer.Forward(a, b, 0));
        layer.Forward(a, a, 0);
        Assert.Throws<ArgumentException>(() => layer.Backward(b, b));
    }
}
