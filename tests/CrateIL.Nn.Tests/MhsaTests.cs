using CrateIL.Compute.Devices;
using CrateIL.Nn.Layers;
using CrateIL.Nn.Parameters;
using CrateIL.Testing;
using Xunit;

namespace CrateIL.Nn.Tests;

/// <summary>
/// The ViT-baseline MHSA block (x + MHSA(LN(x)), separate q, k, v with bias from one fused qkv Linear laid out
/// (3, heads, dh)) on every backend, against a float64 reference that is itself checked by finite differences.
/// </summary>
public class MhsaTests
{
    public static TheoryData<string, int> BackendsAndCases()
    {
        var data = new TheoryData<string, int>();
        foreach (var backend in new[] { Backends.Cpu, Backends.IlgpuCpu, Backends.OpenCL, Backends.Cuda })
            for (int c = 0; c < Cases.Length; c++) data.Add(backend, c);
        return data;
    }

    private static readonly (int Batch, int N, int Dim, int Heads, int Dh)[] Cases =
    [
        (2, 7, 10, 3, 6),
        (1, 65, 40, 2, 64),
        (1, 300, 24, 2, 16),
    ];

    [SkippableTheory]
    [MemberData(nameof(BackendsAndCases))]
    public void BlockMatchesReference(string backend, int caseIndex)
    {
        var (batch, n, dim, heads, dh) = Cases[caseIndex];
        Skip.If(Backends.IsSimulator(backend) && caseIndex > 0, "too large for the ILGPU CPU simulator (covered on the other backends)");
        var device = Backends.Get(backend);
        int inner = heads * dh, rows = batch * n;
        var p = RandomParams(dim, inner);
        var xh = TestData.Normal(31, rows * dim);
        var dyh = TestData.Normal(32, rows * dim);
        var r = MhsaBlockReference.Run(p, TestData.ToDouble(xh), TestData.ToDouble(dyh), batch, n, dim, heads, dh);

        using var store = new ParameterStore();
        using var block = new MhsaBlock(store, "blocks.0.", dim, heads, dh);
        store.Build(device);
        block.NormWeight.Value.CopyFrom(p.Gamma); block.NormBias.Value.CopyFrom(p.Beta);
        block.Attention.QkvWeight.Value.CopyFrom(p.Wqkv); block.Attention.QkvBias.Value.CopyFrom(p.Bqkv);
        block.Attention.ProjWeight.Value.CopyFrom(p.Wp); block.Attention.ProjBias.Value.CopyFrom(p.Bp);
        using var x = device.FromHost(xh, rows, dim);
        using var dy = device.FromHost(dyh, rows, dim);
        using var output = device.Allocate(rows, dim);
        using var dx = device.Allocate(rows, dim);
        output.Fill(float.NaN); dx.Fill(float.NaN);
        block.Forward(x, output, batch);
        block.Backward(dy, dx);

        Check.Close(output.ToArray(), r.Output, MssaTests.Normwise(r.Output), "MHSA block output");
        Check.Close(dx.ToArray(), r.Dx, MssaTests.Normwise(r.Dx), "dX");
        foreach (var (name, expected) in r.Grads)
            Check.Close(store["blocks.0." + name].Grad.ToArray(), expected, MssaTests.Normwise(expected), "d " + name);
    }

    [Fact]
    public void ParameterNamesFollowTimm()
    {
        using var store = new ParameterStore();
        using var block = new MhsaBlock(store, "blocks.3.", 12, 2, 5);
        Assert.Equal(
            ["blocks.3.norm1.weight", "blocks.3.norm1.bias", "blocks.3.attn.qkv.weight", "blocks.3.attn.qkv.bias", "blocks.3.attn.proj.weight", "blocks.3.attn.proj.bias"],
            store.Parameters.Select(p => p.Name));
        Assert.Equal([30, 12], store["blocks.3.attn.qkv.weight"].Shape.Dims.ToArray());
        Assert.Equal([12, 10], store["blocks.3.attn.proj.weight"].Shape.Dims.ToArray());
    }

    /// <summary>The float64 reference's gradients against central finite differences of Σ dy ⊙ output.</summary>
    [Fact]
    public void ReferenceMatchesFiniteDifferences()
    {
        int batch = 2, n = 4, dim = 5, heads = 2, dh = 3, inner = heads * dh;
        var p = RandomParams(dim, inner);
        var x = TestData.ToDouble(TestData.Normal(41, batch * n * dim));
        var dy = TestData.ToDouble(TestData.Normal(42, batch * n * dim));
        var r = MhsaBlockReference.Run(p, x, dy, batch, n, dim, heads, dh);
        var fd = new Tolerance(1e-7, 1e-6);
        Check.Close(r.Dx, FiniteDifference.Gradient(v => FiniteDifference.Probe(MhsaBlockReference.Run(p, v, dy, batch, n, dim, heads, dh).Output, dy), x), fd, "dX");
        var wqkv = TestData.ToDouble(p.Wqkv);
        Check.Close(r.Grads["attn.qkv.weight"], FiniteDifference.Gradient(v =>
            FiniteDifference.Probe(MhsaBlockReference.Run(p with { Wqkv = v.Select(d => (float)d).ToArray() }, x, dy, batch, n, dim, heads, dh, wqkvExact: v).Output, dy), wqkv), fd, "dWqkv");
    }

    private static MhsaBlockReference.Params RandomParams(int dim, int inner) => new(
        TestData.Uniform(51, dim, 0.5f, 1.5f), TestData.Uniform(52, dim, -0.3f, 0.3f),
        TestData.Normal(53, 3 * inner * dim, 1f / MathF.Sqrt(dim)), TestData.Uniform(54, 3 * inner, -0.2f, 0.2f),
        TestData.Normal(55, dim * inner, 0.2f), TestData.Uniform(56, dim, -0.2f, 0.2f));
}
