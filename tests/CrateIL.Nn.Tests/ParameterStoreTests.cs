using CrateIL.Compute.Devices;
using CrateIL.Nn.Parameters;
using Xunit;

namespace CrateIL.Nn.Tests;

public class ParameterStoreTests
{
    [Fact]
    public void ViewsAreContiguousNamedSlicesOfOneBuffer()
    {
        using var store = new ParameterStore();
        var w = store.Add("fc.weight", [7, 5], ParameterInit.UniformFanIn, fanIn: 5);
        var b = store.Add("fc.bias", [7], ParameterInit.Zeros, decay: false);
        var g = store.Add("norm.weight", [5], ParameterInit.Ones, decay: false);
        using var cpu = CpuDevice.Create(1);
        store.Build(cpu, seed: 3);
        Assert.Equal(35 + 7 + 5, store.Count);
        Assert.Equal(35, b.Offset);
        Assert.Equal(42, g.Offset);
        var all = store.Values.ToArray();
        Assert.All(all.AsSpan(0, 35).ToArray(), v => Assert.InRange(v, -1 / MathF.Sqrt(5), 1 / MathF.Sqrt(5)));
        Assert.All(all.AsSpan(35, 7).ToArray(), v => Assert.Equal(0f, v));
        Assert.All(all.AsSpan(42, 5).ToArray(), v => Assert.Equal(1f, v));
        w.Grad.Fill(2f);
        Assert.Equal(70f, store.Grads.ToArray().Sum());
        store.ZeroGrads();
        Assert.Equal(0f, store.Grads.ToArray().Sum());
        Assert.Same(b, store["fc.bias"]);
        Assert.Throws<InvalidOperationException>(() => store.Add("late", [1], ParameterInit.Zeros));
        using var fresh = new ParameterStore();
        fresh.Add("x", [1], ParameterInit.Zeros);
        Assert.Throws<ArgumentException>(() => fresh.Add("x", [2], ParameterInit.Zeros));
    }

    [Fact]
    public void InitialisationIsDeterministicPerSeed()
    {
        float[] Draw(int seed)
        {
            using var s = new ParameterStore();
            s.Add("pos", [3, 4], ParameterInit.StandardNormal);
            s.Add("dict", [4, 4], ParameterInit.KaimingUniform, fanIn: 4);
            using var cpu = CpuDevice.Create(1);
            s.Build(cpu, seed);
            return s.Values.ToArray();
        }
        float[] first = Draw(11), second = Draw(11); // two separate stores from the same seed
        Assert.Equal(first, second);
        Assert.NotEqual(Draw(11), Draw(12));
        Assert.All(Draw(5).AsSpan(12).ToArray(), v => Assert.InRange(v, -MathF.Sqrt(1.5f), MathF.Sqrt(1.5f)));
    }
}
