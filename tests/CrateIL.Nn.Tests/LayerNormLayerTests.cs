using CrateIL.Nn.Verification;
using CrateIL.Compute.Devices;
using CrateIL.Compute.Ops;
using CrateIL.Nn.Layers;
using CrateIL.Nn.Parameters;
using CrateIL.Testing;
using Xunit;
using static CrateIL.Nn.Tests.LayerTesting;

namespace CrateIL.Nn.Tests;

public class LayerNormLayerTests
{
    private static readonly Tolerance ForwardTol = OpTolerances.LayerNormForward;
    private static readonly Tolerance BackwardTol = OpTolerances.LayerNormBackward;

    [Theory]
    [InlineData(7, 5)]
    [InlineData(1, 7)]
    [InlineData(3, 1)]
    public void ReferenceBackwardMatchesFiniteDifferences(int rows, int dim)
    {
        var x = D(1, rows * dim, 2); var g = D(2, dim); var b = D(3, dim); var probe = D(4, rows * dim);
        var (_, mean, rstd) = LayerNormReference.Forward(x, g, b, rows, dim);
        var (dx, dg, db) = LayerNormReference.Backward(probe, x, g, mean, rstd, rows, dim);
        double L(double[] xx, double[] gg, double[] bb) => FiniteDifference.Probe(LayerNormReference.Forward(xx, gg, bb, rows, dim).Y, probe);
        Check.Close(dx, FiniteDifference.Gradient(v => L(v, g, b), x), Fd, "dx");
        Check.Close(dg, FiniteDifference.Gradient(v => L(x, v, b), g), Fd, "dγ");
        Check.Close(db, FiniteDifference.Gradient(v => L(x, g, v), b), Fd, "dβ");
    }

    private static IEnumerable<(int Rows, int Dim)> Shapes(string backend) =>
        Backends.IsSimulator(backend) ? [(7, 5), (1, 7), (3, 33)] : [(7, 5), (1, 7), (65, 7), (7, 127), (3, 785)];

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void ForwardAndBackwardMatchReferenceWithAccumulatedGrads(string backend)
    {
        var dev = Backends.Get(backend);
        int seed = 20;
        foreach (var (rows, dim) in Shapes(backend))
        {
            string what = $"layernorm layer {rows}x{dim} on {backend}";
            using var store = new ParameterStore();
            using var layer = new LayerNormLayer(store, "norm", dim);
            store.Build(dev, seed++);
            var (values, grads0) = Randomise(store, seed++);
            var xh = TestData.Normal(seed++, rows * dim, 2f, 3f);
            var dyh = TestData.Normal(seed++, rows * dim);
            using var x = dev.FromHost(xh, rows, dim);
            using var y = Poisoned(dev, rows, dim);
            using var dy = dev.FromHost(dyh, rows, dim);
            layer.Forward(x, y);
            var g = D(values["norm.weight"]); var b = D(values["norm.bias"]);
            var (ry, mean, rstd) = LayerNormReference.Forward(D(xh), g, b, rows, dim);
            Check.Close(y.ToArray(), ry, ForwardTol, what + " y");
            Check.Close(layer.SavedMean!.ToArray(), mean, new Tolerance(1e-5, 1e-6), what + " saved mean");
            // dx written over dy (allowed): the layer's backward reads dy before it writes dx.
            layer.Backward(dy, dy);
            var (rdx, rdg, rdb) = LayerNormReference.Backward(D(dyh), D(xh), g, mean, rstd, rows, dim);
            Check.Close(dy.ToArray(), rdx, BackwardTol, what + " dx");
            CheckAccumulated(store, "norm.weight", grads0["norm.weight"], rdg, BackwardTol, what);
            CheckAccumulated(store, "norm.bias", grads0["norm.bias"], rdb, BackwardTol, what);
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void WithoutAffineAndWithCustomEpsilon(string backend)
    {
        var dev = Backends.Get(backend);
        const int rows = 3, dim = 7;
        using var store = new ParameterStore();
        using var layer = new LayerNormLayer(store, "ln", dim, eps: 1e-2f, affine: false);
        Assert.Empty(store.Parameters);
        store.Build(dev);
        var xh = TestData.Normal(5, rows * dim, 0.05f);
        using var x = dev.FromHost(xh, rows, dim);
        using var y = Poisoned(dev, rows, dim);
        using var dx = Poisoned(dev, rows, dim);
        layer.Forward(x, y);
        var (ry, mean, rstd) = LayerNormReference.Forward(D(xh), [], [], rows, dim, 1e-2);
        Check.Close(y.ToArray(), ry, ForwardTol, $"no-affine y on {backend}");
        var dyh = TestData.Normal(6, rows * dim);
        using var dy = dev.FromHost(dyh, rows, dim);
        layer.Backward(dy, dx);
        Check.Close(dx.ToArray(), LayerNormReference.Backward(D(dyh), D(xh), [], mean, rstd, rows, dim).Dx, BackwardTol, $"no-affine dx on {backend}");
    }

    [Fact]
    public void NamesInitAndErrors()
    {
        using var dev = CpuDevice.Create(1);
        using var store = new ParameterStore();
        using var layer = new LayerNormLayer(store, "mlp_head.0", 5);
        store.Build(dev);
        Assert.Equal(["mlp_head.0.weight", "mlp_head.0.bias"], store.Parameters.Select(p => p.Name));
        Assert.All(layer.Weight!.Value.ToArray(), v => Assert.Equal(1f, v));
        Assert.All(layer.Bias!.Value.ToArray(), v => Assert.Equal(0f, v));
        Assert.Equal(LayerNorm.DefaultEpsilon, layer.Epsilon);
        using var x = dev.Zeros(2, 5);
        using var wrong = dev.Zeros(2, 4);
        Assert.Throws<InvalidOperationException>(() => layer.Backward(x, x));
        Assert.Throws<ArgumentException>(() => layer.Forward(wrong, wrong));
        Assert.Throws<ArgumentException>(() => layer.Forward(x, x));
    }
}
