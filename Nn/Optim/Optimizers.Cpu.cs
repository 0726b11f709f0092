using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using CrateIL.Compute.Cpu;
using CrateIL.Compute.Devices;

namespace CrateIL.Nn.Optim;

/// <summary>
/// An optimizer's per-element update over [start, start + count), where weight decay is on or off for the whole
/// range. The arithmetic follows PyTorch's single-tensor CPU implementation operation by operation (plain
/// multiplies and adds, no fused multiply-add), so the Vector256 body and the scalar tail give the same bits.
/// </summary>
internal interface IUpdateRule
{
    void Apply(int start, int count, bool decay);
}

/// <summary>
/// Runs an update rule over the store with CPU threads: one contiguous, cache-line-aligned chunk per member of the
/// device's <see cref="CpuThreadTeam"/>, each chunk split at the decay-run boundaries it crosses. One instance per
/// optimizer carries the rule into the team, so a step allocates nothing. Small stores, one-thread devices and a
/// team busy with another caller run on the calling thread.
/// </summary>
internal sealed class CpuUpdateJob<TRule>(DecayLayout layout, int length) : ITeamJob where TRule : struct, IUpdateRule
{
    private TRule _rule;
    private int _chunk;

    public void Run(CpuDevice device, in TRule rule)
    {
        _rule = rule;
        int threads = (int)Math.Min(device.Threads, (long)length / CpuParallel.ElementGrain);
        if (threads > 1)
        {
            _chunk = ((length + threads - 1) / threads + 15) / 16 * 16;
            if (CpuThreadTeam.Get(threads).TryRun(this)) return;
        }
        Range(0, length);
    }

    public void Execute(int thread, CpuThreadTeam team)
    {
        int start = thread * _chunk;
        if (start < length) Range(start, Math.Min(_chunk, length - start));
    }

    private void Range(int start, int count)
    {
        int end = start + count;
        int r = layout.RunOf(start);
        var starts = layout.RunStarts;
        var decays = layout.RunDecays;
        for (int i = start; i < end; r++)
        {
            int runEnd = Math.Min(end, starts[r + 1]);
            _rule.Apply(i, runEnd - i, decays[r]);
            i = runEnd;
        }
    }
}

/// <summary>
/// AdamW: p ← p·(1 − lr·wd); m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; p ← p − (lr/(1−β₁ᵗ))·m / (√v/√(1−β₂ᵗ) + ε).
/// </summary>
internal readonly unsafe struct AdamWRule(float* p, float* g, float* m, float* v, in AdamWScalars s) : IUpdateRule
{
    private readonly AdamWScalars _s = s;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Apply(int start, int count, bool decay)
    {
        float f = decay ? _s.DecayFactor : 1f;
        int i = start, end = start + count;
        if (Vector256.IsHardwareAccelerated)
        {
            var vf = Vector256.Create(f);
            var b1 = Vector256.Create(_s.Beta1);
            var omb1 = Vector256.Create(_s.OneMinusBeta1);
            var b2 = Vector256.Create(_s.Beta2);
            var omb2 = Vector256.Create(_s.OneMinusBeta2);
            var bc2 = Vector256.Create(_s.BiasCorrection2Sqrt);
            var eps = Vector256.Create(_s.Eps);
            var nss = Vector256.Create(_s.NegativeStepSize);
            for (; i <= end - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var vg = Vector256.Load(g + i);
                var vp = Vector256.Load(p + i) * vf;
                var vm = Vector256.Load(m + i) * b1 + vg * omb1;
                var vv = Vector256.Load(v + i) * b2 + omb2 * vg * vg;
                var denom = Vector256.Sqrt(vv) / bc2 + eps;
                vp += nss * vm / denom;
                Vector256.Store(vm, m + i);
                Vector256.Store(vv, v + i);
                Vector256.Store(vp, p + i);
            }
        }
        for (; i < end; i++)
        {
            float gi = g[i];
            float pi = p[i] * f;
            float mi = m[i] * _s.Beta1 + gi * _s.OneMinusBeta1;
            float vi = v[i] * _s.Beta2 + _s.OneMinusBeta2 * gi * gi;
            float denom = MathF.Sqrt(vi) / _s.BiasCorrection2Sqrt + _s.Eps;
            pi += _s.NegativeStepSize * mi / denom;
            m[i] = mi;
            v[i] = vi;
            p[i] = pi;
        }
    }
}

