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
        var r = Reference(p, TestData.ToDouble(xh), TestData.ToDouble(dyh), batch, n, dim, heads, dh);

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
        var r = Reference(p, x, dy, batch, n, dim, heads, dh);
        var fd = new Tolerance(1e-7, 1e-6);
        Check.Close(r.Dx, FiniteDifference.Gradient(v => FiniteDifference.Probe(Reference(p, v, dy, batch, n, dim, heads, dh).Output, dy), x), fd, "dX");
        var wqkv = TestData.ToDouble(p.Wqkv);
        Check.Close(r.Grads["attn.qkv.weight"], FiniteDifference.Gradient(v =>
            FiniteDifference.Probe(Reference(p with { Wqkv = v.Select(d => (float)d).ToArray() }, x, dy, batch, n, dim, heads, dh, wqkvExact: v).Output, dy), wqkv), fd, "dWqkv");
    }

    internal sealed record Params(float[] Gamma, float[] Beta, float[] Wqkv, float[] Bqkv, float[] Wp, float[] Bp);

    internal sealed record Result(double[] Output, double[] Dx, Dictionary<string, double[]> Grads);

    private static Params RandomParams(int dim, int inner) => new(
        TestData.Uniform(51, dim, 0.5f, 1.5f), TestData.Uniform(52, dim, -0.3f, 0.3f),
        TestData.Normal(53, 3 * inner * dim, 1f / MathF.Sqrt(dim)), TestData.Uniform(54, 3 * inner, -0.2f, 0.2f),
        TestData.Normal(55, dim * inner, 0.2f), TestData.Uniform(56, dim, -0.2f, 0.2f));

    /// <summary>Float64 x + MHSA(LN(x)) and its gradients for upstream dy, per batch entry.</summary>
    internal static Result Reference(Params p, double[] x, double[] dy, int batch, int n, int dim, int heads, int dh, double[]? wqkvExact = null)
    {
        int inner = heads * dh, wide = 3 * inner;
        double scale = 1 / Math.Sqrt(dh);
        var gamma = TestData.ToDouble(p.Gamma); var beta = TestData.ToDouble(p.Beta);
        var wqkv = wqkvExact ?? TestData.ToDouble(p.Wqkv); var bqkv = TestData.ToDouble(p.Bqkv);
        var wp = TestData.ToDouble(p.Wp); var bp = TestData.ToDouble(p.Bp);
        var output = new double[x.Length]; var dx = new double[x.Length];
        var g = new Dictionary<string, double[]>
        {
            ["norm1.weight"] = new double[dim], ["norm1.bias"] = new double[dim], ["attn.qkv.weight"] = new double[wide * dim],
            ["attn.qkv.bias"] = new double[wide], ["attn.proj.weight"] = new double[dim * inner], ["attn.proj.bias"] = new double[dim],
        };
        for (int b = 0; b < batch; b++)
        {
            var xb = x.AsSpan(b * n * dim, n * dim).ToArray();
            var dyb = dy.AsSpan(b * n * dim, n * dim).ToArray();
            var (y, mean, rstd) = MssaBlockReference.LayerNorm(xb, gamma, beta, n, dim, 1e-5);
            var qkv = IstaReference.MatMulTransB(y, wqkv, n, dim, wide);
            for (int i = 0; i < n; i++) for (int j = 0; j < wide; j++) qkv[i * wide + j] += bqkv[j];
            var o = new double[n * inner];
            var probs = new double[heads][];
            for (int h = 0; h < heads; h++)
            {
                var pr = probs[h] = new double[n * n];
                for (int i = 0; i < n; i++)
                {
                    double max = double.NegativeInfinity;
                    for (int j = 0; j < n; j++)
                    {
                        double s = 0;
                        for (int c = 0; c < dh; c++) s += qkv[i * wide + h * dh + c] * qkv[j * wide + inner + h * dh + c];
                        pr[i * n + j] = s * scale; max = Math.Max(max, s * scale);
                    }
                    double sum = 0;
                    for (int j = 0; j < n; j++) { pr[i * n + j] = Math.Exp(pr[i * n + j] - max); sum += pr[i * n + j]; }
                    for (int j = 0; j < n; j++) pr[i * n + j] /= sum;
                    for (int c = 0; c < dh; c++)
                    {
                        double acc = 0;
                        for (int j = 0; j < n; j++) acc += pr[i * n + j] * qkv[j * wide + 2 * inner + h * dh + c];
                        o[i * inner + h * dh + c] = acc;
                    }
                }
            }
            var a = IstaReference.MatMulTransB(o, wp, n, inner, dim);
            for (int i = 0; i < n; i++) for (int j = 0; j < dim; j++) output[b * n * dim + i * dim + j] = xb[i * dim + j] + a[i * dim + j] + bp[j];

            // Backward.
            Acc(g["attn.proj.weight"], IstaReference.MatMulTransA(dyb, o, dim, n, inner));
            for (int i = 0; i < n; i++) for (int j = 0; j < dim; j++) g["attn.proj.bias"][j] += dyb[i * dim + j];
            var dO = IstaReference.MatMul(dyb, wp, n, dim, inner);
            var dqkv = new double[n * wide];
            for (int h = 0; h < heads; h++)
            {
                var pr = probs[h];
                for (int i = 0; i < n; i++)
                {
                    var dp = new double[n];
                    double dot = 0;
                    for (int j = 0; j < n; j++)
                    {
                        double s = 0;
                        for (int c = 0; c < dh; c++) s += dO[i * inner + h * dh + c] * qkv[j * wide + 2 * inner + h * dh + c];
                        dp[j] = s; dot += s * pr[i * n + j];
                    }
                    for (int j = 0; j < n; j++)
                    {
                        double pij = pr[i * n + j], ds = pij * (dp[j] - dot) * scale;
                        for (int c = 0; c < dh; c++)
                        {
                            dqkv[i * wide + h * dh + c] += ds * qkv[j * wide + inner + h * dh + c];
                            dqkv[j * wide + inner + h * dh + c] += ds * qkv[i * wide + h * dh + c];
                            dqkv[j * wide + 2 * inner + h * dh + c] += pij * dO[i * inner + h * dh + c];
                        }
                    }
                }
            }
            for (int i = 0; i < n; i++) for (int j = 0; j < wide; j++) g["attn.qkv.bias"][j] += dqkv[i * wide + j];
            Acc(g["attn.qkv.weight"], IstaReference.MatMulTransA(dqkv, y, wide, n, dim));
            var dy1 = IstaReference.MatMul(dqkv, wqkv, n, wide, dim);
            var (dxb, dg, db) = MssaBlockReference.LayerNormBackward(xb, mean, rstd, gamma, dy1, n, dim);
            Acc(g["norm1.weight"], dg); Acc(g["norm1.bias"], db);
            for (int i = 0; i < n * dim; i++) dx[b * n * dim + i] = dxb[i] + dyb[i];
        }
        return new Result(output, dx, g);
    }

    private static void Acc(double[] acc, double[] v)
    {
        for (int i = 0; i < acc.Length; i++) acc[i] += v[i];
    }
}
