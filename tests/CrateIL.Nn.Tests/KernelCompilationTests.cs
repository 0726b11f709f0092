using System.Reflection;
using CrateIL.Nn.Layers;
using CrateIL.Testing;
using ILGPU.Runtime.Cuda;
using Xunit;

namespace CrateIL.Nn.Tests;

/// <summary>Every [IlgpuKernel] method of CrateIL.Nn lowers to PTX (SM_80, SM_90) within 48 KB of shared memory, and to OpenCL C.</summary>
public class KernelCompilationTests
{
    private static readonly Assembly Nn = typeof(AttentionCore).Assembly;

    public static TheoryData<string> Kernels => KernelCompilation.Names(Nn);

    [Fact]
    public void AttentionKernelsAreFound()
    {
        var found = KernelCompilation.Find(Nn);
        foreach (var name in new[] { "ForwardKernel", "QueryGradKernel", "KeyValueGradKernel", "RowDotKernel" })
            Assert.Contains(typeof(AttentionKernels).FullName + "." + name, found.Keys);
    }

    [Theory]
    [MemberData(nameof(Kernels))]
    public void LowersToPtxForSm80AndSm90(string kernel)
    {
        var method = KernelCompilation.Get(Nn, kernel);
        foreach (var arch in new[] { CudaArchitecture.SM_80, CudaArchitecture.SM_90 })
        {
            var ptx = KernelCompilation.ToPtx(method, arch);
            Assert.Contains(".entry", ptx);
            long shared = KernelCompilation.SharedBytes(ptx);
            Assert.True(shared <= KernelCompilation.MaxSharedBytes, $"{kernel} declares {shared} bytes of shared memory for {arch}; the limit is {KernelCompilation.MaxSharedBytes}");
        }
    }

    [Theory]
    [MemberData(nameof(Kernels))]
    public void LowersToOpenClC(string kernel)
    {
        var source = KernelCompilation.ToOpenClC(KernelCompilation.Get(Nn, kernel));
        Assert.Contains("kernel", source);
    }

    [Fact]
    public void FlashForwardSharedMemoryIsCounted()
    {
        // Four 16×129 float tiles (query, key, value, accumulator), a 16×16 score tile and three 16-float row vectors.
        var ptx = KernelCompilation.ToPtx(KernelCompilation.Get(Nn, typeof(AttentionKernels).FullName + "." + nameof(AttentionKernels.ForwardKernel)), CudaArchitecture.SM_80);
        Assert.Equal((4 * 16 * 129 + 16 * 16 + 3 * 16) * sizeof(float), KernelCompilation.SharedBytes(ptx));
    }
}
