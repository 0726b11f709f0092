using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;

namespace CrateIL.Compute.Devices;

/// <summary>
/// Finds devices and opens them. The default is CUDA, then OpenCL, then the CPU SIMD path;
/// <c>CRATEIL_DEVICE=cpu|cuda|opencl|ilgpu-cpu[:index]</c> or an explicit spec overrides it.
/// </summary>
public static class DeviceRegistry
{
    public const string DeviceVariable = "CRATEIL_DEVICE";

    private static readonly Lock Gate = new();
    private static Context? _context;

    /// <summary>
    /// ILGPU CPU accelerator shape: 16 threads per warp × 16 warps = 256 threads per group, so the same
    /// group shapes as on GPUs (16×16 GEMM tiles) can be simulated; 1 multiprocessor keeps OS threads bounded.
    /// </summary>
    private static readonly CPUDevice SimulatorDevice = new(numThreadsPerWarp: 16, numWarpsPerMultiprocessor: 16, numMultiprocessors: 1);

    /// <summary>The shared ILGPU context (created on first use; lives for the process).</summary>
    internal static Context Context
    {
        get
        {
            lock (Gate)
            {
                if (_context is not null) return _context;
                OpenClSupport.InstallLibraryResolver();
                _context = Context.Create(b => b
                    .Cuda()
                    .OpenCL(_ => true)
                    .CPU(SimulatorDevice)
                    .EnableAlgorithms()
                    .Optimize(OptimizationLevel.O2));
                return _context;
            }
        }
    }

    /// <summary>Every backend found on this machine, usable or rejected (with the reason).</summary>
    public static IReadOnlyList<DeviceInfo> List()
    {
        var list = new List<DeviceInfo> { CpuDevice.Describe(Environment.ProcessorCount) };
        Context ctx;
        try { ctx = Context; }
        catch (Exception e)
        {
            list.Add(new DeviceInfo(DeviceKind.Cuda, 0, "ILGPU", false, $"ILGPU context failed: {e.Message}", []));
            return list;
        }
        int i = 0;
        foreach (var d in ctx.GetCudaDevices()) list.Add(DescribeCuda(d, i++));
        i = 0;
        foreach (var d in ctx.GetCLDevices()) list.Add(DescribeOpenCl(d, i++));
        i = 0;
        foreach (var d in ctx.GetCPUDevices()) list.Add(DescribeSimulator(d, i++));
        return list;
    }

    /// <summary>
    /// Opens the device named by <paramref name="spec"/> (e.g. "cuda", "opencl:1", "cpu"), or, when null,
    /// by <c>CRATEIL_DEVICE</c>, or else the best available: CUDA, then OpenCL, then CPU.
    /// </summary>
    public static Device Open(string? spec = null, int? cpuThreads = null)
    {
        spec ??= Environment.GetEnvironmentVariable(DeviceVariable);
        if (string.IsNullOrWhiteSpace(spec)) return OpenDefault(cpuThreads);

        var (kind, index) = ParseSpec(spec);
        if (kind == DeviceKind.Cpu)
        {
            if (index != 0) throw NotFound(spec);
            return CpuDevice.Create(cpuThreads);
        }
        var all = List();
        var match = all.FirstOrDefault(d => d.Kind == kind && d.Index == index) ?? throw NotFound(spec);
        if (!match.Usable)
            throw new DeviceNotFoundException($"Device '{spec}' ({match.Name}) was found but rejected: {match.RejectedReason}. Available: {Describe(all)}");
        return OpenIlgpu(match);
    }

    /// <summary>The best available device: CUDA, then a GPU OpenCL device, then CPU (PoCL only by explicit spec).</summary>
    public static Device OpenDefault(int? cpuThreads = null)
    {
        foreach (var kind in new[] { DeviceKind.Cuda, DeviceKind.OpenCL })
        {
            DeviceInfo? best;
            // PoCL is a CPU emulating OpenCL: never prefer it over our own SIMD path unless asked by name.
            try { best = List().FirstOrDefault(d => d.Kind == kind && d.Usable && !d.Properties.Any(p => p.Key == "pocl")); }
            catch (Exception) { best = null; }
            if (best is not null)
            {
                try { return OpenIlgpu(best); }
                catch (Exception) { /* fall through to the next backend */ }
            }
        }
        return CpuDevice.Create(cpuThreads);
    }

