using CrateIL.Nn.Verification;
using CrateIL.Compute.Devices;
using CrateIL.Compute.Ops;
using CrateIL.Compute.Tensors;
using CrateIL.Nn.Layers;
using CrateIL.Testing;
using Xunit;

namespace CrateIL.Nn.Tests;

/// <summary>
/// The ISTA step (forward, dZ, dD) on every backend against the float64 <see cref="IstaReference"/>, in both
/// evaluation forms and both threshold kinds, at odd sizes.
/// </summary>
public class IstaTests
{
    // float32 GEMMs over dim ≤ 64 terms of size O(1): errors are a few 1e-7 relative to the largest terms, so
    // 1e-5 relative plus a small absolute floor (for values that cancel to near zero) leaves a wide margin.
    private static readonly Tolerance Fp32 = LayerTolerances.Ista;
    private const float Eta = 0.1f, Lambda = 0.1f;

    /// <summary>
    /// (rows, dim) cases: N = 7 and 65, dim 6, 10 and 64, in both forms and Auto (two-GEMM for 7 rows, folded
    /// for 65), and CRATE-S width 384. The ILGPU CPU simulator gets two small cases and the forced forms only (each GEMM costs it ~0.1 s).
    /// </summary>
    private static IEnumerable<(int N, int Dim)> Sizes(string backend) => Backends.IsSimulator(backend)
        ? [(7, 10), (65, 10)]
        : [(7, 6), (7, 10), (7, 64), (65, 6), (65, 10), (65, 64), (97, 384)];

    private static readonly IstaForm[] Forms = [IstaForm.Auto, IstaForm.TwoGemm, IstaForm.Folded];

