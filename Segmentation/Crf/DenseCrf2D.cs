using System.Runtime.CompilerServices;
using CrateIL.Compute.Cpu;
using CrateIL.Compute.Devices;

namespace CrateIL.Segmentation.Crf;

/// <summary>
/// Fully connected CRF on an image grid (Krähenbühl &amp; Koltun 2011) with the semantics and the float32 arithmetic
/// of pydensecrf's DenseCRF2D (crate-reference §6): Potts compatibility, Gaussian (position) and bilateral
/// (position + RGB) kernels, NORMALIZE_SYMMETRIC kernel normalisation K̃ = diag(n)·K·diag(n) with
/// n_i = 1/√(Σ_j k(f_i,f_j) + 1e−20), and mean-field inference Q ← softmax(−U + Σ_m w_m·K̃_m·Q) (the filtered sum
/// includes j = i, as the reference). Pixel (x = column, y = row) has index y·W + x. Kernel filtering uses
/// <see cref="PermutohedralLattice"/>, or the exact O(N²) <see cref="BruteForceGaussianFilter"/> when constructed
/// with <c>exact: true</c> (tests, tiny images).
/// <para>
/// Every label channel is filtered, and each step is evaluated in the reference's order: in = Q·n, K(in), ·n,
/// message = (−w)·that, energy = (−U − message₁) − message₂ …, then per pixel b = exp(e − max e), Q = b / Σb
/// (a division, not a reciprocal). Together with the lattice's float32 construction this keeps Q within float32
/// rounding of the reference over many iterations (the tests hold it to 1e−5 after 10).
/// </para>
/// All per-pixel passes run on the caller's <see cref="CpuDevice"/> thread team; the buffers are allocated once per
/// CRF, so repeated <see cref="Inference(int, Span{float})"/> calls allocate nothing. A CRF per image can share a
/// <see cref="CrfWorkspace"/> with the previous one, so that its features, lattices and buffers reuse that one's
/// memory (construction then allocates only a few small objects).
/// </summary>
public sealed class DenseCrf2D
{
    /// <summary>Pixels per thread below which a per-pixel pass is not split.</summary>
    private const int PixelGrain = 8192;

    private readonly int _n, _labels;
    private readonly CpuDevice _cpu;
    private readonly bool _exact;
    private readonly CrfWorkspace? _workspace;
    private readonly List<Term> _terms = new();
    private readonly float[] _negUnary;   // point-major [N, L]: −U (arrays may be longer than N·L with a workspace)
    private bool _hasUnary;
    private float[] _q = Array.Empty<float>(), _energy = Array.Empty<float>(), _in = Array.Empty<float>(), _out = Array.Empty<float>();
    private int _stageTerm;

    private sealed record Term(IFeatureFilter Filter, float[] Norm, float Weight);

    /// <param name="cpu">Threads for lattice construction and inference; null runs on the calling thread only.</param>
    /// <param name="exact">Filter with the exact O(N²) Gaussian sum instead of the lattice (tests, tiny images).</param>
    /// <param name="workspace">Storage to build in, taken over from the CRF that used it before (which then refuses
    /// further calls); null allocates this CRF's own.</param>
    public DenseCrf2D(int width, int height, int labels, CpuDevice? cpu = null, bool exact = false, CrfWorkspace? workspace = null)
    {
        if (width < 1 || height < 1) throw new ArgumentOutOfRangeException(nameof(width), $"image size {width}×{height} must be positive");
        if (labels < 2) throw new ArgumentOutOfRangeException(nameof(labels), labels, "a CRF needs at least 2 labels");
        Width = width; Height = height;
        _n = checked(width * height);
        _labels = labels;
        _cpu = SegmentationCpu.Resolve(cpu);
        _exact = exact;
        _workspace = workspace;
        if (workspace is not null) workspace.Owner = this;
        _negUnary = Buffer("negUnary", 0, checked(_n * labels));
    }

    /// <summary>A buffer of at least <paramref name="length"/> floats: fresh (zeroed), or the workspace's (contents undefined).</summary>
    private float[] Buffer(string role, int term, int length) =>
        _workspace is null ? new float[length] : _workspace.Rent<float>(role, term, 0, length);

    private void CheckOwner()
    {
        if (_workspace is not null && _workspace.Owner != this)
            throw new InvalidOperationException("a later DenseCrf2D took over this CRF's workspace; its buffers are no longer this CRF's");
    }

