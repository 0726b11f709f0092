using System.Reflection;
using System.Runtime.InteropServices;
using ILGPU.Runtime.OpenCL;

namespace CrateIL.Compute.Devices;

/// <summary>
/// Workarounds that let ILGPU reach OpenCL on Linux and, for tests and CI only, run on PoCL (OpenCL on a CPU).
/// </summary>
/// <remarks>
/// ILGPU P/Invokes "OpenCL", which .NET resolves as libOpenCL.so; Debian's runtime package only ships
/// libOpenCL.so.1, so we resolve that name ourselves. ILGPU refuses PoCL because PoCL reports no generic
/// address space; CrateIL's kernels never need one (no atomics, no group/warp collectives), so when
/// CRATEIL_OPENCL_ALLOW_POCL=1 we set ILGPU's internal capability flag by reflection. This is a test
/// facility: PoCL's speed is no guide to a GPU's.
/// </remarks>
internal static class OpenClSupport
{
    private static int _resolverInstalled;

    public const string AllowPoclVariable = "CRATEIL_OPENCL_ALLOW_POCL";

    public static bool PoclAllowed => Environment.GetEnvironmentVariable(AllowPoclVariable) == "1";

    public static void InstallLibraryResolver()
    {
        if (Interlocked.Exchange(ref _resolverInstalled, 1) != 0) return;
        try
        {
            NativeLibrary.SetDllImportResolver(typeof(ILGPU.Context).Assembly, (name, asm, path) =>
            {
                if (name != "OpenCL") return IntPtr.Zero;
                if (NativeLibrary.TryLoad("libOpenCL.so", asm, path, out var h)) return h;
                if (NativeLibrary.TryLoad("libOpenCL.so.1", out h)) return h;
                return IntPtr.Zero;
            });
        }
        catch (InvalidOperationException)
        {
            // A resolver was already set for ILGPU (e.g. by the host application); keep theirs.
        }
    }

    public static bool IsPocl(CLDevice device) =>
        device.PlatformName.Contains("Portable Computing Language", StringComparison.OrdinalIgnoreCase)
        || device.Name.StartsWith("pthread", StringComparison.OrdinalIgnoreCase)
        || device.Name.StartsWith("cpu-", StringComparison.OrdinalIgnoreCase);

    /// <summary>Why ILGPU would refuse this device, or null if it is accepted as is.</summary>
    public static string? RejectionReason(CLDevice device)
    {
        if (!device.Capabilities.GenericAddressSpace)
        {
            if (IsPocl(device) && PoclAllowed) return null;
            return IsPocl(device)
                ? $"PoCL device without generic address space support; set {AllowPoclVariable}=1 to use it for tests"
                : "OpenCL device without generic address space support (ILGPU needs OpenCL 2.0 generic pointers)";
        }
        return null;
    }

    /// <summary>Lifts ILGPU's generic-address-space refusal on an allowed PoCL device.</summary>
    public static void PrepareForIlgpu(CLDevice device)
    {
        if (device.Capabilities.GenericAddressSpace) return;
        var prop = device.Capabilities.GetType().GetProperty("GenericAddressSpace",
            BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)
            ?? throw new InvalidOperationException("ILGPU's CLCapabilityContext.GenericAddressSpace property was not found; the PoCL workaround needs ILGPU 1.5.3");
        prop.SetValue(device.Capabilities, true);
    }
}
