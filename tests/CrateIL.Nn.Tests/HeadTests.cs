using CrateIL.Nn.Verification;
using CrateIL.Compute.Devices;
using CrateIL.Nn.Layers;
using CrateIL.Nn.Parameters;
using CrateIL.Testing;
using Xunit;
using static CrateIL.Nn.Tests.LayerTesting;

namespace CrateIL.Nn.Tests;

public class HeadTests
{
    private static readonly Tolerance ForwardTol = LayerTolerances.HeadForward;
    private static readonly Tolerance BackwardTol = LayerTolerances.HeadBackward;

    [Theory]
    [InlineData(Pooling.Cls)]
    [InlineData(Pooling.Mean)]
    public void ReferenceBackwardMatchesFiniteDifferences(Pooling pooling)
    {
        const int batch = 3, tokens = 7, dim = 5, classes = 4;
        var x = D(1, batch * tokens * dim, 2); var g = LayerTesting.Add(D(2, dim, 0.3), Enumerable.Repeat(1.0, dim).ToArray());
        var b = D(3, dim, 0.3); var w = D(4, classes * dim, 0.5); var bias = D(5, classes, 0.3); var probe = D(6, batch * classes);
        var (_, saved) = ClassificationHeadReference.Forward(x, g, b, w, bias, batch, tokens, dim, classes, pooling);
        var (dx, dg, db, dw, dbias) = ClassificationHeadReference.Backward(probe, g, w, saved, batch, tokens, dim, classes, pooling);
        double L(double[] xx, double[] gg, double[] bb, double[] ww, double[] bi) =>
            FiniteDifference.Probe(ClassificationHeadReference.Forward(xx, gg, bb, ww, bi, batch, tokens, dim, classes, pooling).Logits, probe);
        Check.Close(dx, FiniteDifference.Gradient(v => L(v, g, b, w, bias), x), Fd, "dx");
        Check.Close(dg, FiniteDifference.Gradient(v => L(x, v, b, w, bias), g), Fd, "dγ");
        Check.Close(db, FiniteDifference.Gradient(v => L(x, g, v, w, bias), b), Fd, "dβ");
        Check.Close(dw, FiniteDifference.Gradient(v => L(x, g, b, v, bias), w), Fd, "dW");
        Check.Close(dbias, FiniteDifference.Gradient(v => L(x, g, b, w, v), bias), Fd, "db");
    }

    private static IEnumerable<(int Batch, int Tokens, int Dim, int Classes)> Shapes(string backend) =>
        Backends.IsSimulator(backend) ? [(3, 7, 5, 4), (1, 1, 7, 11)] : [(3, 7, 5, 4), (1, 1, 7, 11), (5, 65, 33, 10), (2, 197, 127, 1)];

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void ForwardAndBackwardMatchReferenceWithAccumulatedGrads(string backend)
    {
        var dev = Backends.Get(backend);
        int seed = 50;
        foreach (var (batch, tokens, dim, classes) in Shapes(backend))
            foreach (var pooling in new[] { Pooling.Cls, Pooling.Mean })
            {
                string what = $"head {pooling} B{batch} T{tokens} dim{dim} classes{classes} on {backend}";
                using var store = new ParameterStore();
                using var head = new ClassificationHead(store, dim, classes, pooling);
                store.Build(dev, seed++);
                var (values, grads0) = Randomise(store, seed++);
                var xh = TestData.Normal(seed++, batch * tokens * dim, 2f);
                var dh = TestData.Normal(seed++, batch * classes);
                using var x = dev.FromHost(xh, batch, tokens, dim);
                using var logits = Poisoned(dev, batch, classes);
                using var dLogits = dev.FromHost(dh, batch, classes);
                using var dx = Poisoned(dev, batch, tokens, dim);
                head.Forward(x, logits);
                head.Backward(dLogits, dx);
                var g = D(values["mlp_head.0.weight"]); var w = D(values["mlp_head.1.weight"]);
                var (rl, saved) = ClassificationHeadReference.Forward(D(xh), g, D(values["mlp_head.0.bias"]), w, D(values["mlp_head.1.bias"]),
                    batch, tokens, dim, classes, pooling);
                var (rdx, rdg, rdb, rdw, rdbias) = ClassificationHeadReference.Backward(D(dh), g, w, saved, batch, tokens, dim, classes, pooling);
                Check.Close(logits.ToArray(), rl, ForwardTol, what + " logits");
                Check.Close(dx.ToArray(), rdx, BackwardTol, what + " dx");
                CheckAccumulated(store, "mlp_head.0.weight", grads0["mlp_head.0.weight"], rdg, BackwardTol, what);
                CheckAccumulated(store, "mlp_head.0.bias", grads0["mlp_head.0.bias"], rdb, BackwardTol, what);
                CheckAccumulated(store, "mlp_head.1.weight", grads0["mlp_head.1.weight"], rdw, BackwardTol, what);
                CheckAccumulated(store, "mlp_head.1.bias", grads0["mlp_head.1.bias"], rdbias, BackwardTol, what);
            }
    }

    [Fact]
    public void NamesShapesAndErrors()
    {
        using var dev = CpuDevice.Create(1);
        using var store = new ParameterStore();
        using var head = new ClassificationHead(store, 384, 1000);
        store.Build(dev);
        Assert.Equal(["mlp_head.0.weight", "mlp_head.0.bias", "mlp_head.1.weight", "mlp_head.1.bias"], store.Parameters.Select(p => p.Name));
        Assert.Equal([1000, 384], store["mlp_head.1.weight"].Shape.Dims.ToArray());
        Assert.Equal(Pooling.Cls, head.Pooling);
        using var x = dev.Zeros(2, 197, 384);
        using var logits = dev.Zeros(2, 1000);
        using var wrong = dev.Zeros(3, 1000);
        Assert.Throws<ArgumentException>(() => head.Forward(x, wrong));
        Assert.Throws<InvalidOperationException>(() => head.Backward(logits, x));
        head.Forward(x, logits);
        using var dxWrong = dev.Zeros(2, 196, 384);
        Assert.Throws<ArgumentException>(() => head.Backward(logits, dxWrong));
    }
}
