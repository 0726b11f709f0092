namespace CrateIL.Compute.Cpu;

/// <summary>What the CPU SGEMM does on this machine (for benchmarks and reports).</summary>
public static class CpuSgemm
{
    /// <summary>Name of the micro-kernel in use, e.g. "vector512-12x32" or "vector256-6x16".
    /// Environment variable CRATEIL_GEMM_KERNEL=vector256 forces the portable Vector256 kernel.</summary>
    public static string KernelName => Ops.GemmCpu.Kernel.Name;

    /// <summary>Vector width (bits) of the FMA instructions of that kernel.</summary>
    public static int VectorBits => Ops.GemmCpu.Kernel.VectorBits;
}
