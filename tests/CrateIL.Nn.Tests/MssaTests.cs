using CrateIL.Nn.Verification;
using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;
using CrateIL.Nn.Layers;
using CrateIL.Nn.Parameters;
using CrateIL.Testing;
using Xunit;

namespace CrateIL.Nn.Tests;

/// <summary>
/// The MSSA block (LN → MSSA → residual) on every backend against the float64 reference (MssaReference composed with
/// LayerNorm), forward and backward, at odd sizes; the flash path at N = 300; properties of the attention core.
/// </summary>
public class MssaTests
{
    /// <summary>fp32 against float64, normwise (<see cref="LayerTolerances.Attention"/>, where the bound is explained).</summary>
    internal static Tolerance Normwise(double[] expected) => LayerTolerances.Attention(expected);

    public sealed record Case(int Batch, int N, int Dim, int Heads, int Dh)
    {
        public override string ToString() => $"b{Batch} n{N} d{Dim} h{Heads} dh{Dh}";
    }

    public static TheoryData<string, int> BackendsAndCases()
    {
        var data = new TheoryData<string, int>();
        foreach (var backend in new[] { Backends.Cpu, Backends.IlgpuCpu, Backends.OpenCL, Backends.Cuda })
            for (int c = 0; c < Cases.Length; c++) data.Add(backend, c);
        return data;
    }

    /// <summary>Odd sizes; heads·dh ≠ dim except the Identity-projection case; only the first two are small enough for the simulator.</summary>
    private static readonly Case[] Cases =
    [
        new(2, 7, 10, 3, 6),
        new(1, 20, 9, 2, 6),      // two query/key tiles (16 + 4) on ILGPU
        new(1, 7, 8, 1, 8),       // heads = 1, dh = dim: to_out is the Identity
        new(1, 65, 40, 1, 64),
        new(2, 65, 30, 3, 64),
    ];

    private static bool SmallEnoughFor(string backend, Case c) => !Backends.IsSimulator(backend) || (c.N <= 20 && c.Dh <= 8);

    [SkippableTheory]
    [MemberData(nameof(BackendsAndCases))]
    public void BlockMatchesReference(string backend, int caseIndex)
    {
        var c = Cases[caseIndex];
        Skip.IfNot(SmallEnoughFor(backend, c), $"{c} is too large for the ILGPU CPU simulator (covered on the other backends)");
        RunBlock(Backends.Get(backend), c);
    }

    /// <summary>N ≥ 256 takes the flash path (on ILGPU: scores tile by tile, no N×N buffer) and must agree with the reference.</summary>
    [SkippableTheory]
    [InlineData(Backends.Cpu)]
    [InlineData(Backends.OpenCL)]
    [InlineData(Backends.Cuda)]
    public void LargeNMatchesReference(string backend) =>
        RunBlock(Backends.Get(backend), new Case(1, 300, 24, 2, 16));

    /// <summary>The materialised CPU path keeps probabilities for backward within a budget and recomputes them beyond it: both agree.</summary>
    [Fact]
    public void CpuRecomputedProbabilitiesMatchKept()
    {
        var device = CpuDevice.Create(2);
        var c = new Case(3, 33, 12, 2, 8);
        var kept = RunBlock(device, c, budget: null, fused: false);
        var recomputed = RunBlock(device, c, budget: 0, fused: false);
        Assert.Equal(kept.Output, recomputed.Output);
        Assert.Equal(kept.Dx, recomputed.Dx);
        Assert.Equal(kept.Grads, recomputed.Grads);
    }