    /// <summary>LayerNorm-like tokens and a kaiming-uniform dictionary.</summary>
    internal static (float[] Z, float[] W) Inputs(int seed, int n, int dim)
    {
        var z = TestData.Normal(seed, (long)n * dim);
        float bound = MathF.Sqrt(6f / dim);
        return (z, TestData.Uniform(seed + 1, (long)dim * dim, -bound, bound));
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void ForwardAndBackwardMatchReference(string backend)
    {
        var dev = Backends.Get(backend);
        foreach (var (n, dim) in Sizes(backend))
            foreach (var kind in new[] { ThresholdKind.OneSided, ThresholdKind.Symmetric })
                foreach (var form in Backends.IsSimulator(backend) ? Forms[1..] : Forms)
                    CheckAgainstReference(dev, n, dim, kind, form, seed: 10 + n + dim);
    }

    /// <summary>
    /// Inference (<see cref="IstaWorkspace.ForInference"/>) takes the folded form even for fewer rows than features and
    /// keeps F = η(D − DᵀD) while D is unchanged: the result matches the float64 reference; a repeated call is bit-
    /// identical; after D changes (one element, then all of them) the next call equals a fresh workspace's
    /// bit for bit (F recomputed, never stale), and after a change of η too. Every backend (the ILGPU devices
    /// recompute F each call).
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void InferenceKeepsTheFoldedDictionaryOnlyWhileItIsUnchanged(string backend)
    {
        var dev = Backends.Get(backend);
        int n = 7, dim = Backends.IsSimulator(backend) ? 10 : 64;
        var (zh, wh) = Inputs(5, n, dim);
        using var z = dev.FromHost(zh, n, dim);
        using var w = dev.FromHost(wh, dim, dim);
        using var y = dev.Allocate(n, dim);
        using var ws = new IstaWorkspace(dev) { ForInference = true };

        float[] Run(IstaWorkspace workspace, float eta = Eta)
        {
            Ista.Forward(z, w, y, workspace, eta, Lambda);
            return y.ToArray();
        }
        float[] Fresh(float eta = Eta)
        {
            using var other = new IstaWorkspace(dev) { ForInference = true };
            return Run(other, eta);
        }

        var first = Run(ws);
        Assert.Equal(IstaForm.Folded, ws.LastForm);
        Check.Close(first, IstaReference.Forward(TestData.ToDouble(zh), TestData.ToDouble(wh), n, dim, Eta, Lambda, false), Fp32, "inference y");
        Assert.Equal(first, Run(ws));

        wh[3] += 0.5f;
        w.CopyFrom(wh);
        var changed = Run(ws);
        Assert.Equal(Fresh(), changed);
        Assert.NotEqual(first, changed);
        Check.Close(changed, IstaReference.Forward(TestData.ToDouble(zh), TestData.ToDouble(wh), n, dim, Eta, Lambda, false), Fp32, "y after D changed");

        for (int i = 0; i < wh.Length; i++) wh[i] *= 0.9f;
        w.CopyFrom(wh);
        Assert.Equal(Fresh(), Run(ws));
        Assert.Equal(Fresh(0.2f), Run(ws, 0.2f));
    }

    /// <summary>
    /// With a frozen dictionary (<see cref="IstaWorkspace.FrozenGeneration"/>) F is computed once per generation and
    /// D: a new generation over the same D keeps it after one check (Predict freezes for every call), a changed D is
    /// folded again, and every result equals a fresh workspace's bit for bit.
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void FrozenDictionaryIsFoldedOncePerGenerationAndChange(string backend)
    {
        var dev = Backends.Get(backend);
        int n = 7, dim = Backends.IsSimulator(backend) ? 10 : 64;
        bool host = dev is CpuDevice;
        var (zh, wh) = Inputs(9, n, dim);
        using var z = dev.FromHost(zh, n, dim);
        using var w = dev.FromHost(wh, dim, dim);
        using var y = dev.Allocate(n, dim);
        using var ws = new IstaWorkspace(dev) { ForInference = true, FrozenGeneration = 1 };
        float[] Run(IstaWorkspace workspace)
        {
            Ista.Forward(z, w, y, workspace, Eta, Lambda);
            return y.ToArray();
        }
        float[] Fresh()
        {
            using var other = new IstaWorkspace(dev) { ForInference = true };
            return Run(other);
        }

        var first = Run(ws);
        Assert.Equal(Fresh(), first);
        Assert.Equal(first, Run(ws));
        Assert.Equal(1, ws.Folds);
        ws.FrozenGeneration = 2;
        Assert.Equal(first, Run(ws));
        Assert.Equal(host ? 1 : 2, ws.Folds);   // the check that keeps F is a host memcmp; devices fold again
        wh[5] -= 0.25f;
        w.CopyFrom(wh);
        ws.FrozenGeneration = 3;
        var changed = Run(ws);
        Assert.Equal(host ? 2 : 3, ws.Folds);
        Assert.Equal(Fresh(), changed);
        Assert.NotEqual(first, changed);
    }

    /// <summary>
    /// The dictionary check that keeps the folded F: a bit comparison split over the team, so a change in any chunk
    /// (first, middle, last element) is seen, −0 differs from 0 and a NaN payload from another.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void DictionaryCheckSeesAChangeInEveryChunk(int threads)
    {
        using var dev = CpuDevice.Create(threads);
        int len = 3 * CrateIL.Compute.Cpu.CpuParallel.ElementGrain + 5;
        var h = TestData.Normal(9, len);
        using var a = dev.FromHost(h, len);
        using var b = dev.FromHost(h, len);
        Assert.True(IstaCpu.SameBits(dev, a, b));
        foreach (int at in new[] { 0, len / 2, len - 1 })
        {
            var changed = (float[])h.Clone();
            changed[at] = BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(changed[at]) ^ 1);   // one ulp
            b.CopyFrom(changed);
            Assert.False(IstaCpu.SameBits(dev, a, b), $"a change at {at} of {len} went unseen on {threads} threads");
        }
        var zeros = new float[len];
        var negative = new float[len];
        negative[len - 1] = -0f;
        using var z0 = dev.FromHost(zeros, len);
        using var z1 = dev.FromHost(negative, len);
        Assert.False(IstaCpu.SameBits(dev, z0, z1), "−0 must differ from 0");
        var nan1 = new float[len];
        var nan2 = new float[len];
        nan1[len / 3] = BitConverter.Int32BitsToSingle(0x7fc00001);
        nan2[len / 3] = BitConverter.Int32BitsToSingle(0x7fc00002);
        using var n1 = dev.FromHost(nan1, len);
        using var n2 = dev.FromHost(nan2, len);
        Assert.False(IstaCpu.SameBits(dev, n1, n2), "NaN payloads must differ");
        using var n3 = dev.FromHost(nan1, len);
        Assert.True(IstaCpu.SameBits(dev, n1, n3), "identical bits, NaN included, are the same");
    }

