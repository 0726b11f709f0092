namespace CrateIL.Segmentation.Crf;

/// <summary>
/// Fully connected CRF on an image grid (Krähenbühl &amp; Koltun 2011) with the semantics of pydensecrf's
/// DenseCRF2D (crate-reference §6): Potts compatibility, Gaussian (position) and bilateral (position + RGB)
/// kernels, NORMALIZE_SYMMETRIC kernel normalisation K̃ = diag(n)·K·diag(n) with n_i = 1/√(Σ_j k(f_i,f_j) + 1e−20),
/// and mean-field inference Q ← softmax(−U + Σ_m w_m·K̃_m·Q) (the filtered sum includes j = i, as the reference).
/// Pixel (x = column, y = row) has index y·W + x. Kernel filtering uses <see cref="PermutohedralLattice"/>, or the
/// exact O(N²) <see cref="BruteForceGaussianFilter"/> when constructed with <c>exact: true</c> (tests, tiny images).
/// Since Q sums to one per pixel and K̃ is linear, only L−1 label channels are filtered per iteration; the last is
/// K̃·1 − Σ of the others with K̃·1 precomputed (exact algebra; saves half the filtering for 2 labels).
/// </summary>
public sealed class DenseCrf2D
{
    private readonly int _n, _labels, _threads;
    private readonly bool _exact;
    private readonly List<Term> _terms = new();
    private readonly float[] _negUnary;   // point-major [N, L]: −U
    private bool _hasUnary;
    private float[] _in = Array.Empty<float>(), _out = Array.Empty<float>();

    private sealed record Term(IFeatureFilter Filter, float[] Norm, float[] FilteredOnes, float Weight);

    public DenseCrf2D(int width, int height, int labels, int threads = 2, bool exact = false)
    {
        if (width < 1 || height < 1) throw new ArgumentOutOfRangeException(nameof(width), $"image size {width}×{height} must be positive");
        if (labels < 2) throw new ArgumentOutOfRangeException(nameof(labels), labels, "a CRF needs at least 2 labels");
        Width = width; Height = height;
        _n = checked(width * height);
        _labels = labels;
        _threads = Math.Max(1, threads);
        _exact = exact;
        _negUnary = new float[(long)_n * labels];
        _prepareBody = PrepareChunk;
        _accumulateBody = AccumulateChunk;
    }

    public int Width { get; }
    public int Height { get; }
    public int Labels => _labels;

