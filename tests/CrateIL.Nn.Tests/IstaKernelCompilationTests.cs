using System.Reflection;
using CrateIL.Nn.Layers;
using CrateIL.Testing;
using ILGPU.Runtime.Cuda;
using Xunit;

namespace CrateIL.Nn.Tests;

/// <summary>
/// The ISTA kernels lower to PTX (SM_80, SM_90) and OpenCL C without a GPU. (The assembly-wide kernel test of
/// CrateIL.Nn covers them too; this one names the ISTA set so a regression points at this layer.)
/// </summary>
public class IstaKernelCompilationTests
{
    private static readonly Assembly Nn = typeof(IstaBlock).Assembly;

    private static IEnumerable<string> Names() =>
        KernelCompilation.Find(Nn).Keys.Where(k => k.StartsWith(typeof(IstaKernels).FullName + ".", StringComparison.Ordinal));

    public static TheoryData<string> IstaKernelNames()
    {
        var data = new TheoryData<string>();
        foreach (var name in Names()) data.Add(name);
        return data;
    }

    [Fact]
    public void AllIstaKernelsAreMarked() =>
        Assert.Equal(
            [nameof(IstaKernels.AddScaledKernel), nameof(IstaKernels.EpilogueKernel), nameof(IstaKernels.MaskAndCopyKernel), nameof(IstaKernels.SymmetrizeKernel)],
            Names().Select(name => name.Split('.')[^1]).Order());

    [Theory]
    [MemberData(nameof(IstaKernelNames))]
    public void LowersToPtxAndOpenClC(string kernel)
    {
        var method = KernelCompilation.Get(Nn, kernel);
        foreach (var arch in new[] { CudaArchitecture.SM_80, CudaArchitecture.SM_90 })
            Assert.Contains(".entry", KernelCompilation.ToPtx(method, arch));
        Assert.Contains("kernel", KernelCompilation.ToOpenClC(method));
    }
}
