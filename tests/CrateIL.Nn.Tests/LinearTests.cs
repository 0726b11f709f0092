using CrateIL.Nn.Verification;
using CrateIL.Compute.Devices;
using CrateIL.Nn.Layers;
using CrateIL.Nn.Parameters;
using CrateIL.Testing;
using Xunit;
using static CrateIL.Nn.Tests.LayerTesting;

namespace CrateIL.Nn.Tests;

public class LinearTests
{
    private static readonly Tolerance ForwardTol = LayerTolerances.LinearForward;
    private static readonly Tolerance BackwardTol = LayerTolerances.LinearBackward;

    [Theory]
    [InlineData(7, 5, 3, true)]
    [InlineData(1, 7, 5, false)]
    [InlineData(5, 1, 7, true)]
    public void ReferenceBackwardMatchesFiniteDifferences(int rows, int inF, int outF, bool bias)
    {
        var x = D(1, rows * inF); var w = D(2, outF * inF, 0.5); var b = bias ? D(3, outF) : null; var probe = D(4, rows * outF);
        var (dx, dw, db) = LinearReference.Backward(x, w, probe, rows, inF, outF);
        double L(double[] xx, double[] ww, double[]? bb) => FiniteDifference.Probe(LinearReference.Forward(xx, ww, bb, rows, inF, outF), probe);
        Check.Close(dx, FiniteDifference.Gradient(v => L(v, w, b), x), Fd, "dx");
        Check.Close(dw, FiniteDifference.Gradient(v => L(x, v, b), w), Fd, "dW");
        if (b is not null) Check.Close(db, FiniteDifference.Gradient(v => L(x, w, v), b), Fd, "db");
    }

    private static IEnumerable<(int Rows, int In, int Out, bool Bias)> Shapes(string backend) =>
        Backends.IsSimulator(backend)
            ? [(7, 5, 3, true), (3, 4, 2, false), (1, 7, 5, true)]
            : [(7, 5, 3, true), (7, 5, 3, false), (1, 7, 5, true), (65, 17, 9, true), (127, 65, 7, false)];

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void ForwardAndBackwardMatchReferenceWithAccumulatedGrads(string backend)
    {
        var dev = Backends.Get(backend);
        int seed = 10;
        foreach (var (rows, inF, outF, bias) in Shapes(backend))
        {
            string what = $"linear {rows}x{inF}->{outF} bias={bias} on {backend}";
            using var store = new ParameterStore();
            var layer = new Linear(store, "fc", inF, outF, bias);
            store.Build(dev, seed++);
            var (values, grads0) = Randomise(store, seed++);
            var xh = TestData.Normal(seed++, rows * inF);
            var dyh = TestData.Normal(seed++, rows * outF);
            using var x = dev.FromHost(xh, rows, inF);
            using var y = Poisoned(dev, rows, outF);
            using var dy = dev.FromHost(dyh, rows, outF);
            using var dx = Poisoned(dev, rows, inF);
            layer.Forward(x, y);
            layer.Backward(dy, dx);

            var w = D(values["fc.weight"]);
            var b = bias ? D(values["fc.bias"]) : null;
            Check.Close(y.ToArray(), LinearReference.Forward(D(xh), w, b, rows, inF, outF), ForwardTol, what + " y");
            var (rdx, rdw, rdb) = LinearReference.Backward(D(xh), w, D(dyh), rows, inF, outF);
            Check.Close(dx.ToArray(), rdx, BackwardTol, what + " dx");
            CheckAccumulated(store, "fc.weight", grads0["fc.weight"], rdw, BackwardTol, what);
            if (bias) CheckAccumulated(store, "fc.bias", grads0["fc.bias"], rdb, BackwardTol, what);
            else Assert.False(store.TryGet("fc.bias", out _));
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void SecondBackwardAddsTheSameGradientAgainAndWorksWithoutDx(string backend)
    {
        var dev = Backends.Get(backend);
        using var store = new ParameterStore();
        var layer = new Linear(store, "", 5, 3);
        store.Build(dev, 3);
        store.ZeroGrads();
        using var x = dev.FromHost(TestData.Normal(1, 105), 3, 7, 5);    // rank-3 tokens [B, T, in]
        using var y = Poisoned(dev, 3, 7, 3);
        using var dy = dev.FromHost(TestData.Normal(2, 63), 3, 7, 3);
        layer.Forward(x, y);
        layer.Backward(dy, null);
        var once = store["weight"].Grad.ToArray();
        var onceBias = store["bias"].Grad.ToArray();
        layer.Backward(dy, null);
        Check.Close(store["weight"].Grad.ToArray(), once.Select(v => 2.0 * v).ToArray(), new Tolerance(1e-6, 1e-6), $"twice dW on {backend}");
        Check.Close(store["bias"].Grad.ToArray(), onceBias.Select(v => 2.0 * v).ToArray(), new Tolerance(1e-6, 1e-6), $"twice db on {backend}");
        Assert.Equal(["weight", "bias"], store.Parameters.Select(p => p.Name));
    }

    [Fact]
    public void ParametersFollowPyTorchNamesShapesAndInit()
    {
        using var dev = CpuDevice.Create(1);
        using var store = new ParameterStore();
        var layer = new Linear(store, "to_patch_embedding.2", 48, 64);
        store.Build(dev, 7);
        Assert.Equal("to_patch_embedding.2.weight", layer.Weight.Name);
        Assert.Equal([64, 48], layer.Weight.Shape.Dims.ToArray());
        Assert.Equal("to_patch_embedding.2.bias", layer.Bias!.Name);
        Assert.Equal([64], layer.Bias.Shape.Dims.ToArray());
        double bound = 1 / Math.Sqrt(48);
        var w = layer.Weight.Value.ToArray();
        Assert.All(w, v => Assert.InRange(v, -bound, bound));
        Assert.All(layer.Bias.Value.ToArray(), v => Assert.InRange(v, -bound, bound));
        Assert.True(w.Max() > 0.8 * bound && w.Min() < -0.8 * bound, "weights should fill U(±1/√in)");
        Assert.True(layer.Weight.Decay);
        Assert.False(layer.Bias.Decay);
    }

    [Fact]
    public void BadShapesAndOrderAreRejected()
    {
        using var dev = CpuDevice.Create(1);
        using var store = new ParameterStore();
        var layer = new Linear(store, "fc", 5, 3);
        using var x = dev.Zeros(4, 5);
        using var y = dev.Zeros(4, 3);
        Assert.Throws<InvalidOperationException>(() => layer.Forward(x, y));   // store not built
        store.Build(dev);
        Assert.Throws<InvalidOperationException>(() => layer.Backward(y, x));  // before Forward
        using var wrong = dev.Zeros(4, 4);
        Assert.Throws<ArgumentException>(() => layer.Forward(wrong, y));
        Assert.Throws<ArgumentException>(() => layer.Forward(x, wrong));
        using var fewer = dev.Zeros(3, 3);
        Assert.Throws<ArgumentException>(() => layer.Forward(x, fewer));
        layer.Forward(x, y);
        Assert.Throws<ArgumentException>(() => layer.Backward(fewer, x));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Linear(store.IsBuilt ? new ParameterStore() : store, "z", 0, 3));
    }
}
