using CrateIL.Nn.Verification;
using System.Text.Json;
using CrateIL.Compute.Devices;
using CrateIL.Nn.Optim;
using CrateIL.Nn.Parameters;
using CrateIL.Testing;
using Xunit;

namespace CrateIL.Nn.Tests;

/// <summary>Parameters (name, length, decay flag) in store order, built on a device from given values.</summary>
internal static class OptimTestStore
{
    public static ParameterStore Build(Device device, (string Name, int Length, bool Decay)[] layout, float[] values)
    {
        var store = new ParameterStore();
        foreach (var (name, length, decay) in layout) store.Add(name, [length], ParameterInit.Zeros, decay: decay);
        store.Build(device);
        store.Values.CopyFrom(values);
        return store;
    }

    public static bool[] DecayMask((string Name, int Length, bool Decay)[] layout, WeightDecayScope scope) =>
        layout.SelectMany(p => Enumerable.Repeat(scope == WeightDecayScope.AllParameters || p.Decay, p.Length)).ToArray();
}

/// <summary>tools/reference/optim_fixtures.py's output: three PyTorch optimizer steps, clipping and the smoothed loss.</summary>
internal sealed class OptimFixture
{
    public required float[] Initial;
    public required float[][] Grads;
    public required (string Name, int Length, bool Decay)[] Layout;
    public required List<(string Name, string Optimizer, bool Grouped, Dictionary<string, JsonElement> Hyper, float[][] After)> Cases;
    public required List<(float MaxNorm, double Norm, float[] Grads)> Clips;
    public required JsonElement Loss;

    public static OptimFixture Load()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Fixtures", "optim_torch.json");
        var doc = JsonDocument.Parse(File.ReadAllText(path));
        var r = doc.RootElement;
        static float[] F(JsonElement e) => e.EnumerateArray().Select(v => (float)v.GetDouble()).ToArray();
        var layout = r.GetProperty("params").EnumerateObject()
            .Select(p => (p.Name, p.Value.GetProperty("shape").EnumerateArray().Aggregate(1, (a, d) => a * d.GetInt32()), p.Value.GetProperty("decay").GetBoolean()))
            .ToArray();
        return new OptimFixture
        {
            Initial = F(r.GetProperty("initial")),
            Grads = r.GetProperty("grads").EnumerateArray().Select(F).ToArray(),
            Layout = layout,
            Cases = r.GetProperty("cases").EnumerateArray().Select(c => (
                c.GetProperty("name").GetString()!, c.GetProperty("optimizer").GetString()!, c.GetProperty("grouped").GetBoolean(),
                c.GetProperty("hyper").EnumerateObject().ToDictionary(h => h.Name, h => h.Value.Clone()),
                c.GetProperty("after").EnumerateArray().Select(F).ToArray())).ToList(),
            Clips = r.GetProperty("clip").EnumerateArray().Select(c => (
                (float)c.GetProperty("max_norm").GetDouble(), c.GetProperty("norm").GetDouble(), F(c.GetProperty("grads")))).ToList(),
            Loss = r.GetProperty("loss").Clone(),
        };
    }
}

public class OptimizerTests
{
    private static readonly (string, int, bool)[] TwoScalars = [("w", 1, true), ("b", 1, false)];

    private static float[] Run(Optimizer opt, ParameterStore store, params float[][] gradsPerStep)
    {
        foreach (var g in gradsPerStep)
        {
            store.Grads.CopyFrom(g);
            opt.Step();
        }
        return store.Values.ToArray();
    }

