namespace CrateIL.Compute.Devices;

/// <summary>The backends CrateIL can run on, in default-preference order (CUDA, then OpenCL, then CPU).</summary>
public enum DeviceKind
{
    /// <summary>CrateIL's own SIMD path on System.Numerics.Tensors and Vector256/FMA, multithreaded.</summary>
    Cpu,
    /// <summary>An NVIDIA GPU through ILGPU's CUDA backend.</summary>
    Cuda,
    /// <summary>An OpenCL device (AMD/Intel GPU; PoCL on a CPU only when explicitly allowed).</summary>
    OpenCL,
    /// <summary>ILGPU's CPU accelerator: a correctness simulator for tests (tiny shapes only), never a compute path.</summary>
    IlgpuCpu,
}

public static class DeviceKindNames
{
    public static string ToSpec(this DeviceKind kind) => kind switch
    {
        DeviceKind.Cpu => "cpu",
        DeviceKind.Cuda => "cuda",
        DeviceKind.OpenCL => "opencl",
        DeviceKind.IlgpuCpu => "ilgpu-cpu",
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    public static bool TryParse(string text, out DeviceKind kind)
    {
        switch (text.Trim().ToLowerInvariant())
        {
            case "cpu": kind = DeviceKind.Cpu; return true;
            case "cuda": kind = DeviceKind.Cuda; return true;
            case "opencl": case "cl": kind = DeviceKind.OpenCL; return true;
            case "ilgpu-cpu": case "ilgpucpu": kind = DeviceKind.IlgpuCpu; return true;
            default: kind = default; return false;
        }
    }
}
