using CrateIL.Nn.Optim;
using CrateIL.Testing;
using Xunit;

namespace CrateIL.Nn.Tests;

public class ClippingTests
{
    private static double Norm64(ReadOnlySpan<float> g)
    {
        double s = 0;
        foreach (var v in g) s += (double)v * v;
        return Math.Sqrt(s);
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void BelowTheMaxNormGradientsAreUnchanged(string backend)
    {
        var device = Backends.Get(backend);
        int n = Backends.IsSimulator(backend) ? 65 : 100_003;
        var g = TestData.Normal(3, n, std: 0.01f);
        double norm64 = Norm64(g);
        using var grads = device.FromHost(g, n);
        using var clipper = new GradientClipper(device);
        float norm = clipper.Clip(grads, maxNorm: (float)(norm64 * 1.5));
        Check.Close(norm, norm64, new Tolerance(0, 1e-5), "returned norm vs float64");
        Assert.Equal(g, grads.ToArray());
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void AboveTheMaxNormGradientsAreScaled(string backend)
    {
        var device = Backends.Get(backend);
        int n = Backends.IsSimulator(backend) ? 127 : 785 * 129;
        var g = TestData.Normal(4, n);
        double norm64 = Norm64(g);
        using var grads = device.FromHost(g, n);
        using var clipper = new GradientClipper(device);
        float norm = clipper.Clip(grads, maxNorm: 1f);
        Check.Close(norm, norm64, new Tolerance(0, 1e-5), "returned norm vs float64");
        double coefficient = 1.0 / (norm64 + 1e-6);
        var expected = g.Select(v => v * coefficient).ToArray();
        Check.Close(grads.ToArray(), expected, new Tolerance(1e-9, 1e-5), "clipped gradients");
        Check.Close(Norm64(grads.ToArray()), 1.0, new Tolerance(0, 1e-5), "norm after clipping");
        Check.Close(clipper.Norm(grads), 1.0, new Tolerance(0, 1e-5), "Norm() after clipping");
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void NonFiniteNormIsReportedAndGradientsLeftAlone(string backend)
    {
        var device = Backends.Get(backend);
        using var clipper = new GradientClipper(device);
        foreach (var bad in new[] { float.NaN, float.PositiveInfinity })
        {
            var g = TestData.Normal(5, 37);
            g[11] = bad;
            using var grads = device.FromHost(g, 37);
            float norm = clipper.Clip(grads, 1f);
            Assert.False(float.IsFinite(norm), $"norm with a {bad} gradient was {norm}");
            Assert.Equal(g, grads.ToArray());
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void MatchesTorchClipGradNorm(string backend)
    {
        var device = Backends.Get(backend);
        var fx = OptimFixture.Load();
        using var store = OptimTestStore.Build(device, fx.Layout, fx.Initial);
        using var clipper = new GradientClipper(device);
        Assert.Equal(2, fx.Clips.Count);
        foreach (var (maxNorm, norm, clipped) in fx.Clips)
        {
            store.Grads.CopyFrom(fx.Grads[0]);
            Check.Close(clipper.Clip(store, maxNorm), norm, new Tolerance(1e-6, 1e-6), $"norm (max {maxNorm})");
            Check.Close(store.Grads.ToArray(), clipped, new Tolerance(1e-6, 0), $"clipped grads (max {maxNorm})");
        }
    }

    /// <summary>
    /// Clipping on the device (norm into a device slot, coefficient applied by a kernel that reads it there) against the
    /// host-side recipe it replaced: the norm read back, torch's coefficient computed on the host and applied with
    /// Elementwise.Scale when below 1. Same bits for the norm and the gradients, coefficient below 1, at or above 1, and
    /// with a NaN or infinite gradient (norm not finite, gradients untouched).
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void DeviceClippingEqualsTheHostRecipeBitForBit(string backend)
    {
        var device = Backends.Get(backend);
        int n = Backends.IsSimulator(backend) ? 131 : 100_003;
        using var clipper = new GradientClipper(device);
        using var slots = device.Allocate(3);
        using var slot = slots.Slice(1, 1);
        var cases = new List<(string What, float[] Grads, float MaxNorm)>();
        var g = TestData.Normal(7, n);
        double norm64 = Norm64(g);
        cases.Add(("coefficient < 1", g, 0.25f));
        cases.Add(("coefficient ≈ 1 (max = norm)", g, (float)norm64));
        cases.Add(("coefficient > 1", g, (float)(norm64 * 3)));
        foreach (var bad in new[] { float.NaN, float.PositiveInfinity })
        {
            var poisoned = (float[])g.Clone();
            poisoned[n / 2] = bad;
            cases.Add(($"a {bad} gradient", poisoned, 0.25f));
        }
        foreach (var (what, grads, maxNorm) in cases)
        {
            // The host recipe.
            using var expected = device.FromHost(grads, n);
            float hostNorm = CrateIL.Compute.Ops.Reduce.L2Norm(expected);
            if (float.IsFinite(hostNorm) && GradientClipper.Coefficient(hostNorm, maxNorm) < 1f)
                CrateIL.Compute.Ops.Elementwise.Scale(expected, GradientClipper.Coefficient(hostNorm, maxNorm), expected);

            slots.Fill(-7f);
            using var onDevice = device.FromHost(grads, n);
            clipper.Clip(onDevice, maxNorm, slot);
            var s = slots.ToArray();
            Assert.Equal([-7f, -7f], new[] { s[0], s[2] });
            Assert.Equal(BitConverter.SingleToInt32Bits(hostNorm), BitConverter.SingleToInt32Bits(s[1]));
            Assert.True(expected.ToArray().AsSpan().SequenceEqual(onDevice.ToArray()), $"{what} on {backend}: clipped gradients differ from the host recipe");
            if (!float.IsFinite(hostNorm)) Assert.Equal(grads, onDevice.ToArray());
            else Check.Close(s[1], Norm64(grads), new Tolerance(0, 1e-5), $"{what}: norm vs float64");

            // The host-reading overload: the same norm, the same gradients.
            using var viaHost = device.FromHost(grads, n);
            Assert.Equal(BitConverter.SingleToInt32Bits(hostNorm), BitConverter.SingleToInt32Bits(clipper.Clip(viaHost, maxNorm)));
            Assert.True(expected.ToArray().AsSpan().SequenceEqual(viaHost.ToArray()), $"{what} on {backend}: host-reading Clip differs");

            // Norm alone, into the slot, changes nothing.
            using var untouched = device.FromHost(grads, n);
            clipper.Norm(untouched, slot);
            Assert.Equal(BitConverter.SingleToInt32Bits(hostNorm), BitConverter.SingleToInt32Bits(slots.ToArray()[1]));
            Assert.Equal(grads, untouched.ToArray());
        }
    }

    [Fact]
    public void InvalidMaxNormIsRejected()
    {
        using var cpu = CrateIL.Compute.Devices.CpuDevice.Create(1);
        using var clipper = new GradientClipper(cpu);
        using var g = cpu.Zeros(3);
        Assert.Throws<ArgumentOutOfRangeException>(() => clipper.Clip(g, 0f));
        Assert.Throws<ArgumentOutOfRangeException>(() => clipper.Clip(g, float.NaN));
        using var other = CrateIL.Compute.Devices.CpuDevice.Create(1);
        using var foreign = other.Zeros(3);
        Assert.Throws<ArgumentException>(() => clipper.Norm(foreign));
    }
}