    private static void CheckAgainstReference(Device dev, int n, int dim, ThresholdKind kind, IstaForm form, int seed)
    {
        string what = $"n={n} dim={dim} {kind} {form}";
        bool symmetric = kind == ThresholdKind.Symmetric;
        var (zh, wh) = Inputs(seed, n, dim);
        var dyh = TestData.Normal(seed + 2, (long)n * dim);
        var prior = TestData.Uniform(seed + 3, (long)dim * dim);
        using var z = dev.FromHost(zh, n, dim);
        using var w = dev.FromHost(wh, dim, dim);
        using var y = dev.Allocate(n, dim);
        using var dy = dev.FromHost(dyh, n, dim);
        using var dz = dev.Allocate(n, dim);
        using var dw = dev.FromHost(prior, dim, dim);
        using var ws = new IstaWorkspace(dev) { Form = form };
        y.Fill(float.NaN);
        dz.Fill(float.NaN);

        Ista.Forward(z, w, y, ws, Eta, Lambda, kind);
        Assert.Equal(form == IstaForm.Auto ? (n >= dim ? IstaForm.Folded : IstaForm.TwoGemm) : form, ws.LastForm);
        Ista.Backward(dy, z, w, dz, dw, ws);

        double[] zd = TestData.ToDouble(zh), wd = TestData.ToDouble(wh), dyd = TestData.ToDouble(dyh);
        var yRef = IstaReference.Forward(zd, wd, n, dim, Eta, Lambda, symmetric);
        var (dzRef, dwRef) = IstaReference.Backward(zd, wd, dyd, n, dim, Eta, Lambda, symmetric);
        for (int i = 0; i < dwRef.Length; i++) dwRef[i] += prior[i];   // parameter gradients accumulate
        Check.Close(y.ToArray(), yRef, Fp32, "y " + what);
        Check.Close(dz.ToArray(), dzRef, Fp32, "dZ " + what);
        Check.Close(dw.ToArray(), dwRef, Fp32, "dD (accumulated) " + what);
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void ZeroAndIdentityDictionariesGiveThresholdedInput(string backend)
    {
        var dev = Backends.Get(backend);
        const int n = 7, dim = 10;
        var zh = TestData.Normal(3, n * dim);
        var expected = zh.Select(v => Math.Max((double)v - (double)(Eta * Lambda), 0)).ToArray();
        var eye = new float[dim * dim];
        for (int i = 0; i < dim; i++) eye[i * dim + i] = 1f;
        foreach (var (name, wh) in new[] { ("D = 0", new float[dim * dim]), ("D = I", eye) })
            foreach (var form in new[] { IstaForm.TwoGemm, IstaForm.Folded })
            {
                using var z = dev.FromHost(zh, n, dim);
                using var w = dev.FromHost(wh, dim, dim);
                using var y = dev.Allocate(n, dim);
                using var ws = new IstaWorkspace(dev) { Form = form };
                y.Fill(float.NaN);
                Ista.Forward(z, w, y, ws, Eta, Lambda);
                // Exact in both forms: Z − Z·I = 0 and η(I − IᵀI) = 0, so p = Z.
                Check.Close(y.ToArray(), TestData.ToDouble(zh.Select(v => Math.Max(v - Eta * Lambda, 0f)).ToArray()), new Tolerance(0, 0), $"{name} ({form})");
                Check.Close(y.ToArray(), expected, new Tolerance(1e-7, 0), $"{name} ({form}) vs float64");
            }
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void AgreesWithTheThreeGemmFormOfTheReferenceCode(string backend)
    {
        var dev = Backends.Get(backend);
        int n = 65, dim = Backends.IsSimulator(backend) ? 10 : 64;
        var (zh, wh) = Inputs(21, n, dim);
        var three = IstaReference.ForwardThreeGemm(TestData.ToDouble(zh), TestData.ToDouble(wh), n, dim, Eta, Lambda);
        // The float64 forms agree to rounding; the float32 kernels (either form) agree with the literal 3-GEMM code to 1e-5.
        Check.Close(IstaReference.Forward(TestData.ToDouble(zh), TestData.ToDouble(wh), n, dim, Eta, Lambda), three, new Tolerance(1e-12, 1e-12), "float64 2-GEMM vs 3-GEMM");
        foreach (var form in new[] { IstaForm.TwoGemm, IstaForm.Folded })
        {
            using var z = dev.FromHost(zh, n, dim);
            using var w = dev.FromHost(wh, dim, dim);
            using var y = dev.Allocate(n, dim);
            using var ws = new IstaWorkspace(dev) { Form = form };
            Ista.Forward(z, w, y, ws, Eta, Lambda);
            Check.Close(y.ToArray(), three, new Tolerance(1e-5, 1e-5), $"float32 {form} vs 3-GEMM reference");
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void GradientsAccumulateOverCalls(string backend)
    {
        var dev = Backends.Get(backend);
        const int n = 7, dim = 6;
        var (zh, wh) = Inputs(31, n, dim);
        var dyh = TestData.Normal(32, n * dim);
        using var z = dev.FromHost(zh, n, dim);
        using var w = dev.FromHost(wh, dim, dim);
        using var y = dev.Allocate(n, dim);
        using var dy = dev.FromHost(dyh, n, dim);
        using var dz = dev.Allocate(n, dim);
        using var dw = dev.Zeros(dim, dim);
        using var ws = new IstaWorkspace(dev);
        for (int call = 0; call < 3; call++)
        {
            Ista.Forward(z, w, y, ws, Eta, Lambda);
            Ista.Backward(dy, z, w, dz, dw, ws);
        }
        var (dzRef, dwRef) = IstaReference.Backward(TestData.ToDouble(zh), TestData.ToDouble(wh), TestData.ToDouble(dyh), n, dim, Eta, Lambda);
        Check.Close(dz.ToArray(), dzRef, Fp32, "dZ is assigned, not accumulated");
        Check.Close(dw.ToArray(), dwRef.Select(v => 3 * v).ToArray(), Fp32, "dD after three calls");
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void BackwardMayOverwriteItsUpstreamGradient(string backend)
    {
        var dev = Backends.Get(backend);
        const int n = 65, dim = 10;
        var (zh, wh) = Inputs(41, n, dim);
        var dyh = TestData.Normal(42, n * dim);
        foreach (var form in new[] { IstaForm.TwoGemm, IstaForm.Folded })
        {
            using var z = dev.FromHost(zh, n, dim);
            using var w = dev.FromHost(wh, dim, dim);
            using var y = dev.Allocate(n, dim);
            using var dy = dev.FromHost(dyh, n, dim);
            using var dw = dev.Zeros(dim, dim);
            using var ws = new IstaWorkspace(dev) { Form = form };
            Ista.Forward(z, w, y, ws, Eta, Lambda);
            Ista.Backward(dy, z, w, dy, dw, ws);
            var (dzRef, _) = IstaReference.Backward(TestData.ToDouble(zh), TestData.ToDouble(wh), TestData.ToDouble(dyh), n, dim, Eta, Lambda);
            Check.Close(dy.ToArray(), dzRef, Fp32, $"dZ written over dy ({form})");
        }
    }

    [Fact]
    public void SteadyStateStepsDoNotAllocateOnOneCpuThread()
    {
        using var dev = CpuDevice.Create(1);
        const int n = 65, dim = 64;
        var (zh, wh) = Inputs(51, n, dim);
        using var z = dev.FromHost(zh, n, dim);
        using var w = dev.FromHost(wh, dim, dim);
        using var y = dev.Allocate(n, dim);
        using var dz = dev.Allocate(n, dim);
        using var dw = dev.Zeros(dim, dim);
        foreach (var form in new[] { IstaForm.TwoGemm, IstaForm.Folded })
        {
            using var ws = new IstaWorkspace(dev) { Form = form };
            void Step()
            {
                Ista.Forward(z, w, y, ws, Eta, Lambda);
                Ista.Backward(y, z, w, dz, dw, ws);
            }
            Step();
            Step();
            long before = GC.GetAllocatedBytesForCurrentThread();
            Step();
            Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        }
    }

    [Fact]
    public void BadArgumentsAreRejected()
    {
        using var dev = CpuDevice.Create(1);
        using var z = dev.Zeros(7, 6);
        using var w = dev.Zeros(6, 6);
        using var y = dev.Zeros(7, 6);
        using var ws = new IstaWorkspace(dev);
        using var wrongW = dev.Zeros(6, 5);
        using var wrongY = dev.Zeros(6, 7);
        Assert.Throws<ArgumentException>(() => Ista.Forward(z, wrongW, y, ws));
        Assert.Throws<ArgumentException>(() => Ista.Forward(z, w, wrongY, ws));
        Assert.Throws<ArgumentException>(() => Ista.Forward(z, w, z, ws));
        Assert.Throws<ArgumentOutOfRangeException>(() => Ista.Forward(z, w, y, ws, float.NaN));
        Assert.Throws<ArgumentOutOfRangeException>(() => Ista.Forward(z, w, y, ws, 0.1f, -0.1f, ThresholdKind.Symmetric));
        using var dw = dev.Zeros(6, 6);
        Assert.Throws<InvalidOperationException>(() => Ista.Backward(y, z, w, y, dw, ws));
        Ista.Forward(z, w, y, ws);
        using var z2 = dev.Zeros(8, 6);
        using var y2 = dev.Zeros(8, 6);
        Assert.Throws<InvalidOperationException>(() => Ista.Backward(y2, z2, w, y2, dw, ws));
        Assert.Throws<ArgumentException>(() => Ista.Backward(y, z, w, z, dw, ws));
    }
}