    public static (DeviceKind Kind, int Index) ParseSpec(string spec)
    {
        var parts = spec.Trim().Split(':', 2);
        if (!DeviceKindNames.TryParse(parts[0], out var kind))
            throw new DeviceNotFoundException($"Unknown device '{spec}': expected cpu, cuda, opencl or ilgpu-cpu, optionally with :index. Available: {Describe(List())}");
        int index = 0;
        if (parts.Length == 2 && (!int.TryParse(parts[1], out index) || index < 0))
            throw new DeviceNotFoundException($"Bad device index in '{spec}': expected a non-negative integer");
        return (kind, index);
    }

    private static DeviceNotFoundException NotFound(string spec) =>
        new($"No device '{spec}' on this machine. Available: {Describe(List())}");

    private static string Describe(IEnumerable<DeviceInfo> all) =>
        string.Join("; ", all.Select(d => d.ToString()));

    private static IlgpuDevice OpenIlgpu(DeviceInfo info)
    {
        var ctx = Context;
        Accelerator acc;
        lock (Gate)
        {
            switch (info.Kind)
            {
                case DeviceKind.Cuda:
                    acc = ctx.GetCudaDevices()[info.Index].CreateAccelerator(ctx);
                    break;
                case DeviceKind.OpenCL:
                    var cl = ctx.GetCLDevices()[info.Index];
                    OpenClSupport.PrepareForIlgpu(cl);
                    acc = cl.CreateCLAccelerator(ctx);
                    break;
                case DeviceKind.IlgpuCpu:
                    acc = ctx.GetCPUDevices()[info.Index].CreateCPUAccelerator(ctx, CPUAcceleratorMode.Parallel);
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(info));
            }
        }
        return new IlgpuDevice(info, acc);
    }

    private static DeviceInfo DescribeCuda(CudaDevice d, int index)
    {
        var props = Common(d);
        props.Add(new("architecture", d.Architecture?.ToString() ?? "unknown"));
        props.Add(new("driver", d.DriverVersion.ToString()));
        props.Add(new("clock_mhz", (d.ClockRate / 1000).ToString()));
        string? reason = d.Architecture is null ? "unsupported CUDA architecture for ILGPU 1.5.3" : null;
        return new DeviceInfo(DeviceKind.Cuda, index, d.Name, reason is null, reason, props);
    }

    private static DeviceInfo DescribeOpenCl(CLDevice d, int index)
    {
        var props = Common(d);
        props.Add(new("platform", d.PlatformName));
        props.Add(new("vendor", d.VendorName));
        props.Add(new("device_version", d.DeviceVersion.ToString()));
        props.Add(new("opencl_c", d.CVersion.ToString()));
        props.Add(new("generic_address_space", d.Capabilities.GenericAddressSpace ? "yes" : "no"));
        props.Add(new("fp64", d.Capabilities.Float64 ? "yes" : "no"));
        if (OpenClSupport.IsPocl(d)) props.Add(new("pocl", "yes (test/CI only; CPU speed is no guide to a GPU's)"));
        var reason = OpenClSupport.RejectionReason(d);
        return new DeviceInfo(DeviceKind.OpenCL, index, d.Name.Trim(), reason is null, reason, props);
    }

    private static DeviceInfo DescribeSimulator(CPUDevice d, int index)
    {
        var props = Common(d);
        props.Add(new("note", "ILGPU CPU accelerator: a correctness simulator (one OS thread per group thread); tiny shapes only"));
        return new DeviceInfo(DeviceKind.IlgpuCpu, index, "ILGPU CPU accelerator", true, null, props);
    }

    private static List<KeyValuePair<string, string>> Common(ILGPU.Runtime.Device d) =>
    [
        new("memory_mib", (d.MemorySize / (1024 * 1024)).ToString()),
        new("multiprocessors", d.NumMultiprocessors.ToString()),
        new("max_threads_per_group", d.MaxNumThreadsPerGroup.ToString()),
        new("max_shared_memory_per_group", d.MaxSharedMemoryPerGroup.ToString()),
        new("warp_size", d.WarpSize.ToString()),
    ];
}