    public int Width { get; }
    public int Height { get; }
    public int Labels => _labels;

    /// <summary>Unary energies U, label-major [labels, H·W] (pydensecrf's setUnaryEnergy layout).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void SetUnaryEnergy(ReadOnlySpan<float> unary)
    {
        if (unary.Length != (long)_n * _labels) throw new ArgumentException($"unary has {unary.Length} values, expected {_labels}×{_n}", nameof(unary));
        CheckOwner();
        for (int l = 0; l < _labels; l++)
            for (int p = 0; p < _n; p++)
            {
                float u = unary[l * _n + p];
                if (float.IsNaN(u)) throw new ArgumentException($"unary energy of label {l} at pixel {p} is NaN", nameof(unary));
                _negUnary[p * _labels + l] = -u;
            }
        _hasUnary = true;
    }

    /// <summary>Smoothness kernel exp(−|p_i − p_j|²/(2·sxy²)) with Potts weight <paramref name="compat"/>.</summary>
    public void AddPairwiseGaussian(float sxy, float compat) => AddPairwiseGaussian(sxy, sxy, compat);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void AddPairwiseGaussian(float sx, float sy, float compat)
    {
        if (!(sx > 0) || !(sy > 0)) throw new ArgumentOutOfRangeException(nameof(sx), $"standard deviations ({sx}, {sy}) must be positive");
        CheckOwner();
        var f = Buffer("features", _terms.Count, _n * 2);
        for (int y = 0; y < Height; y++)
            for (int x = 0; x < Width; x++)
            {
                int p = y * Width + x;
                f[2 * p] = x / sx;
                f[2 * p + 1] = y / sy;
            }
        AddTerm(f, 2, compat);
    }

    /// <summary>
    /// Appearance kernel exp(−|p_i − p_j|²/(2·sxy²) − |I_i − I_j|²/(2·srgb²)) on an RGB8 image [H, W, 3] (values
    /// 0..255) with Potts weight <paramref name="compat"/>.
    /// </summary>
    public void AddPairwiseBilateral(float sxy, float srgb, ReadOnlySpan<byte> rgb, float compat) =>
        AddPairwiseBilateral(sxy, sxy, srgb, srgb, srgb, rgb, compat);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void AddPairwiseBilateral(float sx, float sy, float sr, float sg, float sb, ReadOnlySpan<byte> rgb, float compat)
    {
        if (!(sx > 0) || !(sy > 0) || !(sr > 0) || !(sg > 0) || !(sb > 0))
            throw new ArgumentOutOfRangeException(nameof(sx), "bilateral standard deviations must be positive");
        if (rgb.Length != (long)_n * 3) throw new ArgumentException($"image has {rgb.Length} bytes, a {Height}×{Width} RGB image needs {(long)_n * 3}", nameof(rgb));
        CheckOwner();
        var f = Buffer("features", _terms.Count, _n * 5);
        for (int y = 0; y < Height; y++)
            for (int x = 0; x < Width; x++)
            {
                int p = y * Width + x;
                f[5 * p] = x / sx;
                f[5 * p + 1] = y / sy;
                f[5 * p + 2] = rgb[3 * p] / sr;
                f[5 * p + 3] = rgb[3 * p + 1] / sg;
                f[5 * p + 4] = rgb[3 * p + 2] / sb;
            }
        AddTerm(f, 5, compat);
    }

    /// <summary>A Potts term with an arbitrary pre-scaled feature space [H·W, d].</summary>
    public void AddPairwiseKernel(ReadOnlySpan<float> features, int dims, float compat)
    {
        if (features.Length != (long)_n * dims) throw new ArgumentException($"features have {features.Length} values, expected {_n}×{dims}", nameof(features));
        CheckOwner();
        var f = Buffer("features", _terms.Count, checked(_n * dims));
        features.CopyTo(f);
        AddTerm(f, dims, compat);
    }

