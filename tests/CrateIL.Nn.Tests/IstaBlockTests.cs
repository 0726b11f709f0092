using CrateIL.Nn.Verification;
using CrateIL.Compute.Devices;
using CrateIL.Compute.Ops;
using CrateIL.Compute.Tensors;
using CrateIL.Nn.Layers;
using CrateIL.Nn.Parameters;
using CrateIL.Testing;
using Xunit;

namespace CrateIL.Nn.Tests;

/// <summary>
/// The ISTA block y = ISTA(LN(x½)) on every backend: against the float64 references (LayerNorm + ISTA), and
/// against the float32 fixtures of our PyTorch reference of one CRATE layer (the ISTA half: y, dx½ and the
/// gradients of 1.norm.* and 1.fn.weight given the upstream probe).
/// </summary>
public class IstaBlockTests
{
    private static readonly Tolerance Fp32 = LayerTolerances.Ista;
    private const string Prefix = "transformer.layers.0.1.";

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void BlockMatchesReference(string backend)
    {
        var dev = Backends.Get(backend);
        (int Batch, int Tokens, int Dim)[] cases = Backends.IsSimulator(backend)
            ? [(1, 7, 6), (1, 65, 10)]
            : [(1, 7, 6), (1, 7, 64), (1, 65, 10), (2, 65, 64)];
        foreach (var (batch, tokens, dim) in cases)
            foreach (var kind in new[] { ThresholdKind.OneSided, ThresholdKind.Symmetric })
                CheckBlock(dev, batch, tokens, dim, kind, seed: 100 + tokens + dim);
    }

    private static void CheckBlock(Device dev, int batch, int tokens, int dim, ThresholdKind kind, int seed)
    {
        string what = $"{batch}×{tokens}×{dim} {kind}";
        int rows = batch * tokens;
        using var store = new ParameterStore();
        using var block = new IstaBlock(store, Prefix, dim, threshold: kind);
        store.Build(dev, seed);
        // Non-trivial LayerNorm affine parameters (the defaults 1 and 0 would hide γ/β mistakes).
        block.NormWeight.Value.CopyFrom(TestData.Uniform(seed + 1, dim, 0.5f, 1.5f));
        block.NormBias.Value.CopyFrom(TestData.Uniform(seed + 2, dim, -0.3f, 0.3f));
        var priorDict = TestData.Uniform(seed + 3, (long)dim * dim);
        var priorGamma = TestData.Uniform(seed + 4, dim);
        var priorBeta = TestData.Uniform(seed + 5, dim);
        block.Dictionary.Grad.CopyFrom(priorDict);
        block.NormWeight.Grad.CopyFrom(priorGamma);
        block.NormBias.Grad.CopyFrom(priorBeta);

        var xh = TestData.Normal(seed + 6, (long)rows * dim, 2f, 0.5f);
        var dyh = TestData.Normal(seed + 7, (long)rows * dim);
        int[] shape = batch == 1 ? [tokens, dim] : [batch, tokens, dim];
        using var x = dev.FromHost(xh, shape);
        using var y = dev.Allocate(shape);
        using var dy = dev.FromHost(dyh, shape);
        using var dx = dev.Allocate(shape);
        y.Fill(float.NaN);
        dx.Fill(float.NaN);
        block.Forward(x, y);
        block.Backward(dy, dx);

        var e = IstaBlockReference.Run(TestData.ToDouble(xh), TestData.ToDouble(block.NormWeight.Value.ToArray()),
            TestData.ToDouble(block.NormBias.Value.ToArray()), TestData.ToDouble(block.Dictionary.Value.ToArray()),
            TestData.ToDouble(dyh), rows, dim, block.Eta, block.Lambda, kind == ThresholdKind.Symmetric);
        Check.Close(y.ToArray(), e.Y, Fp32, "y " + what);
        Check.Close(dx.ToArray(), e.Dx, Fp32, "dx " + what);
        Check.Close(block.NormWeight.Grad.ToArray(), Add(e.DGamma, priorGamma), Fp32, "d norm.weight " + what);
        Check.Close(block.NormBias.Grad.ToArray(), Add(e.DBeta, priorBeta), Fp32, "d norm.bias " + what);
        Check.Close(block.Dictionary.Grad.ToArray(), Add(e.DDict, priorDict), Fp32, "d fn.weight " + what);
    }

    private static double[] Add(double[] a, float[] b) => a.Select((v, i) => v + b[i]).ToArray();

    [Fact]
    public void RegistersOfficialNamesAndInitialisers()
    {
        using var store = new ParameterStore();
        using var block = new IstaBlock(store, "transformer.layers.3.1", 384);
        Assert.Equal(["transformer.layers.3.1.norm.weight", "transformer.layers.3.1.norm.bias", "transformer.layers.3.1.fn.weight"],
            store.Parameters.Select(p => p.Name));
        Assert.Equal(ParameterInit.KaimingUniform, block.Dictionary.Init);
        Assert.Equal(384, block.Dictionary.FanIn);
        using var dev = CpuDevice.Create(1);
        store.Build(dev, 7);
        var d = block.Dictionary.Value.ToArray();
        float bound = MathF.Sqrt(6f / 384);
        Assert.All(d, v => Assert.InRange(v, -bound, bound));
        Assert.True(d.Max() > 0.9f * bound && d.Min() < -0.9f * bound, "kaiming-uniform should fill its whole range");
        Assert.All(block.NormWeight.Value.ToArray(), v => Assert.Equal(1f, v));
        Assert.All(block.NormBias.Value.ToArray(), v => Assert.Equal(0f, v));
    }