    /// <summary>The materialised CPU path keeps the probabilities: they match the reference and every row sums to 1.</summary>
    [Fact]
    public void CpuProbabilitiesMatchReferenceAndSumToOne()
    {
        var device = CpuDevice.Create(2);
        var c = new Case(2, 19, 10, 3, 6);
        var (layer, store, x, _, reference) = Setup(device, c);
        using var _1 = layer; using var _2 = store; using var _3 = x;
        using var output = device.Allocate(c.Batch * c.N, c.Dim);
        layer.Forward(x, output, c.Batch);
        var core = layer.Attention.Core!;
        // 19 tokens: below FusedMinTokens the automatic choice is the materialised path, which keeps probabilities.
        Assert.False(core.LastForwardFused);
        Assert.False(core.SavedProbabilities(0, 0).IsEmpty);
        core.FusedSymmetric = true;
        layer.Forward(x, output, c.Batch);
        Assert.True(core.LastForwardFused);
        Assert.True(core.SavedProbabilities(0, 0).IsEmpty);   // the fused symmetric path keeps no probabilities
        core.FusedSymmetric = false;
        layer.Forward(x, output, c.Batch);
        for (int b = 0; b < c.Batch; b++)
            for (int h = 0; h < c.Heads; h++)
            {
                var p = core.SavedProbabilities(b, h).ToArray();
                Check.Close(p, reference.Probs[b * c.Heads + h], new Tolerance(1e-6, 1e-5), $"P[b{b}, h{h}]");
                for (int i = 0; i < c.N; i++)
                    Check.Close(p.AsSpan(i * c.N, c.N).ToArray().Sum(), 1.0, new Tolerance(1e-5, 0), $"row {i} of P[b{b}, h{h}]");
            }
    }

    /// <summary>
    /// CPU, Q = K = V: the fused symmetric kernels (triangle of T×T score tiles, shifted softmax without N×N) against
    /// the materialised path and the float64 reference, over several tiles with a ragged last one (n = 300 = 3·96 + 12,
    /// n = 97 = 96 + 1), more units than threads and fewer, and one or many threads.
    /// </summary>
    [Theory]
    [InlineData(1, 2, 300, 40, 3, 16)]
    [InlineData(2, 2, 97, 30, 3, 10)]
    [InlineData(2, 1, 193, 24, 2, 12)]
    [InlineData(4, 3, 65, 64, 2, 32)]
    public void CpuFusedSymmetricMatchesMaterialised(int threads, int batch, int n, int dim, int heads, int dh)
    {
        var device = CpuDevice.Create(threads);
        var c = new Case(batch, n, dim, heads, dh);
        var fused = RunBlock(device, c, fused: true);
        var materialised = RunBlock(device, c, fused: false);
        Check.Close(fused.Output, TestData.ToDouble(materialised.Output), Normwise(TestData.ToDouble(materialised.Output)), "output");
        Check.Close(fused.Dx, TestData.ToDouble(materialised.Dx), Normwise(TestData.ToDouble(materialised.Dx)), "dX");
        foreach (var (name, g) in materialised.Grads)
            Check.Close(fused.Grads[name], TestData.ToDouble(g), Normwise(TestData.ToDouble(g)), name);
    }

    /// <summary>
    /// Peaked attention through the fused path against the reference: with w scaled up, the shift √(s_i·s_max) sits
    /// far above some rows' maxima (s_max below the bound's range); further up (s_max beyond it, where a row's
    /// normaliser could underflow) the exact row maxima are used. Scores grow with qkvScale², and so does the fp32
    /// rounding of each score (≈ 6e-8·|S|) that the exponent turns into relative error: the normwise bound is
    /// 1e-5·qkvScale² (measured at qkvScale 7: 1.4e-2 abs on |e| ≈ 86 where 1e-5 allowed 1.2e-2). 131 tokens are one
    /// tile; 300 are three, whose off-diagonal pairs take the second exponential directly where the row shifts spread
    /// wide and as a product of the first where they lie close (at qkvScale 1.3 both kinds of pair occur; at 3 and 7
    /// every pair spreads wide).
    /// </summary>
    [Theory]
    [InlineData(3f, 131)]
    [InlineData(7f, 131)]
    [InlineData(1.3f, 300)]
    [InlineData(3f, 300)]
    [InlineData(7f, 300)]
    public void CpuFusedSymmetricHandlesPeakedScores(float qkvScale, int n)
    {
        var device = CpuDevice.Create(2);
        var c = new Case(2, n, 24, 2, 12);
        var run = RunBlock(device, c, fused: true, qkvScale: qkvScale, expectFused: true, normwise: 1e-5 * qkvScale * qkvScale);
        Assert.All(run.Dx, v => Assert.True(float.IsFinite(v)));
    }

