using System.Collections.Concurrent;
using CrateIL.Compute.Devices;
using Xunit;
using Xunit.Sdk;

namespace CrateIL.Testing;

/// <summary>
/// One test body, every backend: theory data naming each backend, and a cache of opened devices.
/// A missing backend is a visible skip (or a failure for OpenCL when CRATEIL_REQUIRE_OPENCL=1), never a silent pass.
/// </summary>
public static class Backends
{
    public const string Cpu = "cpu";
    public const string IlgpuCpu = "ilgpu-cpu";
    public const string OpenCL = "opencl";
    public const string Cuda = "cuda";

    private static readonly ConcurrentDictionary<string, Lazy<(Device? Device, string? Reason)>> Cache = new();

    static Backends()
    {
        // Tests may use PoCL: this is exactly the test/CI facility the variable exists for.
        if (Environment.GetEnvironmentVariable(OpenClSupportVariable) is null)
            Environment.SetEnvironmentVariable(OpenClSupportVariable, "1");
    }

    private const string OpenClSupportVariable = "CRATEIL_OPENCL_ALLOW_POCL";

    /// <summary>Every backend a test body runs on. CUDA appears too and skips where no GPU is present.</summary>
    public static TheoryData<string> All => new() { Cpu, IlgpuCpu, OpenCL, Cuda };

    /// <summary>The ILGPU backends only (for kernel-specific tests).</summary>
    public static TheoryData<string> Ilgpu => new() { IlgpuCpu, OpenCL, Cuda };

    public static bool RequireOpenCl => Environment.GetEnvironmentVariable("CRATEIL_REQUIRE_OPENCL") == "1";

    /// <summary>The device for <paramref name="backend"/>, or a skip (or failure) with the reason it is absent.</summary>
    public static Device Get(string backend)
    {
        var (device, reason) = Cache.GetOrAdd(backend, b => new Lazy<(Device?, string?)>(() => Open(b))).Value;
        if (device is not null) return device;
        if (backend == OpenCL && RequireOpenCl)
            throw new XunitException($"OpenCL is required (CRATEIL_REQUIRE_OPENCL=1) but unavailable: {reason}");
        Skip.If(true, $"{backend} backend unavailable: {reason}");
        throw new InvalidOperationException("unreachable");
    }

    /// <summary>True for the slow ILGPU CPU simulator, where tests use tiny shapes.</summary>
    public static bool IsSimulator(string backend) => backend == IlgpuCpu;

    private static (Device?, string?) Open(string backend)
    {
        try
        {
            if (backend == Cpu) return (CpuDevice.Create(), null);
            var kind = backend switch
            {
                IlgpuCpu => DeviceKind.IlgpuCpu,
                OpenCL => DeviceKind.OpenCL,
                Cuda => DeviceKind.Cuda,
                _ => throw new ArgumentOutOfRangeException(nameof(backend), backend, "unknown backend"),
            };
            var found = DeviceRegistry.List().Where(d => d.Kind == kind).ToList();
            var usable = found.FirstOrDefault(d => d.Usable);
            if (usable is null)
                return (null, found.Count == 0 ? $"no {backend} device found" : string.Join("; ", found.Select(f => f.ToString())));
            return (DeviceRegistry.Open(usable.Spec), null);
        }
        catch (Exception e)
        {
            return (null, $"{e.GetType().Name}: {e.Message}");
        }
    }
}