    public static TheoryData<string, string> FixtureCases()
    {
        var data = new TheoryData<string, string>();
        foreach (var b in Backends.All)
            foreach (var f in new[] { "layer_n7_d10_h3_dh6_float32", "layer_n65_d12_h1_dh12_float32" })
                data.Add(b, f);
        return data;
    }

    [SkippableTheory]
    [MemberData(nameof(FixtureCases))]
    public void IstaHalfMatchesPyTorchFloat32(string backend, string fixture) => CheckFixture(Backends.Get(backend), fixture);

    /// <summary>
    /// From the fixture's half-step x½ and its 1.* parameters, the block gives PyTorch's float32 y and, with the
    /// probe as upstream gradient, its float32 gradients of 1.norm.weight, 1.norm.bias and 1.fn.weight; dx½
    /// (not stored by the fixture) is checked against the float64 references on the same float32 inputs.
    /// Both sides round in float32 (PyTorch with its 3-GEMM code), so the bound is 1e-5 relative plus 1e-5 absolute
    /// for entries that cancel to near zero; the gradients sum over all tokens, so they get 2e-5 absolute.
    /// </summary>
    private static void CheckFixture(Device dev, string name)
    {
        var f = LayerFixture.Load(name);
        Assert.Equal("float32", name[^7..]);
        int rows = f.Batch * f.N, dim = f.Dim;
        foreach (var form in new[] { IstaForm.TwoGemm, IstaForm.Folded })
        {
            using var store = new ParameterStore();
            using var block = new IstaBlock(store, Prefix, dim, (float)f.Eta, (float)f.Lambda) { Form = form };
            store.Build(dev);
            block.NormWeight.Value.CopyFrom(ToFloat(f.Params["1.norm.weight"]));
            block.NormBias.Value.CopyFrom(ToFloat(f.Params["1.norm.bias"]));
            block.Dictionary.Value.CopyFrom(ToFloat(f.Params["1.fn.weight"]));
            using var x = dev.FromHost(ToFloat(f.Half), f.Batch, f.N, dim);
            using var y = dev.Allocate(f.Batch, f.N, dim);
            using var dy = dev.FromHost(ToFloat(f.Probe), f.Batch, f.N, dim);
            using var dx = dev.Allocate(f.Batch, f.N, dim);
            block.Forward(x, y);
            block.Backward(dy, dx);
            string what = $"{name} {form} on {dev.Spec}";
            Check.Close(y.ToArray(), f.Y, new Tolerance(1e-5, 1e-5), "y vs PyTorch " + what);
            var grads = new Tolerance(2e-5, 1e-5);
            Check.Close(block.NormWeight.Grad.ToArray(), f.Grads["1.norm.weight"], grads, "d 1.norm.weight vs PyTorch " + what);
            Check.Close(block.NormBias.Grad.ToArray(), f.Grads["1.norm.bias"], grads, "d 1.norm.bias vs PyTorch " + what);
            Check.Close(block.Dictionary.Grad.ToArray(), f.Grads["1.fn.weight"], grads, "d 1.fn.weight vs PyTorch " + what);
            var e = IstaBlockReference.Run(f.Half, f.Params["1.norm.weight"], f.Params["1.norm.bias"], f.Params["1.fn.weight"], f.Probe,
                rows, dim, f.Eta, f.Lambda, symmetric: false);
            Check.Close(y.ToArray(), e.Y, Fp32, "y vs float64 reference " + what);
            Check.Close(dx.ToArray(), e.Dx, Fp32, "d half vs float64 reference " + what);
        }
    }

    private static float[] ToFloat(double[] v) => v.Select(d => (float)d).ToArray();

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void RepeatedStepsReuseBuffersAndGiveTheSameResult(string backend)
    {
        var dev = Backends.Get(backend);
        const int tokens = 7, dim = 10;
        using var store = new ParameterStore();
        using var block = new IstaBlock(store, Prefix, dim);
        store.Build(dev, 3);
        using var x = dev.FromHost(TestData.Normal(61, tokens * dim), tokens, dim);
        using var dy = dev.FromHost(TestData.Normal(62, tokens * dim), tokens, dim);
        using var y = dev.Allocate(tokens, dim);
        using var dx = dev.Allocate(tokens, dim);
        block.Forward(x, y);
        block.Backward(dy, dx);
        var (y1, dx1, g1) = (y.ToArray(), dx.ToArray(), block.Dictionary.Grad.ToArray());
        block.Forward(x, y);
        block.Backward(dy, dx);
        Assert.Equal(y1, y.ToArray());
        Assert.Equal(dx1, dx.ToArray());
        Check.Close(block.Dictionary.Grad.ToArray(), g1.Select(v => 2.0 * v).ToArray(), new Tolerance(1e-6, 1e-6), "dD accumulated twice");
    }

    [Fact]
    public void BlockRejectsMisuse()
    {
        using var dev = CpuDevice.Create(1);
        using var store = new ParameterStore();
        using var block = new IstaBlock(store, Prefix, 6);
        store.Build(dev);
        using var x = dev.Zeros(7, 6);
        using var y = dev.Zeros(7, 6);
        using var wrong = dev.Zeros(7, 5);
        Assert.Throws<InvalidOperationException>(() => block.Backward(y, y));
        Assert.Throws<ArgumentException>(() => block.Forward(wrong, wrong));
        Assert.Throws<ArgumentException>(() => block.Forward(x, wrong));
        Assert.Throws<ArgumentException>(() => block.Forward(x, x));
        block.Forward(x, y);
        Assert.Throws<ArgumentException>(() => block.Backward(wrong, y));
        Assert.Throws<ArgumentException>(() => block.Backward(y, x));
        Assert.Throws<ArgumentOutOfRangeException>(() => new IstaBlock(new ParameterStore(), "p", 6, 0.1f, -1f, ThresholdKind.Symmetric));
    }
}
