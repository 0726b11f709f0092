using System.Reflection;
using CrateIL.Compute.Ops;
using CrateIL.Testing;
using ILGPU.Runtime.Cuda;
using Xunit;

namespace CrateIL.Compute.Tests;

/// <summary>Every [IlgpuKernel] method of CrateIL.Compute lowers to PTX (SM_80, SM_90) within 48 KB of shared memory, and to OpenCL C, without a GPU.</summary>
public class KernelCompilationTests
{
    private static readonly Assembly Compute = typeof(Gemm).Assembly;

    public static TheoryData<string> Kernels => KernelCompilation.Names(Compute);

    [Fact]
    public void KernelsAreFound()
    {
        var found = KernelCompilation.Find(Compute);
        Assert.NotEmpty(found);
        Assert.Contains(found.Keys, k => k.EndsWith(".Tile128Kernel", StringComparison.Ordinal));
        Assert.Contains(found.Keys, k => k.EndsWith(".Tile64Kernel", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Kernels))]
    public void LowersToPtxForSm80AndSm90AndToOpenClC(string kernel) => KernelCompilation.AssertLowers(Compute, kernel);

    [Fact]
    public void SharedMemoryOfTheGemmKernelsIsCounted()
    {
        // 128-tile kernel: two double-buffered 8×132 float tiles = 16,896 bytes; proves the PTX scan sees allocations.
        var ptx = KernelCompilation.ToPtx(KernelCompilation.Get(Compute, typeof(GemmKernels).FullName + "." + nameof(GemmKernels.Tile128Kernel)), CudaArchitecture.SM_80);
        Assert.Equal(2 * 2 * 8 * 132 * sizeof(float), KernelCompilation.SharedBytes(ptx));
    }
}