    /// <summary>
    /// Regression: CRATE at 96×96 / 104×104 with patch 8, dim 16, 2 heads (n = 145, 170 tokens), batch 2, 2 threads.
    /// Each entry's attention is below the SGEMM's team threshold, so the materialised path spreads the entries over
    /// the thread team, and each entry's softmax (heads·n rows × n ≥ 2¹⁵ elements) starts a parallel region of its
    /// own. On member 0 that nested region used to re-enter the busy team: the forward hung, or (when it finished)
    /// left rows of P unnormalised — NaN in dX for the second entry with peaked scores (qkvScale 3: w ×3, scores ×9).
    /// Both paths, against the float64 reference, each within 30 s so a hang fails instead of stalling the run.
    /// </summary>
    [Theory]
    [InlineData(145, 1f, false)]
    [InlineData(170, 1f, false)]
    [InlineData(145, 3f, false)]
    [InlineData(170, 3f, false)]
    [InlineData(145, 7f, false)]
    [InlineData(145, 1f, true)]
    [InlineData(170, 3f, true)]
    public async Task CpuTwoThreadsTwoEntriesSmallDimFinishesAndMatchesReference(int n, float qkvScale, bool fused)
    {
        var device = CpuDevice.Create(2);
        var c = new Case(2, n, 16, 2, 8);
        var run = await TimeLimit.Within(() => RunBlock(device, c, fused: fused, qkvScale: qkvScale, expectFused: fused, normwise: 1e-5 * qkvScale * qkvScale),
            $"{c} ({(fused ? "fused" : "materialised")}, qkvScale {qkvScale}) on 2 threads");
        Assert.All(run.Output, v => Assert.True(float.IsFinite(v)));
        Assert.All(run.Dx, v => Assert.True(float.IsFinite(v)));
    }

