using CrateIL.Compute.Devices;
using CrateIL.Testing;
using Xunit;

namespace CrateIL.Compute.Tests;

public class DeviceTests
{
    [Fact]
    public void ListingAlwaysHasTheCpuPathWithSimdProperties()
    {
        var list = DeviceRegistry.List();
        var cpu = Assert.Single(list, d => d.Kind == DeviceKind.Cpu);
        Assert.True(cpu.Usable);
        Assert.Contains(cpu.Properties, p => p.Key == "avx2");
        Assert.Contains(cpu.Properties, p => p.Key == "threads" && int.Parse(p.Value) == Environment.ProcessorCount);
        Assert.Contains(list, d => d.Kind == DeviceKind.IlgpuCpu);
    }

    [Fact]
    public void AbsentDeviceIsAClearErrorListingWhatExists()
    {
        var e = Assert.Throws<DeviceNotFoundException>(() => DeviceRegistry.Open("cuda:7"));
        Assert.Contains("cuda:7", e.Message);
        Assert.Contains("cpu:0", e.Message);
        var bad = Assert.Throws<DeviceNotFoundException>(() => DeviceRegistry.Open("tpu"));
        Assert.Contains("expected cpu, cuda, opencl or ilgpu-cpu", bad.Message);
        Assert.Throws<DeviceNotFoundException>(() => DeviceRegistry.Open("opencl:x"));
    }

    [Fact]
    public void ExplicitSpecOverridesDefault()
    {
        using var d = DeviceRegistry.Open("cpu", cpuThreads: 1);
        Assert.Equal(DeviceKind.Cpu, d.Kind);
        Assert.Equal(1, ((CpuDevice)d).Threads);
    }

    [SkippableFact]
    public void PoclIsListedAndUsableWhenAllowed()
    {
        var cl = DeviceRegistry.List().Where(d => d.Kind == DeviceKind.OpenCL).ToList();
        if (cl.Count == 0)
        {
            Assert.False(Backends.RequireOpenCl, "CRATEIL_REQUIRE_OPENCL=1 but no OpenCL device was found (install pocl-opencl-icd ocl-icd-opencl-dev)");
            Skip.If(true, "no OpenCL platform installed");
        }
        Assert.Contains(cl, d => d.Usable);
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void TensorRoundTripsThroughEveryBackend(string backend)
    {
        var dev = Backends.Get(backend);
        var data = TestData.Uniform(1, 785);
        using var t = dev.FromHost(data, 5, 157);
        Assert.Equal(data, t.ToArray());
        using var view = t.Slice(157, 2, 157);
        Assert.Equal(data.AsSpan(157, 314).ToArray(), view.ToArray());
        t.Fill(2.5f);
        Assert.All(t.ToArray(), v => Assert.Equal(2.5f, v));
        t.Clear();
        Assert.All(t.ToArray(), v => Assert.Equal(0f, v));
        using var copy = dev.Allocate(785);
        t.Fill(-1f);
        t.CopyTo(copy);
        Assert.All(copy.ToArray(), v => Assert.Equal(-1f, v));
    }

    /// <summary>Large host copies are split over the CPU team (threads 1–3); odd lengths and offset views land exactly.</summary>
    [Fact]
    public void LargeCpuCopiesAreExactOnEveryThreadCount()
    {
        const int n = 3 * 65536 + 17;
        var data = TestData.Uniform(7, n + 5);
        foreach (int threads in new[] { 1, 2, 3 })
        {
            using var dev = CpuDevice.Create(threads);
            using var src = dev.FromHost(data, n + 5);
            using var dst = dev.Zeros(n + 9);
            using var from = src.Slice(5, n);
            using var to = dst.Slice(3, n);
            from.CopyTo(to);
            var got = dst.ToArray();
            Assert.Equal(data.AsSpan(5, n).ToArray(), got.AsSpan(3, n).ToArray());
            Assert.Equal(new float[3], got.AsSpan(0, 3).ToArray());
            Assert.Equal(new float[6], got.AsSpan(n + 3).ToArray());
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void PoolReusesStorageOfDisposedTensors(string backend)
    {
        var dev = Backends.Get(backend);
        var a = dev.Allocate(12345);
        a.Dispose();
        long before = dev.Pool.Allocations;
        using var b = dev.Allocate(3, 4115);
        Assert.Equal(before, dev.Pool.Allocations);
        Assert.Throws<ObjectDisposedException>(() => a.ToArray());
    }
}
