using CrateIL.Nn.Verification;
using CrateIL.Compute.Devices;
using CrateIL.Compute.Ops;
using CrateIL.Nn.Layers;
using CrateIL.Nn.Parameters;
using CrateIL.Testing;
using Xunit;
using static CrateIL.Nn.Tests.LayerTesting;

namespace CrateIL.Nn.Tests;

public class MlpTests
{
    private static readonly Tolerance ForwardTol = LayerTolerances.MlpForward;
    private static readonly Tolerance BackwardTol = LayerTolerances.MlpBackward;

    private static MlpBlockReference.Params RandomParams(int dim, int hidden, int seed) => new(
        LayerTesting.Add(D(seed, dim, 0.3), Enumerable.Repeat(1.0, dim).ToArray()), D(seed + 1, dim, 0.3),
        D(seed + 2, hidden * dim, 0.5), D(seed + 3, hidden, 0.3), D(seed + 4, dim * hidden, 0.3), D(seed + 5, dim, 0.3));

    [Theory]
    [InlineData(7, 5)]
    [InlineData(1, 3)]
    public void ReferenceBackwardMatchesFiniteDifferences(int rows, int dim)
    {
        int hidden = 4 * dim;
        var x = D(1, rows * dim, 2);
        var p = RandomParams(dim, hidden, 2);
        var probe = D(9, rows * dim);
        var (_, saved) = MlpBlockReference.Forward(x, p, rows, dim, hidden);
        var g = MlpBlockReference.Backward(x, probe, p, saved, rows, dim, hidden);
        double L(double[] xx, MlpBlockReference.Params pp) => FiniteDifference.Probe(MlpBlockReference.Forward(xx, pp, rows, dim, hidden).Y, probe);
        Check.Close(g.Dx, FiniteDifference.Gradient(v => L(v, p), x), Fd, "dx");
        Check.Close(g.DGamma, FiniteDifference.Gradient(v => L(x, p with { Gamma = v }), p.Gamma), Fd, "dγ");
        Check.Close(g.DBeta, FiniteDifference.Gradient(v => L(x, p with { Beta = v }), p.Beta), Fd, "dβ");
        Check.Close(g.DW1, FiniteDifference.Gradient(v => L(x, p with { W1 = v }), p.W1), Fd, "dW1");
        Check.Close(g.DB1, FiniteDifference.Gradient(v => L(x, p with { B1 = v }), p.B1), Fd, "db1");
        Check.Close(g.DW2, FiniteDifference.Gradient(v => L(x, p with { W2 = v }), p.W2), Fd, "dW2");
        Check.Close(g.DB2, FiniteDifference.Gradient(v => L(x, p with { B2 = v }), p.B2), Fd, "db2");
    }

    /// <summary>Every shape with both namings; on the slow simulator (its GEMM runs 256 OS threads per group) they alternate.</summary>
    private static IEnumerable<(int Batch, int Tokens, int Dim, MlpNaming Naming)> Cases(string backend)
    {
        if (Backends.IsSimulator(backend)) return [(1, 7, 5, MlpNaming.PreNorm), (2, 3, 3, MlpNaming.Timm)];
        (int, int, int)[] shapes = [(1, 7, 5), (2, 3, 3), (3, 65, 33), (2, 17, 96)];
        return from s in shapes from n in new[] { MlpNaming.PreNorm, MlpNaming.Timm } select (s.Item1, s.Item2, s.Item3, n);
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void ForwardAndBackwardMatchReferenceWithAccumulatedGrads(string backend)
    {
        var dev = Backends.Get(backend);
        int seed = 60;
        foreach (var (batch, tokens, dim, naming) in Cases(backend))
        {
            string what = $"mlp block {naming} B{batch} T{tokens} dim{dim} on {backend}";
            int rows = batch * tokens, hidden = 4 * dim;
            using var store = new ParameterStore();
            using var block = new MlpBlock(store, "blocks.0", dim, naming: naming);
            store.Build(dev, seed++);
            var (values, grads0) = Randomise(store, seed++);
            var (norm, fc1, fc2) = naming == MlpNaming.PreNorm
                ? ("blocks.0.norm", "blocks.0.fn.net.0", "blocks.0.fn.net.3")
                : ("blocks.0.norm2", "blocks.0.mlp.fc1", "blocks.0.mlp.fc2");
            var p = new MlpBlockReference.Params(D(values[norm + ".weight"]), D(values[norm + ".bias"]), D(values[fc1 + ".weight"]),
                D(values[fc1 + ".bias"]), D(values[fc2 + ".weight"]), D(values[fc2 + ".bias"]));
            var xh = TestData.Normal(seed++, rows * dim, 2f);
            var dh = TestData.Normal(seed++, rows * dim);
            using var x = dev.FromHost(xh, batch, tokens, dim);
            using var y = Poisoned(dev, batch, tokens, dim);
            using var dy = dev.FromHost(dh, batch, tokens, dim);
            block.Forward(x, y);
            block.Backward(dy, dy);   // in place: dx over dy
            var (ry, saved) = MlpBlockReference.Forward(D(xh), p, rows, dim, hidden);
            var g = MlpBlockReference.Backward(D(xh), D(dh), p, saved, rows, dim, hidden);
            Check.Close(y.ToArray(), ry, ForwardTol, what + " y");
            Check.Close(dy.ToArray(), g.Dx, BackwardTol, what + " dx");
            CheckAccumulated(store, norm + ".weight", grads0[norm + ".weight"], g.DGamma, BackwardTol, what);
            CheckAccumulated(store, norm + ".bias", grads0[norm + ".bias"], g.DBeta, BackwardTol, what);
            CheckAccumulated(store, fc1 + ".weight", grads0[fc1 + ".weight"], g.DW1, BackwardTol, what);
            CheckAccumulated(store, fc1 + ".bias", grads0[fc1 + ".bias"], g.DB1, BackwardTol, what);
            CheckAccumulated(store, fc2 + ".weight", grads0[fc2 + ".weight"], g.DW2, BackwardTol, what);
            CheckAccumulated(store, fc2 + ".bias", grads0[fc2 + ".bias"], g.DB2, BackwardTol, what);
        }
    }

    [Fact]
    public void HiddenIsFourTimesDimWithExactGeluAndNamesFollowTheScheme()
    {
        using var dev = CpuDevice.Create(1);
        using var store = new ParameterStore();
        using var block = new MlpBlock(store, "transformer.layers.0.1", 384);
        using var timm = new MlpBlock(store, "blocks.3", 8, naming: MlpNaming.Timm);
        store.Build(dev);
        Assert.Equal(1536, block.Mlp.Hidden);
        Assert.Equal(GeluForm.Erf, block.Mlp.Gelu);
        Assert.Equal([1536, 384], store["transformer.layers.0.1.fn.net.0.weight"].Shape.Dims.ToArray());
        Assert.Equal([384, 1536], store["transformer.layers.0.1.fn.net.3.weight"].Shape.Dims.ToArray());
        Assert.True(store.TryGet("transformer.layers.0.1.norm.bias", out _));
        Assert.Equal(["blocks.3.norm2.weight", "blocks.3.norm2.bias", "blocks.3.mlp.fc1.weight", "blocks.3.mlp.fc1.bias",
            "blocks.3.mlp.fc2.weight", "blocks.3.mlp.fc2.bias"], store.Parameters.Skip(6).Select(p => p.Name));
        using var x = dev.Zeros(2, 8);
        Assert.Throws<ArgumentException>(() => timm.Forward(x, x));
        Assert.Throws<InvalidOperationException>(() => timm.Backward(x, x));
    }
}