/// <summary>
/// Lion (CRATE reference): p ← p·(1 − lr·wd); p ← p − lr·sign(β₁m + (1−β₁)g); m ← β₂m + (1−β₂)g;
/// sign(0) = 0 (and NaN → 0, as torch.sign on the CPU).
/// </summary>
internal readonly unsafe struct LionRule(float* p, float* g, float* m, in LionScalars s) : IUpdateRule
{
    private readonly LionScalars _s = s;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Apply(int start, int count, bool decay)
    {
        float f = decay ? _s.DecayFactor : 1f;
        int i = start, end = start + count;
        if (Vector256.IsHardwareAccelerated)
        {
            var vf = Vector256.Create(f);
            var b1 = Vector256.Create(_s.Beta1);
            var omb1 = Vector256.Create(_s.OneMinusBeta1);
            var b2 = Vector256.Create(_s.Beta2);
            var omb2 = Vector256.Create(_s.OneMinusBeta2);
            var nlr = Vector256.Create(_s.NegativeLearningRate);
            var one = Vector256.Create(1f);
            var minusOne = Vector256.Create(-1f);
            for (; i <= end - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var vg = Vector256.Load(g + i);
                var vm = Vector256.Load(m + i);
                var c = vm * b1 + vg * omb1;
                var sign = (Vector256.GreaterThan(c, Vector256<float>.Zero) & one) | (Vector256.LessThan(c, Vector256<float>.Zero) & minusOne);
                var vp = Vector256.Load(p + i) * vf;
                vp += nlr * sign;
                Vector256.Store(vp, p + i);
                Vector256.Store(vm * b2 + vg * omb2, m + i);
            }
        }
        for (; i < end; i++)
        {
            float gi = g[i], mi = m[i];
            float c = mi * _s.Beta1 + gi * _s.OneMinusBeta1;
            float sign = c > 0f ? 1f : c < 0f ? -1f : 0f;
            p[i] = p[i] * f + _s.NegativeLearningRate * sign;
            m[i] = mi * _s.Beta2 + gi * _s.OneMinusBeta2;
        }
    }
}

/// <summary>
/// SGD (PyTorch): d = g + wd·p (coupled decay); with momentum μ: b ← d on the first step, else b ← μb + (1−τ)d;
/// d ← d + μb (Nesterov) or d ← b; p ← p − lr·d. Without momentum there is no buffer and d updates p directly.
/// </summary>
internal readonly unsafe struct SgdRule(float* p, float* g, float* buffer, in SgdScalars s) : IUpdateRule
{
    private readonly SgdScalars _s = s;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Apply(int start, int count, bool decay)
    {
        bool applyDecay = decay && _s.WeightDecay != 0f;
        bool momentum = buffer != null;
        int i = start, end = start + count;
        if (Vector256.IsHardwareAccelerated)
        {
            var wd = Vector256.Create(_s.WeightDecay);
            var mu = Vector256.Create(_s.Momentum);
            var omd = Vector256.Create(_s.OneMinusDampening);
            var nlr = Vector256.Create(_s.NegativeLearningRate);
            for (; i <= end - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var vp = Vector256.Load(p + i);
                var d = Vector256.Load(g + i);
                if (applyDecay) d += wd * vp;
                if (momentum)
                {
                    var b = _s.First ? d : Vector256.Load(buffer + i) * mu + omd * d;
                    Vector256.Store(b, buffer + i);
                    d = _s.Nesterov ? d + mu * b : b;
                }
                Vector256.Store(vp + nlr * d, p + i);
            }
        }
        for (; i < end; i++)
        {
            float pi = p[i], d = g[i];
            if (applyDecay) d += _s.WeightDecay * pi;
            if (momentum)
            {
                float b = _s.First ? d : buffer[i] * _s.Momentum + _s.OneMinusDampening * d;
                buffer[i] = b;
                d = _s.Nesterov ? d + _s.Momentum * b : b;
            }
            p[i] = pi + _s.NegativeLearningRate * d;
        }
    }
}