    /// <summary>
    /// Rows of P sum to 1 on every backend: with every value row equal to one vector u, O = P·V must equal u in
    /// every row whatever the scores (Q = K = w random).
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void AttentionRowsSumToOne(string backend)
    {
        var device = Backends.Get(backend);
        int batch = 2, n = Backends.IsSimulator(backend) ? 19 : 70, heads = 2, dh = 6, inner = heads * dh;
        using var core = new AttentionCore(device, heads, dh);
        using var w = device.FromHost(TestData.Normal(11, batch * n * inner, 2f), batch * n, inner);
        var u = TestData.Uniform(12, inner);
        var vHost = new float[batch * n * inner];
        for (int r = 0; r < batch * n; r++) u.CopyTo(vHost, r * inner);
        using var v = device.FromHost(vHost, batch * n, inner);
        using var o = device.Allocate(batch * n, inner);
        o.Fill(float.NaN);
        var wc = new HeadColumns(w, 0, inner);
        core.Forward(batch, n, wc, wc, new HeadColumns(v, 0, inner), new HeadColumns(o, 0, inner));
        Check.Close(o.ToArray(), TestData.ToDouble(vHost), new Tolerance(2e-6, 2e-6), "P·(constant rows)");
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void BadCallsThrow(string backend)
    {
        var device = Backends.Get(backend);
        using var core = new AttentionCore(device, 2, 4);
        using var w = device.Zeros(6, 8);
        var wc = new HeadColumns(w, 0, 8);
        Assert.Throws<InvalidOperationException>(() => core.BackwardShared(1, 6, wc, wc, wc, wc));
        Assert.Throws<ArgumentException>(() => core.Forward(1, 6, wc, wc, wc, wc));                  // output aliases input
        Assert.Throws<ArgumentException>(() => core.Forward(1, 7, wc, wc, wc, wc));                  // too few rows
        Assert.Throws<ArgumentException>(() => core.Forward(1, 6, wc, wc, wc, new HeadColumns(w, 2, 8))); // columns past the stride
        if (device is IlgpuDevice)
            Assert.Throws<ArgumentOutOfRangeException>(() => new AttentionCore(device, 1, 129));
    }

    internal sealed record BlockRun(float[] Output, float[] Dx, Dictionary<string, float[]> Grads);

    private static (MssaBlock layer, ParameterStore store, Tensor x, Tensor dy, MssaBlockReference.Result reference) Setup(Device device, Case c, float qkvScale = 1f)
    {
        var store = new ParameterStore();
        var layer = new MssaBlock(store, "transformer.layers.0.0.", c.Dim, c.Heads, c.Dh);
        store.Build(device, seed: 3);
        int inner = c.Heads * c.Dh;
        var gamma = TestData.Uniform(21, c.Dim, 0.5f, 1.5f);
        var beta = TestData.Uniform(22, c.Dim, -0.3f, 0.3f);
        var qkv = TestData.Normal(23, inner * c.Dim, qkvScale / MathF.Sqrt(c.Dim));   // w has variance qkvScale² per column
        layer.NormWeight.Value.CopyFrom(gamma);
        layer.NormBias.Value.CopyFrom(beta);
        layer.Attention.Qkv.Value.CopyFrom(qkv);
        float[]? wout = null, bout = null;
        if (layer.Attention.ProjectsOut)
        {
            wout = TestData.Normal(24, c.Dim * inner, 0.2f);
            bout = TestData.Uniform(25, c.Dim, -0.2f, 0.2f);
            layer.Attention.OutWeight!.Value.CopyFrom(wout);
            layer.Attention.OutBias!.Value.CopyFrom(bout);
        }
        int rows = c.Batch * c.N;
        var xHost = TestData.Normal(26, rows * c.Dim);
        var dyHost = TestData.Normal(27, rows * c.Dim);
        var x = device.FromHost(xHost, c.Batch, c.N, c.Dim);
        var dy = device.FromHost(dyHost, c.Batch, c.N, c.Dim);
        var p = new MssaBlockReference.Params(TestData.ToDouble(gamma), TestData.ToDouble(beta), TestData.ToDouble(qkv),
            wout is null ? null : TestData.ToDouble(wout), bout is null ? null : TestData.ToDouble(bout));
        var reference = MssaBlockReference.Run(TestData.ToDouble(xHost), p, TestData.ToDouble(dyHost), c.Batch, c.N, c.Dim, c.Heads, c.Dh);
        return (layer, store, x, dy, reference);
    }

    private static BlockRun RunBlock(Device device, Case c, long? budget = null, bool? fused = null, float qkvScale = 1f, bool? expectFused = null,
        double normwise = 1e-5)
    {
        Tolerance Normwise(double[] expected) => Tolerance.Normwise(expected, normwise);
        var (layer, store, x, dy, r) = Setup(device, c, qkvScale);
        using var _1 = layer; using var _2 = store; using var _3 = x; using var _4 = dy;
        using var output = device.Allocate(c.Batch, c.N, c.Dim);
        using var dx = device.Allocate(c.Batch, c.N, c.Dim);
        var grads = new Dictionary<string, float[]>();
        // Twice: the second pass reuses every buffer and must give the same answer (grads accumulate, so compare once).
        for (int pass = 0; pass < 2; pass++)
        {
            store.ZeroGrads();
            output.Fill(float.NaN);
            dx.Fill(float.NaN);
            layer.Forward(x, output, c.Batch);
            if (budget is not null) layer.Attention.Core!.SavedProbabilityBudget = budget.Value;
            if (fused is not null)
            {
                layer.Attention.Core!.FusedSymmetric = fused.Value;
                layer.Forward(x, output, c.Batch);
            }
            if (pass == 1 && budget is not null) layer.Forward(x, output, c.Batch);
            if (expectFused is not null) Assert.Equal(expectFused.Value, layer.Attention.Core!.LastForwardFused);
            layer.Backward(dy, dx);
        }
        var run = new BlockRun(output.ToArray(), dx.ToArray(), store.Parameters.ToDictionary(p => p.Name, p => p.Grad.ToArray()));
        Check.Close(run.Output, r.Output, Normwise(r.Output), $"{c} block output");
        Check.Close(run.Dx, r.Dx, Normwise(r.Dx), $"{c} dX");
        const string pre = "transformer.layers.0.0.";
        Check.Close(run.Grads[pre + "norm.weight"], r.DNormWeight, Normwise(r.DNormWeight), $"{c} dNormWeight");
        Check.Close(run.Grads[pre + "norm.bias"], r.DNormBias, Normwise(r.DNormBias), $"{c} dNormBias");
        Check.Close(run.Grads[pre + "fn.qkv.weight"], r.DQkv, Normwise(r.DQkv), $"{c} dU");
        Assert.Equal(r.DOutWeight is not null, run.Grads.ContainsKey(pre + "fn.to_out.0.weight"));
        if (r.DOutWeight is not null)
        {
            Check.Close(run.Grads[pre + "fn.to_out.0.weight"], r.DOutWeight, Normwise(r.DOutWeight), $"{c} dWout");
            Check.Close(run.Grads[pre + "fn.to_out.0.bias"], r.DOutBias!, Normwise(r.DOutBias!), $"{c} dbout");
        }
        return run;
    }
}
