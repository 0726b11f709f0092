using System.Diagnostics;
using System.Runtime;

namespace CrateIL.Cli.Commands;

/// <summary>
/// The warm-up of the timed bench commands: at least <see cref="TierUpSteps"/> steps, then until the tiered JIT has
/// gone quiet, so the timed steps measure steady-state code and no background compilation competes with them for the
/// cores. A fixed second of warm-up was not enough: methods that run once per step (the loss, the model's Backward,
/// the optimizer) reach tier 1 only after 30 calls plus a 100 ms delay, and on the 2-core reference machine the
/// CI-model step (65 ms) compiled 590 methods, 326 ms of JIT time, during its 30 timed steps.
/// </summary>
internal static class BenchWarmup
{
    /// <summary>
    /// Runs <paramref name="step"/> at least <paramref name="minSteps"/> times and <paramref name="minSeconds"/> (as asked),
    /// then on until <see cref="TierUpSteps"/> steps have run and none of the last <see cref="QuietSteps"/> steps, nor the
    /// last <see cref="QuietSeconds"/>, compiled a method — or until <paramref name="maxSeconds"/> have passed, which
    /// bounds only this automatic part. Returns the steps run.
    /// </summary>
    public static int UntilJitQuiet(Action step, int minSteps, double minSeconds = 1.0, double maxSeconds = 30.0)
    {
        var clock = Stopwatch.StartNew();
        long compiled = JitInfo.GetCompiledMethodCount();
        double lastChange = 0;
        int steps = 0, quiet = 0;
        while (true)
        {
            step();
            steps++;
            long now = JitInfo.GetCompiledMethodCount();
            double t = clock.Elapsed.TotalSeconds;
            if (now != compiled) { compiled = now; quiet = 0; lastChange = t; }
            else quiet++;
            if (steps < minSteps || t < minSeconds) continue;
            bool settled = steps >= TierUpSteps && quiet >= QuietSteps && t - lastChange >= QuietSeconds;
            if (settled || t >= maxSeconds) return steps;
        }
    }

    /// <summary>Steps that every warm-up runs: the tiered JIT promotes a method after 30 calls, so a method called once per step needs 30 steps.</summary>
    public const int TierUpSteps = 32;

    /// <summary>
    /// Consecutive steps without a compiled method that count as quiet: as many as a once-per-step method needs to be
    /// promoted, since the runtime starts counting calls only after 100 ms without new tier-0 code, so a quiet spell
    /// shorter than that could end just before the last promotions.
    /// </summary>
    public const int QuietSteps = TierUpSteps;

    /// <summary>Seconds without a compiled method that count as quiet (several tier-1 promotion delays of 100 ms).</summary>
    public const double QuietSeconds = 0.5;

    /// <summary>Methods the JIT compiled since <paramref name="before"/> (<see cref="JitInfo.GetCompiledMethodCount"/>): reported with the timings.</summary>
    public static long CompiledSince(long before) => JitInfo.GetCompiledMethodCount() - before;
}