    private static void Expect(float[] actual, double[] expected, string what) =>
        Check.Close(actual, expected, new Tolerance(1e-6, 1e-6), what);

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void AdamWMatchesHandComputedSteps(string backend)
    {
        var device = Backends.Get(backend);
        using var store = OptimTestStore.Build(device, TwoScalars, [1f, 1f]);
        using var opt = new AdamW(store, learningRate: 0.1, weightDecay: 0.1, decayScope: WeightDecayScope.DecayFlaggedOnly);
        // A constant gradient makes m̂/√v̂ = sign(g) = 1 at every step (up to ε), so each step subtracts lr = 0.1;
        // decay multiplies w (only w) by 1 − lr·wd = 0.99 first: w = 0.99·w − 0.1 → 0.89, 0.7811, 0.673289.
        float[] g = [0.5f, 0.5f];
        Expect(Run(opt, store, g), [0.89, 0.9], "AdamW step 1");
        Expect(Run(opt, store, g), [0.7811, 0.8], "AdamW step 2");
        Expect(Run(opt, store, g), [0.673289, 0.7], "AdamW step 3");
        Assert.Equal(3, opt.StepCount);
        // m after three steps of g = 0.5: 0.5·(1 − 0.9³) = 0.1355; v: 0.25·(1 − 0.999³) = 0.000749250...
        Expect(opt.State[0].Tensor.ToArray(), [0.1355, 0.1355], "exp_avg");
        Expect(opt.State[1].Tensor.ToArray(), [0.25 * (1 - Math.Pow(0.999, 3)), 0.25 * (1 - Math.Pow(0.999, 3))], "exp_avg_sq");
        Assert.Equal(["exp_avg", "exp_avg_sq"], opt.State.Select(s => s.Name));
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void AdamWWithoutDecayAndWithDecayOnAllParameters(string backend)
    {
        var device = Backends.Get(backend);
        using (var store = OptimTestStore.Build(device, TwoScalars, [1f, 1f]))
        using (var opt = new AdamW(store, learningRate: 0.1, weightDecay: 0))
            Expect(Run(opt, store, [0.5f, -2f], [0.5f, -2f]), [0.8, 1.2], "AdamW without decay");
        using (var store = OptimTestStore.Build(device, TwoScalars, [1f, 1f]))
        using (var opt = new AdamW(store, learningRate: 0.1, weightDecay: 0.1, decayScope: WeightDecayScope.AllParameters))
            Expect(Run(opt, store, [0.5f, 0.5f], [0.5f, 0.5f]), [0.7811, 0.7811], "AdamW decaying every parameter");
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void LionMatchesHandComputedSteps(string backend)
    {
        var device = Backends.Get(backend);
        using var store = OptimTestStore.Build(device, TwoScalars, [1f, 1f]);
        using var opt = new Lion(store, learningRate: 0.1, weightDecay: 0.1, decayScope: WeightDecayScope.DecayFlaggedOnly);
        // Step 1: c = 0.1·0.5 > 0 → w = 0.99 − 0.1, b = 1 − 0.1; m = 0.01·0.5 = 0.005.
        Expect(Run(opt, store, [0.5f, 0.5f]), [0.89, 0.9], "Lion step 1");
        // Step 2, g = −0.01: c = 0.9·0.005 − 0.001 = 0.0035 > 0 (momentum wins) → −0.1 again; m = 0.00495 − 0.0001.
        Expect(Run(opt, store, [-0.01f, -0.01f]), [0.7811, 0.8], "Lion step 2");
        Expect(opt.State[0].Tensor.ToArray(), [0.00485, 0.00485], "Lion exp_avg");
        // Step 3, g = −1: c = 0.004365 − 0.1 < 0 → +0.1.
        Expect(Run(opt, store, [-1f, -1f]), [0.7811 * 0.99 + 0.1, 0.9], "Lion step 3");
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void LionSignOfZeroIsZero(string backend)
    {
        var device = Backends.Get(backend);
        // β₁ = 0.5 makes c = 0.5·m + 0.5·g exactly 0 for m = 1, g = −1 (element 0), and m = g = 0 (element 1):
        // neither parameter moves. Element 2 (c = 1) moves by −lr.
        using var store = OptimTestStore.Build(device, [("p", 3, true)], [2f, 3f, 4f]);
        using var opt = new Lion(store, learningRate: 0.25, weightDecay: 0, beta1: 0.5, beta2: 0.5);
        opt.State[0].Tensor.CopyFrom([1f, 0f, 1f]);
        float[] after = Run(opt, store, [-1f, 0f, 1f]);
        Assert.Equal([2f, 3f, 3.75f], after);
        Assert.Equal([0f, 0f, 1f], opt.State[0].Tensor.ToArray());
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void SgdMatchesHandComputedSteps(string backend)
    {
        var device = Backends.Get(backend);
        using (var store = OptimTestStore.Build(device, TwoScalars, [1f, 1f]))
        using (var opt = new Sgd(store, learningRate: 0.1, momentum: 0.9, weightDecay: 0.1, decayScope: WeightDecayScope.DecayFlaggedOnly))
        {
            // Step 1: d_w = 0.5 + 0.1·1 = 0.6 = buf → w = 0.94; d_b = 0.5 → b = 0.95.
            Expect(Run(opt, store, [0.5f, 0.5f]), [0.94, 0.95], "SGD step 1");
            // Step 2: d_w = 0.5 + 0.094 = 0.594, buf = 0.54 + 0.594 = 1.134 → w = 0.8266; buf_b = 0.95 → b = 0.855.
            Expect(Run(opt, store, [0.5f, 0.5f]), [0.8266, 0.855], "SGD step 2");
            Expect(opt.State[0].Tensor.ToArray(), [1.134, 0.95], "momentum_buffer");
        }
        using (var store = OptimTestStore.Build(device, TwoScalars, [1f, 1f]))
        using (var opt = new Sgd(store, learningRate: 0.1, momentum: 0.9, weightDecay: 0.1, nesterov: true, decayScope: WeightDecayScope.DecayFlaggedOnly))
        {
            // Nesterov step 1: d_w = 0.6, buf = 0.6, d = 0.6 + 0.54 = 1.14 → w = 0.886; b: 0.5 + 0.45 → 0.905.
            Expect(Run(opt, store, [0.5f, 0.5f]), [0.886, 0.905], "SGD Nesterov step 1");
        }
        using (var store = OptimTestStore.Build(device, TwoScalars, [1f, 1f]))
        using (var opt = new Sgd(store, learningRate: 0.5))
        {
            Assert.Empty(opt.State);
            Expect(Run(opt, store, [0.5f, -1f], [0.5f, -1f]), [0.5, 2], "plain SGD");
        }
    }

    public static TheoryData<string, string> BackendsAndOptimizers
    {
        get
        {
            var data = new TheoryData<string, string>();
            foreach (var b in new[] { Backends.Cpu, Backends.IlgpuCpu, Backends.OpenCL, Backends.Cuda })
                foreach (var o in new[] { "adamw", "lion", "sgd", "sgd-nesterov" })
                    data.Add(b, o);
            return data;
        }
    }

    /// <summary>Five steps over odd-sized parameters with mixed decay flags vs the float64 reference (params and state).</summary>
    [SkippableTheory]
    [MemberData(nameof(BackendsAndOptimizers))]
    public void StepsMatchFloat64Reference(string backend, string optimizer)
    {
        var device = Backends.Get(backend);
        (string, int, bool)[] layout = Backends.IsSimulator(backend)
            ? [("a", 7, true), ("b", 1, false), ("c", 33, true), ("d", 5, false)]
            // Over 2·CpuParallel.ElementGrain elements, so the CPU splits the store across threads mid-run.
            : [("a", 785, true), ("b", 1, false), ("c", 127, true), ("d", 65, false), ("e", 7, true), ("f", 35000, true),
               ("g", 31, false), ("h", 35001, false), ("i", 3, true)];
        int n = layout.Sum(p => p.Item2);
        foreach (var scope in new[] { WeightDecayScope.DecayFlaggedOnly, WeightDecayScope.AllParameters })
        {
            var initial = TestData.Uniform(1, n);
            using var store = OptimTestStore.Build(device, layout, initial);
            var decay = OptimTestStore.DecayMask(layout, scope);
            double lr = 0.01, wd = 0.3;
            Optimizer opt = optimizer switch
            {
                "adamw" => new AdamW(store, lr, wd, decayScope: scope),
                "lion" => new Lion(store, lr, wd, decayScope: scope),
                "sgd" => new Sgd(store, lr, momentum: 0.9, dampening: 0.2, weightDecay: wd, decayScope: scope),
                _ => new Sgd(store, lr, momentum: 0.8, weightDecay: wd, nesterov: true, decayScope: scope),
            };
            using var _ = opt;
            var p = TestData.ToDouble(initial);
            var s1 = new double[n];
            var s2 = new double[n];
            for (int step = 1; step <= 5; step++)
            {
                var g = TestData.Normal(100 + step, n, std: 0.5f);
                // A few exact zeros (and a zero momentum on step 1) exercise sign(0) and zero gradients.
                for (int i = 0; i < n; i += 13) g[i] = 0f;
                store.Grads.CopyFrom(g);
                opt.Step();
                var gd = TestData.ToDouble(g);
                switch (optimizer)
                {
                    case "adamw": OptimizerReference.AdamW(p, gd, s1, s2, decay, step, lr, wd); break;
                    case "lion": OptimizerReference.Lion(p, gd, s1, decay, lr, wd); break;
                    case "sgd": OptimizerReference.Sgd(p, gd, s1, decay, step, lr, momentum: 0.9, dampening: 0.2, wd: wd); break;
                    default: OptimizerReference.Sgd(p, gd, s1, decay, step, lr, momentum: 0.8, wd: wd, nesterov: true); break;
                }
                Assert.Equal(g, store.Grads.ToArray());
            }
            var tol = LayerTolerances.OptimizerStep;
            Check.Close(store.Values.ToArray(), p, tol, $"{optimizer} {scope} parameters after 5 steps");
            Check.Close(opt.State[0].Tensor.ToArray(), s1, tol, $"{optimizer} {scope} {opt.State[0].Name}");
            if (optimizer == "adamw") Check.Close(opt.State[1].Tensor.ToArray(), s2, LayerTolerances.AdamSecondMoment, $"{scope} exp_avg_sq");
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void DecayExcludedParametersAreUntouchedByDecay(string backend)
    {
        var device = Backends.Get(backend);
        (string, int, bool)[] layout = [("w", 9, true), ("norm", 17, false), ("w2", 3, true)];
        var initial = TestData.Uniform(4, 29, 0.5f, 2f);
        // Zero gradients: only weight decay can move a parameter (SGD without momentum: p − lr·wd·p).
        var zeros = new float[29];
        foreach (var kind in new[] { "adamw", "lion", "sgd" })
        {
            using var store = OptimTestStore.Build(device, layout, initial);
            using Optimizer opt = kind switch
            {
                "adamw" => new AdamW(store, 0.1, 0.5, decayScope: WeightDecayScope.DecayFlaggedOnly),
                "lion" => new Lion(store, 0.1, 0.5, decayScope: WeightDecayScope.DecayFlaggedOnly),
                _ => new Sgd(store, 0.1, weightDecay: 0.5, decayScope: WeightDecayScope.DecayFlaggedOnly),
            };
            var after = Run(opt, store, zeros, zeros);
            for (int i = 0; i < 29; i++)
            {
                bool decays = i < 9 || i >= 26;
                if (decays) Check.Close(after[i], initial[i] * 0.95 * 0.95, new Tolerance(1e-6, 1e-6), $"{kind} decayed [{i}]");
                else Assert.Equal(initial[i], after[i]);
            }
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void MatchesPyTorchFixture(string backend)
    {
        var device = Backends.Get(backend);
        var fx = OptimFixture.Load();
        Assert.Equal(7, fx.Cases.Count);
        foreach (var (name, kind, grouped, hyper, after) in fx.Cases)
        {
            using var store = OptimTestStore.Build(device, fx.Layout, fx.Initial);
            double H(string key) => hyper[key].GetDouble();
            var scope = grouped ? WeightDecayScope.DecayFlaggedOnly : WeightDecayScope.AllParameters;
            using Optimizer opt = kind switch
            {
                "adamw" => new AdamW(store, H("lr"), H("wd"), H("beta1"), H("beta2"), H("eps"), scope),
                "lion" => new Lion(store, H("lr"), H("wd"), H("beta1"), H("beta2"), scope),
                "sgd" => new Sgd(store, H("lr"), H("momentum"), H("dampening"), H("wd"), hyper["nesterov"].GetBoolean(), scope),
                _ => throw new InvalidDataException($"optim_torch.json: unknown optimizer '{kind}' in case {name}"),
            };
            for (int s = 0; s < fx.Grads.Length; s++)
            {
                store.Grads.CopyFrom(fx.Grads[s]);
                opt.Step();
                Check.Close(store.Values.ToArray(), after[s], new Tolerance(1e-6, 0), $"{name} step {s + 1} vs PyTorch");
            }
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void StateAndStepCountRestoreResumesExactly(string backend)
    {
        var device = Backends.Get(backend);
        (string, int, bool)[] layout = [("w", 37, true), ("b", 6, false)];
        var initial = TestData.Uniform(9, 43);
        var grads = Enumerable.Range(0, 4).Select(s => TestData.Normal(50 + s, 43)).ToArray();
        foreach (var kind in new[] { "adamw", "lion", "sgd" })
        {
            Optimizer Make(ParameterStore st) => kind switch
            {
                "adamw" => new AdamW(st, 0.01, 0.1, decayScope: WeightDecayScope.DecayFlaggedOnly),
                "lion" => new Lion(st, 0.01, 0.1, decayScope: WeightDecayScope.DecayFlaggedOnly),
                _ => new Sgd(st, 0.01, momentum: 0.9, weightDecay: 0.1, decayScope: WeightDecayScope.DecayFlaggedOnly),
            };
            using var store = OptimTestStore.Build(device, layout, initial);
            using var opt = Make(store);
            Run(opt, store, grads[0], grads[1]);
            // Checkpoint: parameters, state tensors, step count.
            var savedValues = store.Values.ToArray();
            var savedState = opt.State.Select(s => (s.Name, Data: s.Tensor.ToArray())).ToArray();
            long savedStep = opt.StepCount;
            var continued = Run(opt, store, grads[2], grads[3]);

            using var resumedStore = OptimTestStore.Build(device, layout, savedValues);
            using var resumed = Make(resumedStore);
            Assert.Equal(savedState.Select(s => s.Name), resumed.State.Select(s => s.Name));
            for (int i = 0; i < savedState.Length; i++) resumed.State[i].Tensor.CopyFrom(savedState[i].Data);
            resumed.StepCount = savedStep;
            Assert.Equal(continued, Run(resumed, resumedStore, grads[2], grads[3]));

            // Reset gives a fresh optimizer: its first step equals a new optimizer's first step.
            resumed.Reset();
            Assert.Equal(0, resumed.StepCount);
            resumedStore.Values.CopyFrom(initial);
            var afterReset = Run(resumed, resumedStore, grads[0]);
            store.Values.CopyFrom(initial);
            using var fresh = Make(store);
            Assert.Equal(Run(fresh, store, grads[0]), afterReset);
        }
    }

    [Fact]
    public void InvalidArgumentsAreRejected()
    {
        using var cpu = CpuDevice.Create(1);
        using var unbuilt = new ParameterStore();
        unbuilt.Add("w", [2], ParameterInit.Zeros);
        Assert.Throws<InvalidOperationException>(() => new AdamW(unbuilt));
        unbuilt.Build(cpu);
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdamW(unbuilt, learningRate: -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdamW(unbuilt, beta1: 1.0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdamW(unbuilt, eps: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Lion(unbuilt, weightDecay: double.NaN));
        Assert.Throws<ArgumentException>(() => new Sgd(unbuilt, 0.1, nesterov: true));
        Assert.Throws<ArgumentException>(() => new Sgd(unbuilt, 0.1, momentum: 0.9, dampening: 0.1, nesterov: true));
        using var opt = new Sgd(unbuilt, 0.1);
        Assert.Throws<ArgumentOutOfRangeException>(() => opt.LearningRate = double.PositiveInfinity);
        Assert.Throws<ArgumentOutOfRangeException>(() => opt.StepCount = -1);
        opt.Dispose();
        Assert.Throws<ObjectDisposedException>(() => opt.Step());
    }

    [Fact]
    public void DecayRunsFollowParameterFlags()
    {
        using var cpu = CpuDevice.Create(1);
        using var store = new ParameterStore();
        store.Add("a", [3], ParameterInit.Zeros, decay: true);
        store.Add("b", [2], ParameterInit.Zeros, decay: true);
        store.Add("c", [4], ParameterInit.Zeros, decay: false);
        store.Add("d", [1], ParameterInit.Zeros, decay: true);
        store.Build(cpu);
        using var flagged = DecayLayout.Build(store, WeightDecayScope.DecayFlaggedOnly);
        Assert.Equal(DecayMode.Mixed, flagged.Mode);
        Assert.Equal([0, 5, 9, 10], flagged.RunStarts);
        Assert.Equal([true, false, true], flagged.RunDecays);
        Assert.Equal([0, 0, 1, 2], new[] { 0, 4, 5, 9 }.Select(flagged.RunOf));
        Assert.Null(flagged.Mask);
        using var all = DecayLayout.Build(store, WeightDecayScope.AllParameters);
        Assert.Equal(DecayMode.All, all.Mode);
        Assert.Equal([0, 10], all.RunStarts);
    }
}