    /// <summary>Unary energies U, label-major [labels, H·W] (pydensecrf's setUnaryEnergy layout).</summary>
    public void SetUnaryEnergy(ReadOnlySpan<float> unary)
    {
        if (unary.Length != (long)_n * _labels) throw new ArgumentException($"unary has {unary.Length} values, expected {_labels}×{_n}", nameof(unary));
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

    public void AddPairwiseGaussian(float sx, float sy, float compat)
    {
        if (!(sx > 0) || !(sy > 0)) throw new ArgumentOutOfRangeException(nameof(sx), $"standard deviations ({sx}, {sy}) must be positive");
        var f = new float[_n * 2];
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

    public void AddPairwiseBilateral(float sx, float sy, float sr, float sg, float sb, ReadOnlySpan<byte> rgb, float compat)
    {
        if (!(sx > 0) || !(sy > 0) || !(sr > 0) || !(sg > 0) || !(sb > 0))
            throw new ArgumentOutOfRangeException(nameof(sx), "bilateral standard deviations must be positive");
        if (rgb.Length != (long)_n * 3) throw new ArgumentException($"image has {rgb.Length} bytes, a {Height}×{Width} RGB image needs {(long)_n * 3}", nameof(rgb));
        var f = new float[_n * 5];
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
        AddTerm(features.ToArray(), dims, compat);
    }

    private void AddTerm(float[] features, int dims, float compat)
    {
        IFeatureFilter filter = _exact
            ? new BruteForceGaussianFilter(features, _n, dims)
            : PermutohedralLattice.Build(features, _n, dims, _threads);   // internal overload: no copy
        var ones = new float[_n];
        Array.Fill(ones, 1f);
        var norm = new float[_n];
        filter.Filter(ones, norm, 1);
        for (int p = 0; p < _n; p++) norm[p] = (float)(1.0 / Math.Sqrt(norm[p] + 1e-20));
        // K̃·1 = n ∘ K(n ∘ 1)
        var filteredOnes = new float[_n];
        filter.Filter(norm, filteredOnes, 1);
        for (int p = 0; p < _n; p++) filteredOnes[p] *= norm[p];
        _terms.Add(new Term(filter, norm, filteredOnes, compat));
    }

    /// <summary>Runs mean field and returns Q, label-major [labels, H·W] (as pydensecrf's inference).</summary>
    public float[] Inference(int iterations)
    {
        var q = new float[(long)_n * _labels];
        Inference(iterations, q);
        return q;
    }

    /// <summary>Mean field into <paramref name="q"/> (label-major [labels, H·W]).</summary>
    public void Inference(int iterations, Span<float> q)
    {
        if (iterations < 0) throw new ArgumentOutOfRangeException(nameof(iterations), iterations, "iterations must be non-negative");
        if (q.Length != (long)_n * _labels) throw new ArgumentException($"q has {q.Length} values, expected {_labels}×{_n}", nameof(q));
        if (!_hasUnary) throw new InvalidOperationException("SetUnaryEnergy must be called before Inference");
        int L = _labels, V = L - 1;
        var current = new float[(long)_n * L];  // point-major Q
        var energy = new float[(long)_n * L];
        if (_in.Length < _n * V) { _in = new float[_n * V]; _out = new float[_n * V]; }
        _current = current;
        _energy = energy;
        _chunks = _threads == 1 ? 1 : _threads * 4;
        _stageTerm = -1;
        RunChunks(_accumulateBody);   // Q = softmax(−U)
        for (int it = 0; it < iterations; it++)
        {
            for (int t = 0; t < _terms.Count; t++)
            {
                _stageTerm = t;
                RunChunks(_prepareBody);
                _terms[t].Filter.Filter(_in.AsSpan(0, _n * V), _out.AsSpan(0, _n * V), V);
                RunChunks(_accumulateBody);
            }
        }
        _current = _energy = Array.Empty<float>();
        for (int p = 0; p < _n; p++)
            for (int l = 0; l < L; l++) q[l * _n + p] = current[p * L + l];
    }

    // Mean-field state for the parallel per-point passes (delegates made once; no closure per pass).
    private float[] _current = Array.Empty<float>(), _energy = Array.Empty<float>();
    private int _chunks, _stageTerm;
    private readonly Action<int> _prepareBody, _accumulateBody;

    private void RunChunks(Action<int> body)
    {
        if (_chunks == 1) body(0);
        else Parallel.For(0, _chunks, new ParallelOptions { MaxDegreeOfParallelism = _threads }, body);
    }

    private (int Start, int End) ChunkRange(int c) => ((int)((long)_n * c / _chunks), (int)((long)_n * (c + 1) / _chunks));

    /// <summary>Filter input of the current term: n ∘ Q for the first L−1 labels.</summary>
    private void PrepareChunk(int c)
    {
        var (p0, p1) = ChunkRange(c);
        int L = _labels, V = L - 1;
        var norm = _terms[_stageTerm].Norm;
        var current = _current;
        var inp = _in;
        for (int p = p0; p < p1; p++)
        {
            float np = norm[p];
            for (int l = 0; l < V; l++) inp[p * V + l] = current[p * L + l] * np;
        }
    }

    /// <summary>
    /// Adds the current term's message to the energy (the first term starts from −U; term −1 means "no message");
    /// after the last term, Q = softmax(energy).
    /// </summary>
    private void AccumulateChunk(int c)
    {
        var (p0, p1) = ChunkRange(c);
        int L = _labels, V = L - 1, term = _stageTerm;
        var energy = _energy;
        if (term <= 0) Array.Copy(_negUnary, (long)p0 * L, energy, (long)p0 * L, (long)(p1 - p0) * L);
        if (term >= 0)
        {
            var t = _terms[term];
            var norm = t.Norm;
            var ones = t.FilteredOnes;
            var outp = _out;
            float w = t.Weight;
            for (int p = p0; p < p1; p++)
            {
                float np = norm[p], rest = ones[p];
                int e = p * L;
                for (int l = 0; l < V; l++)
                {
                    float k = outp[p * V + l] * np;
                    energy[e + l] += w * k;   // Potts: −compat(K̃Q) = +w·K̃Q
                    rest -= k;
                }
                energy[e + V] += w * rest;
            }
        }
        if (term == _terms.Count - 1 || term < 0) SoftmaxRows(energy, _current, L, p0, p1);
    }

    private static void SoftmaxRows(float[] logits, float[] probs, int labels, int p0, int p1)
    {
        for (int p = p0; p < p1; p++)
        {
            int e = p * labels;
            float mx = float.NegativeInfinity;
            for (int l = 0; l < labels; l++) mx = Math.Max(mx, logits[e + l]);
            float s = 0;
            for (int l = 0; l < labels; l++) { float v = MathF.Exp(logits[e + l] - mx); probs[e + l] = v; s += v; }
            float inv = 1f / s;
            for (int l = 0; l < labels; l++) probs[e + l] *= inv;
        }
    }

    /// <summary>Per-pixel argmax of Q (label-major [labels, N]); ties go to the lower label (numpy argmax).</summary>
    public static byte[] Map(ReadOnlySpan<float> q, int labels)
    {
        if (labels < 1 || labels > 256 || q.Length % labels != 0) throw new ArgumentException($"Q of {q.Length} values does not split into {labels} labels");
        int n = q.Length / labels;
        var map = new byte[n];
        for (int p = 0; p < n; p++)
        {
            int best = 0;
            for (int l = 1; l < labels; l++) if (q[l * n + p] > q[best * n + p]) best = l;
            map[p] = (byte)best;
        }
        return map;
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
