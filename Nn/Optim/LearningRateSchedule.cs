namespace CrateIL.Nn.Optim;

/// <summary>
/// A learning rate as a function of a counter t that the caller advances: optimizer steps for a per-step schedule,
/// epochs for a per-epoch one (the CRATE reference steps its LambdaLR once per epoch).
/// </summary>
public abstract class LearningRateSchedule
{
    /// <summary>The learning rate at t (t ≥ 0).</summary>
    public abstract double At(long t);

    /// <summary>Sets <paramref name="optimizer"/>'s learning rate to <see cref="At"/>(t) and returns it.</summary>
    public double Apply(Optimizer optimizer, long t)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        double lr = At(t);
        optimizer.LearningRate = lr;
        return lr;
    }

    private protected static void CheckT(long t)
    {
        if (t < 0) throw new ArgumentOutOfRangeException(nameof(t), t, "Schedule position must be non-negative");
    }

    private protected static void CheckRate(string name, double value)
    {
        if (!(value >= 0) || double.IsInfinity(value))
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be finite and non-negative");
    }
}

/// <summary>
/// Linear warm-up then cosine decay (timm's CosineLRScheduler without restarts):
/// lr(t) = start + (base − start)·t/warmup for t &lt; warmup;
/// lr(t) = min + (base − min)·½(1 + cos(π·(t − warmup)/(total − warmup))) for warmup ≤ t ≤ total; min after total.
/// With warmup = 0 and min = 0 this is PyTorch's CosineAnnealingLR(T_max = total) in closed form.
/// </summary>
public sealed class WarmupCosineSchedule : LearningRateSchedule
{
    public WarmupCosineSchedule(double baseLearningRate, long warmup, long total, double minLearningRate = 0, double warmupStartLearningRate = 0)
    {
        CheckRate(nameof(baseLearningRate), baseLearningRate);
        CheckRate(nameof(minLearningRate), minLearningRate);
        CheckRate(nameof(warmupStartLearningRate), warmupStartLearningRate);
        if (warmup < 0) throw new ArgumentOutOfRangeException(nameof(warmup), warmup, "Warm-up length must be non-negative");
        if (total <= warmup)
            throw new ArgumentOutOfRangeException(nameof(total), total, $"Schedule length {total} must exceed the warm-up {warmup}");
        BaseLearningRate = baseLearningRate;
        MinLearningRate = minLearningRate;
        WarmupStartLearningRate = warmupStartLearningRate;
        Warmup = warmup;
        Total = total;
    }

    /// <summary>
    /// A per-step schedule given in epochs (timm's <c>t_in_epochs=False</c>): warm-up and total lengths are
    /// <paramref name="warmupEpochs"/>·steps and <paramref name="epochs"/>·steps, with t counting optimizer steps.
    /// </summary>
    public static WarmupCosineSchedule PerStep(double baseLearningRate, int warmupEpochs, int epochs, int stepsPerEpoch,
        double minLearningRate = 0, double warmupStartLearningRate = 0)
    {
        if (stepsPerEpoch < 1) throw new ArgumentOutOfRangeException(nameof(stepsPerEpoch), stepsPerEpoch, "Steps per epoch must be at least 1");
        return new WarmupCosineSchedule(baseLearningRate, (long)warmupEpochs * stepsPerEpoch, (long)epochs * stepsPerEpoch,
            minLearningRate, warmupStartLearningRate);
    }

    public double BaseLearningRate { get; }
    public double MinLearningRate { get; }
    public double WarmupStartLearningRate { get; }
    public long Warmup { get; }
    public long Total { get; }

    public override double At(long t)
    {
        CheckT(t);
        if (t < Warmup) return WarmupStartLearningRate + (BaseLearningRate - WarmupStartLearningRate) * t / Warmup;
        if (t >= Total) return MinLearningRate;
        double progress = (double)(t - Warmup) / (Total - Warmup);
        return MinLearningRate + (BaseLearningRate - MinLearningRate) * 0.5 * (1 + Math.Cos(Math.PI * progress));
    }
}

/// <summary>
/// The CRATE reference's per-epoch LambdaLR (main.py): lr(e) = base·min((e + 1)/warmup, ½(1 + cos(π·e/epochs))),
/// stepped once per epoch, with a 20-epoch warm-up by default. Past <c>epochs</c> the cosine term rises again,
/// exactly as the lambda does; training normally stops at e = epochs − 1.
/// </summary>
public sealed class CrateEpochSchedule : LearningRateSchedule
{
    public CrateEpochSchedule(double baseLearningRate, int epochs, int warmupEpochs = 20)
    {
        CheckRate(nameof(baseLearningRate), baseLearningRate);
        if (epochs < 1) throw new ArgumentOutOfRangeException(nameof(epochs), epochs, "Epoch count must be at least 1");
        if (warmupEpochs < 1) throw new ArgumentOutOfRangeException(nameof(warmupEpochs), warmupEpochs, "Warm-up epochs must be at least 1");
        BaseLearningRate = baseLearningRate;
        Epochs = epochs;
        WarmupEpochs = warmupEpochs;
    }

    public double BaseLearningRate { get; }
    public int Epochs { get; }
    public int WarmupEpochs { get; }

    /// <summary>The multiplier of the base learning rate at epoch <paramref name="epoch"/> (0-based).</summary>
    public double Factor(long epoch)
    {
        CheckT(epoch);
        return Math.Min((epoch + 1.0) / WarmupEpochs, 0.5 * (1 + Math.Cos(Math.PI * epoch / Epochs)));
    }

    public override double At(long t) => BaseLearningRate * Factor(t);
}