    /// <summary>Adds the term of the first N·dims values of <paramref name="features"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void AddTerm(float[] features, int dims, float compat)
    {
        int term = _terms.Count;
        IFeatureFilter filter = _exact
            ? new BruteForceGaussianFilter(features.AsSpan(0, _n * dims), _n, dims)
            : PermutohedralLattice.Build(features, _n, dims, _cpu, _workspace, term);   // internal overload: no copy
        var ones = Buffer("ones", 0, _n);
        Array.Fill(ones, 1f, 0, _n);
        var norm = Buffer("norm", term, _n);
        if (filter is PermutohedralLattice lattice) lattice.Filter(ones, norm, 1);
        else filter.Filter(ones.AsSpan(0, _n), norm.AsSpan(0, _n), 1);
        // The reference: norm = 1.0 / sqrt(norm + 1e-20) in double, stored as float.
        for (int p = 0; p < _n; p++) norm[p] = (float)(1.0 / Math.Sqrt(norm[p] + 1e-20));
        _terms.Add(new Term(filter, norm, compat));
    }

    /// <summary>Runs mean field and returns Q, label-major [labels, H·W] (as pydensecrf's inference).</summary>
    public float[] Inference(int iterations)
    {
        var q = new float[(long)_n * _labels];
        Inference(iterations, q);
        return q;
    }

    /// <summary>Mean field into <paramref name="q"/> (label-major [labels, H·W]).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Inference(int iterations, Span<float> q)
    {
        if (iterations < 0) throw new ArgumentOutOfRangeException(nameof(iterations), iterations, "iterations must be non-negative");
        if (q.Length != (long)_n * _labels) throw new ArgumentException($"q has {q.Length} values, expected {_labels}×{_n}", nameof(q));
        if (!_hasUnary) throw new InvalidOperationException("SetUnaryEnergy must be called before Inference");
        CheckOwner();
        int L = _labels, size = _n * L;
        if (_q.Length < size)
        {
            // Every element of the first N·L is written before it is read (softmax, prepare, filter, accumulate).
            _q = Buffer("q", 0, size);
            _energy = Buffer("energy", 0, size);
            _in = Buffer("in", 0, size);
            _out = Buffer("out", 0, size);
        }
        _stageTerm = -1;
        CpuParallel.For(_cpu, _n, PixelGrain, new PixelKernel(this, PixelPass.Accumulate));   // Q = softmax(−U)
        for (int it = 0; it < iterations; it++)
        {
            for (int t = 0; t < _terms.Count; t++)
            {
                _stageTerm = t;
                CpuParallel.For(_cpu, _n, PixelGrain, new PixelKernel(this, PixelPass.Prepare));
                if (_terms[t].Filter is PermutohedralLattice lattice) lattice.Filter(_in, _out, L);
                else _terms[t].Filter.Filter(_in.AsSpan(0, size), _out.AsSpan(0, size), L);
                CpuParallel.For(_cpu, _n, PixelGrain, new PixelKernel(this, PixelPass.Accumulate));
            }
        }
        var current = _q;
        for (int p = 0; p < _n; p++)
            for (int l = 0; l < L; l++) q[l * _n + p] = current[p * L + l];
    }

    private enum PixelPass { Prepare, Accumulate }

    private readonly struct PixelKernel(DenseCrf2D crf, PixelPass pass) : IRangeKernel
    {
        public void Execute(int start, int count)
        {
            if (pass == PixelPass.Prepare) crf.PrepareRange(start, start + count);
            else crf.AccumulateRange(start, start + count);
        }
    }

    /// <summary>Filter input of the current term: Q·n (the reference's in·diag(norm)).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void PrepareRange(int p0, int p1)
    {
        int L = _labels;
        var norm = _terms[_stageTerm].Norm;
        var current = _q;
        var inp = _in;
        for (int p = p0; p < p1; p++)
        {
            float np = norm[p];
            for (int l = p * L; l < p * L + L; l++) inp[l] = current[l] * np;
        }
    }

    /// <summary>
    /// Subtracts the current term's message (−w)·(n ∘ K(n ∘ Q)) from the energy, which the first term starts from
    /// −U (term −1: no message); after the last term, Q = expAndNormalize(energy).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void AccumulateRange(int p0, int p1)
    {
        int L = _labels, term = _stageTerm;
        var energy = _energy;
        if (term >= 0)
        {
            var t = _terms[term];
            var norm = t.Norm;
            var outp = _out;
            var source = term == 0 ? _negUnary : energy;
            float negW = -t.Weight;
            for (int p = p0; p < p1; p++)
            {
                float np = norm[p];
                for (int e = p * L; e < p * L + L; e++) energy[e] = source[e] - negW * (outp[e] * np);
            }
        }
        if (term < 0) SoftmaxRows(_negUnary, _q, L, p0, p1);
        else if (term == _terms.Count - 1) SoftmaxRows(energy, _q, L, p0, p1);
    }

