using CrateIL.Compute.Devices;
using CrateIL.Nn.Optim;
using CrateIL.Nn.Parameters;
using CrateIL.Testing;
using Xunit;

namespace CrateIL.Nn.Tests;

public class ScheduleTests
{
    private static readonly Tolerance Exact = new(1e-15, 1e-12);

    [Fact]
    public void WarmupCosineAtKnownSteps()
    {
        var s = new WarmupCosineSchedule(baseLearningRate: 1e-3, warmup: 10, total: 110, minLearningRate: 1e-5);
        Check.Close(s.At(0), 0, Exact, "warm-up start");
        Check.Close(s.At(5), 5e-4, Exact, "warm-up middle");
        Check.Close(s.At(9), 9e-4, Exact, "last warm-up step");
        Check.Close(s.At(10), 1e-3, Exact, "warm-up end = base");
        Check.Close(s.At(60), 1e-5 + (1e-3 - 1e-5) * 0.5, Exact, "cosine midpoint");
        Check.Close(s.At(35), 1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + Math.Sqrt(0.5)), Exact, "cosine quarter");
        Check.Close(s.At(110), 1e-5, Exact, "end = min");
        Check.Close(s.At(1000), 1e-5, Exact, "past the end");
        var fromStart = new WarmupCosineSchedule(1e-3, warmup: 4, total: 8, warmupStartLearningRate: 1e-4);
        Check.Close(fromStart.At(0), 1e-4, Exact, "warm-up from a start rate");
        Check.Close(fromStart.At(2), 5.5e-4, Exact, "warm-up from a start rate, halfway");
    }

    [Fact]
    public void PerStepScheduleFromEpochs()
    {
        // 5 warm-up epochs and 150 epochs of 100 steps: warm-up ends at step 500, cosine midpoint at step 7750.
        var s = WarmupCosineSchedule.PerStep(2.4e-4, warmupEpochs: 5, epochs: 150, stepsPerEpoch: 100);
        Assert.Equal(500, s.Warmup);
        Assert.Equal(15000, s.Total);
        Check.Close(s.At(250), 1.2e-4, Exact, "half-way through warm-up");
        Check.Close(s.At(500), 2.4e-4, Exact, "warm-up end");
        Check.Close(s.At(7750), 1.2e-4, Exact, "cosine midpoint");
        Check.Close(s.At(15000), 0, Exact, "end");
    }

    [Fact]
    public void WithoutWarmupItIsCosineAnnealing()
    {
        // torch CosineAnnealingLR(T_max = 200, eta_min = 0) closed form: base·½(1 + cos(π·t/200)).
        var s = new WarmupCosineSchedule(5e-5, warmup: 0, total: 200);
        for (int t = 0; t <= 200; t += 25)
            Check.Close(s.At(t), 5e-5 * 0.5 * (1 + Math.Cos(Math.PI * t / 200)), Exact, $"t = {t}");
    }

    [Fact]
    public void CrateLambdaFactorPerEpoch()
    {
        // factor(e) = min((e + 1)/20, ½(1 + cos(π·e/epochs))), main.py with epochs = 90.
        var s = new CrateEpochSchedule(4e-4, epochs: 90);
        Check.Close(s.Factor(0), 0.05, Exact, "epoch 0");
        Check.Close(s.Factor(9), 0.5, Exact, "epoch 9 (warm-up)");
        Check.Close(s.Factor(19), 0.5 * (1 + Math.Cos(Math.PI * 19 / 90)), Exact, "epoch 19: cosine is already below 1");
        Check.Close(s.Factor(45), 0.5, Exact, "epoch 45: cosine midpoint");
        Check.Close(s.Factor(89), 0.5 * (1 + Math.Cos(Math.PI * 89 / 90)), Exact, "last epoch");
        Check.Close(s.At(45), 2e-4, Exact, "lr at epoch 45");
        // The warm-up branch is the minimum exactly while (e + 1)/20 ≤ the cosine term.
        for (int e = 0; e < 90; e++)
            Assert.Equal(Math.Min((e + 1) / 20.0, 0.5 * (1 + Math.Cos(Math.PI * e / 90))), s.Factor(e));
    }

    [Fact]
    public void ApplySetsTheOptimizerRate()
    {
        using var cpu = CpuDevice.Create(1);
        using var store = new ParameterStore();
        store.Add("w", [3], ParameterInit.Zeros);
        store.Build(cpu);
        using var opt = new AdamW(store, learningRate: 1);
        var s = new WarmupCosineSchedule(2e-3, warmup: 4, total: 20);
        Assert.Equal(1e-3, s.Apply(opt, 2));
        Assert.Equal(1e-3, opt.LearningRate);
    }

    [Fact]
    public void InvalidSchedulesAreRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new WarmupCosineSchedule(1e-3, warmup: 10, total: 10));
        Assert.Throws<ArgumentOutOfRangeException>(() => new WarmupCosineSchedule(-1, warmup: 0, total: 10));
        Assert.Throws<ArgumentOutOfRangeException>(() => new WarmupCosineSchedule(1e-3, warmup: -1, total: 10));
        Assert.Throws<ArgumentOutOfRangeException>(() => new CrateEpochSchedule(1e-3, epochs: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new CrateEpochSchedule(1e-3, epochs: 10).At(-1));
    }
}
