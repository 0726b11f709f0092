using CrateIL.Nn.Layers;
using CrateIL.Nn.Parameters;
using CrateIL.Testing;
using Xunit;

namespace CrateIL.Nn.Tests;

/// <summary>
/// The MSSA block against our PyTorch float32 fixtures of one CRATE layer, on every backend: the half-step output
/// x½ = x + MSSA(LN(x)), and — given the upstream gradient dx½ that the fixture's ISTA half sends back (computed
/// here with the float64 references from the fixture's parameters and probe) — dX and the MSSA block's parameter
/// gradients. The fixture's dX is the whole layer's, which is exactly this block's dX for that upstream gradient.
/// </summary>
public class MssaFixtureTests
{
    /// <summary>
    /// PyTorch computed these in float32 too, so both sides carry float32 rounding: normwise 1e-5·max|e| + 1e-5·|e|
    /// (the same criterion as against the float64 reference; measured worst ≈ 1e-6·max|e|).
    /// </summary>
    [SkippableTheory]
    [InlineData(Backends.Cpu, "layer_n7_d10_h3_dh6_float32")]
    [InlineData(Backends.Cpu, "layer_n65_d12_h1_dh12_float32")]
    [InlineData(Backends.IlgpuCpu, "layer_n7_d10_h3_dh6_float32")]
    [InlineData(Backends.OpenCL, "layer_n7_d10_h3_dh6_float32")]
    [InlineData(Backends.OpenCL, "layer_n65_d12_h1_dh12_float32")]
    [InlineData(Backends.Cuda, "layer_n7_d10_h3_dh6_float32")]
    [InlineData(Backends.Cuda, "layer_n65_d12_h1_dh12_float32")]
    public void BlockMatchesPyTorch(string backend, string fixture)
    {
        var device = Backends.Get(backend);
        var f = LayerFixture.Load(fixture);
        int n = f.N, dim = f.Dim;
        var dHalf = UpstreamGradient(f);

        using var store = new ParameterStore();
        using var block = new MssaBlock(store, "transformer.layers.0.0.", dim, f.Heads, f.DimHead);
        store.Build(device);
        foreach (var p in store.Parameters)
        {
            string key = p.Name["transformer.layers.0.".Length..];
            p.Value.CopyFrom(f.Params[key].Select(v => (float)v).ToArray());
        }
        Assert.Equal(f.Params.Keys.Where(k => k.StartsWith("0.", StringComparison.Ordinal)).Order(),
            store.Parameters.Select(p => p.Name["transformer.layers.0.".Length..]).Order());

        using var x = device.FromHost(f.X.Select(v => (float)v).ToArray(), f.Batch, n, dim);
        using var dy = device.FromHost(dHalf.Select(v => (float)v).ToArray(), f.Batch, n, dim);
        using var half = device.Allocate(f.Batch, n, dim);
        using var dx = device.Allocate(f.Batch, n, dim);
        half.Fill(float.NaN); dx.Fill(float.NaN);
        block.Forward(x, half, f.Batch);
        block.Backward(dy, dx);

        Check.Close(half.ToArray(), f.Half, MssaTests.Normwise(f.Half), "x½");
        Check.Close(dx.ToArray(), f.Dx, MssaTests.Normwise(f.Dx), "dX");
        foreach (var p in store.Parameters)
        {
            var expected = f.Grads[p.Name["transformer.layers.0.".Length..]];
            Check.Close(p.Grad.ToArray(), expected, MssaTests.Normwise(expected), "grad " + p.Name);
        }
    }

    /// <summary>∂L/∂x½ of the fixture's loss Σ probe ⊙ y, through LN₂ and ISTA, in float64.</summary>
    private static double[] UpstreamGradient(LayerFixture f)
    {
        int n = f.N, dim = f.Dim;
        var p = f.Params;
        bool project = p.ContainsKey("0.fn.to_out.0.weight");
        var wout = project ? p["0.fn.to_out.0.weight"] : MssaBlockReference.Identity(dim);
        var bout = project ? p["0.fn.to_out.0.bias"] : null;
        var dHalf = new double[f.Batch * n * dim];
        for (int b = 0; b < f.Batch; b++)
        {
            var x = f.X.AsSpan(b * n * dim, n * dim).ToArray();
            var (ln1, _, _) = MssaBlockReference.LayerNorm(x, p["0.norm.weight"], p["0.norm.bias"], n, dim, f.Eps);
            var (a, _) = MssaReference.Forward(ln1, p["0.fn.qkv.weight"], wout, bout, n, dim, f.Heads, f.DimHead);
            var h = x.Zip(a, (u, v) => u + v).ToArray();
            var (ln2, m2, r2) = MssaBlockReference.LayerNorm(h, p["1.norm.weight"], p["1.norm.bias"], n, dim, f.Eps);
            var probe = f.Probe.AsSpan(b * n * dim, n * dim).ToArray();
            var (dz, _) = IstaReference.Backward(ln2, p["1.fn.weight"], probe, n, dim, f.Eta, f.Lambda);
            var (dh, _, _) = MssaBlockReference.LayerNormBackward(h, m2, r2, p["1.norm.weight"], dz, n, dim);
            dh.CopyTo(dHalf, b * n * dim);
        }
        return dHalf;
    }
}