    /// <summary>pydensecrf's expAndNormalize per pixel: b = exp(e − max e), Q = b / Σb (labels summed in order).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SoftmaxRows(float[] logits, float[] probs, int labels, int p0, int p1)
    {
        for (int p = p0; p < p1; p++)
        {
            int e = p * labels;
            float mx = logits[e];
            for (int l = 1; l < labels; l++) mx = Math.Max(mx, logits[e + l]);
            float s = 0;
            for (int l = 0; l < labels; l++) { float v = MathF.Exp(logits[e + l] - mx); probs[e + l] = v; s += v; }
            for (int l = 0; l < labels; l++) probs[e + l] /= s;
        }
    }

    /// <summary>Per-pixel argmax of Q (label-major [labels, N]); ties go to the lower label (numpy argmax).</summary>
    public static byte[] Map(ReadOnlySpan<float> q, int labels)
    {
        if (labels < 1 || labels > 256 || q.Length % labels != 0) throw new ArgumentException($"Q of {q.Length} values does not split into {labels} labels");
        var map = new byte[q.Length / labels];
        Map(q, labels, map);
        return map;
    }

    /// <summary><see cref="Map(ReadOnlySpan{float}, int)"/> into <paramref name="map"/> (N bytes).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Map(ReadOnlySpan<float> q, int labels, Span<byte> map)
    {
        if (labels < 1 || labels > 256 || q.Length % labels != 0) throw new ArgumentException($"Q of {q.Length} values does not split into {labels} labels");
        int n = q.Length / labels;
        if (map.Length != n) throw new ArgumentException($"map has {map.Length} bytes, Q has {n} pixels", nameof(map));
        for (int p = 0; p < n; p++)
        {
            int best = 0;
            for (int l = 1; l < labels; l++) if (q[l * n + p] > q[best * n + p]) best = l;
            map[p] = (byte)best;
        }
    }

    /// <summary>
    /// pydensecrf utils.unary_from_softmax: optional sm = scale·sm + (1 − scale)/C, then −log(clip(sm, clip, 1)),
    /// label-major [C, N].
    /// </summary>
    public static float[] UnaryFromSoftmax(ReadOnlySpan<float> probabilities, int labels, float? scale = null, float clip = 1e-5f)
    {
        if (labels < 1 || probabilities.Length % labels != 0) throw new ArgumentException($"probabilities of {probabilities.Length} values do not split into {labels} labels");
        var u = new float[probabilities.Length];
        for (int i = 0; i < u.Length; i++)
        {
            float p = probabilities[i];
            if (scale is float s) p = s * p + (1 - s) / labels;
            u[i] = -MathF.Log(Math.Clamp(p, clip, 1f));
        }
        return u;
    }

    /// <summary>
    /// pydensecrf utils.unary_from_labels: −log(gtProb) for the given label, −log((1 − gtProb)/(C − 1)) for the
    /// others; label 0 pixels get the uniform −log(1/C) when <paramref name="zeroUnsure"/> (labels are then 1..C).
    /// </summary>
    public static float[] UnaryFromLabels(ReadOnlySpan<int> labelMap, int labels, float gtProb, bool zeroUnsure = true)
    {
        if (!(gtProb > 0 && gtProb < 1)) throw new ArgumentOutOfRangeException(nameof(gtProb), gtProb, "gtProb must be in (0, 1)");
        int n = labelMap.Length;
        var u = new float[(long)n * labels];
        float sure = -MathF.Log(gtProb), other = -MathF.Log((1 - gtProb) / (labels - 1)), uniform = -MathF.Log(1f / labels);
        for (int p = 0; p < n; p++)
        {
            int lab = labelMap[p];
            if (zeroUnsure)
            {
                if (lab == 0) { for (int l = 0; l < labels; l++) u[l * n + p] = uniform; continue; }
                lab -= 1;
            }
            if ((uint)lab >= (uint)labels) throw new ArgumentException($"label {labelMap[p]} at pixel {p} is outside 0..{labels - (zeroUnsure ? 0 : 1)}", nameof(labelMap));
            for (int l = 0; l < labels; l++) u[l * n + p] = l == lab ? sure : other;
        }
        return u;
    }
}
