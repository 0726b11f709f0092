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
    public void LowersToPtxForSm80AndSm90AndToOpenClC(string kernel) => KernelCompilation.AssertLowers(Nn, kernel);

    [Fact]
    public void AllIstaKernelsAreMarked() =>
        Assert.Equal(
            [nameof(IstaKernels.AddScaledKernel), nameof(IstaKernels.EpilogueKernel), nameof(IstaKernels.MaskAndCopyKernel), nameof(IstaKernels.SymmetrizeKernel)],
            KernelCompilation.Find(Nn).Keys.Where(k => k.StartsWith(typeof(IstaKernels).FullName + ".", StringComparison.Ordinal))
                .Select(k => k.Split('.')[^1]).Order());

    [Fact]
    public void FlashForwardSharedMemoryIsCounted()
    {
        // Four 16×129 float tiles (query, key, value, accumulator), a 16×16 score tile and three 16-float row vectors.
        var ptx = KernelCompilation.ToPtx(KernelCompilation.Get(Nn, typeof(AttentionKernels).FullName + "." + nameof(AttentionKernels.ForwardKernel)), CudaArchitecture.SM_80);
        Assert.Equal((4 * 16 * 129 + 16 * 16 + 3 * 16) * sizeof(float), KernelCompilation.SharedBytes(ptx));
    }
}
