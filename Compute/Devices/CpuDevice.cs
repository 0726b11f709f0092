using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using CrateIL.Compute.Tensors;

namespace CrateIL.Compute.Devices;

/// <summary>
/// CrateIL's own CPU path: SIMD kernels (Vector256/FMA, TensorPrimitives) on host memory, multithreaded.
/// </summary>
public sealed class CpuDevice : Device
{
    private CpuDevice(int threads) : base(Describe(threads))
    {
        Threads = threads;
    }

    /// <summary>Creates a CPU device that uses up to <paramref name="threads"/> threads (default: all cores).</summary>
    public static CpuDevice Create(int? threads = null)
    {
        int t = threads ?? Environment.ProcessorCount;
        if (t < 1) throw new ArgumentOutOfRangeException(nameof(threads), t, "threads must be at least 1");
        return new CpuDevice(t);
    }

    /// <summary>Worker threads used by ops on this device.</summary>
    public int Threads { get; }

    public static bool HasAvx2 => Avx2.IsSupported;
    public static bool HasFma => Fma.IsSupported;
    public static bool HasAvx512 => Avx512F.IsSupported;

    internal override Storage AllocateStorage(long length) => new HostStorage(length);

    public override void Synchronize() { }

    internal static DeviceInfo Describe(int threads)
    {
        var props = new List<KeyValuePair<string, string>>
        {
            new("threads", threads.ToString()),
            new("cores", Environment.ProcessorCount.ToString()),
            new("avx2", Avx2.IsSupported ? "yes" : "no"),
            new("fma", Fma.IsSupported ? "yes" : "no"),
            new("avx512f", Avx512F.IsSupported ? "yes" : "no"),
            new("vector256", Vector256.IsHardwareAccelerated ? "yes" : "no"),
        };
        string name = $"CPU SIMD ({System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture}, {(Avx512F.IsSupported ? "AVX-512" : Avx2.IsSupported && Fma.IsSupported ? "AVX2+FMA" : Vector256.IsHardwareAccelerated ? "Vector256" : "scalar/128-bit")})";
        return new DeviceInfo(DeviceKind.Cpu, 0, name, true, null, props);
    }
}
