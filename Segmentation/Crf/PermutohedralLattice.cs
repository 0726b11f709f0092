namespace CrateIL.Segmentation.Crf;

/// <summary>A linear filter over per-point values: out_i ≈ Σ_j k(f_i, f_j)·in_j, values point-major [N, V].</summary>
public interface IFeatureFilter
{
    int Points { get; }

    void Filter(ReadOnlySpan<float> input, Span<float> output, int valueSize);
}

/// <summary>
/// Permutohedral-lattice Gaussian filtering (Adams, Baek &amp; Davis 2010), following the semantics of the
/// densecrf/pydensecrf lattice (crate-reference §6.3): features are elevated onto the plane Σy = 0 of ℝ^(d+1)
/// with per-axis scale √(2/3)(d+1)/√((i+1)(i+2)), each point splats onto the d+1 vertices of its enclosing
/// simplex with barycentric weights, the lattice is blurred with [½ 1 ½] along each of the d+1 lattice axes,
/// and values are sliced back with the same weights times α = 1/(1 + 2^(−d)). The result approximates
/// Σ_j exp(−½‖f_i − f_j‖²)·in_j up to a constant factor (it cancels under symmetric normalisation).
/// Written for CrateIL. Differences from the C++ reference, all deliberate:
/// splatting is done as a gather over a precomputed vertex→(point, weight) list instead of a scatter (parallel
/// without atomics, deterministic for any thread count); lattice keys are packed into two 64-bit words
/// (d ≤ 8, coordinates in the 16-bit range, as the reference's short keys); rounding ties go down as the
/// reference's non-SSE path. All buffers are allocated once; <see cref="Filter"/> allocates nothing.
/// </summary>
public sealed class PermutohedralLattice : IFeatureFilter
{
    private readonly int _n, _d, _threads;
    private readonly int[] _offsets;     // N·(d+1): vertex slot (+1; slot 0 is the all-zero "missing" vertex)
    private readonly float[] _weights;   // N·(d+1): barycentric weights
    private readonly int[] _splatStart;  // M+1: CSR rows of the transposed splat matrix
    private readonly int[] _splatPoint;
    private readonly float[] _splatWeight;
    private readonly int[] _blur;        // (d+1)·M·2: neighbour slots (n1, n2) per axis, 0 = missing
    private readonly float _alpha;
    private float[] _values = Array.Empty<float>();
    private float[] _scratch = Array.Empty<float>();

    // Per-call state for the parallel bodies (delegates are made once; no closure per call).
    private float[] _inArray = Array.Empty<float>();
    private float[] _outArray = Array.Empty<float>();
    private int _valueSize, _axis, _chunks;
    private readonly Action<int> _splatBody, _blurBody, _sliceBody;

    /// <summary>Number of lattice vertices.</summary>
    public int Vertices { get; }

    public int Points => _n;

    public int Dimensions => _d;

    private PermutohedralLattice(int n, int d, int threads, int[] offsets, float[] weights, int vertices, int[] blur)
    {
        _n = n; _d = d; _threads = Math.Max(1, threads);
        _offsets = offsets; _weights = weights; Vertices = vertices; _blur = blur;
        _alpha = 1f / (1f + MathF.Pow(2f, -d));
        // Transposed splat matrix: for each vertex the points (ascending) and weights that land on it. A counting sort
        // over one contiguous point range per thread: counts per (range, vertex), offsets in (vertex, range) order,
        // then each range fills its own positions, so the layout equals a serial pass.
        int d1 = d + 1;
        int parts = Math.Max(1, Math.Min(_threads, n / 1024 + 1));
        var counts = new int[(long)parts * vertices];
        var options = new ParallelOptions { MaxDegreeOfParallelism = _threads };
        Parallel.For(0, parts, options, part =>
        {
            int e0 = (int)((long)n * part / parts) * d1, e1 = (int)((long)n * (part + 1) / parts) * d1;
            var own = counts.AsSpan(part * vertices, vertices);
            for (int e = e0; e < e1; e++) own[offsets[e] - 1]++;
        });
        _splatStart = new int[vertices + 1];
        int running = 0;
        for (int v = 0; v < vertices; v++)
        {
            _splatStart[v] = running;
            for (int part = 0; part < parts; part++)
            {
                int c = counts[part * vertices + v];
                counts[part * vertices + v] = running;
                running += c;
            }
        }
        _splatStart[vertices] = running;
        _splatPoint = new int[offsets.Length];
        _splatWeight = new float[offsets.Length];
        var splatPoint = _splatPoint;
        var splatWeight = _splatWeight;
        Parallel.For(0, parts, options, part =>
        {
            int p0 = (int)((long)n * part / parts), p1 = (int)((long)n * (part + 1) / parts);
            var fill = counts.AsSpan(part * vertices, vertices);
            for (int p = p0; p < p1; p++)
                for (int e = p * d1; e < p * d1 + d1; e++)
                {
                    int at = fill[offsets[e] - 1]++;
                    splatPoint[at] = p;
                    splatWeight[at] = weights[e];
                }
        });
        _splatBody = SplatChunk;
        _blurBody = BlurChunk;
        _sliceBody = SliceChunk;
    }

    /// <summary>
    /// Builds the lattice for <paramref name="n"/> points with <paramref name="d"/>-dimensional features
    /// (point-major [n, d], already divided by the kernel standard deviations).
    /// </summary>
    public static PermutohedralLattice Build(ReadOnlySpan<float> features, int n, int d, int threads = 2)
    {
        if (features.Length != (long)n * d) throw new ArgumentException($"features have {features.Length} values, {n} points × {d} dims need {(long)n * d}", nameof(features));
        return Build(features.ToArray(), n, d, threads);
    }

    /// <summary>As <see cref="Build(ReadOnlySpan{float}, int, int, int)"/> without copying the features.</summary>
    internal static PermutohedralLattice Build(float[] features, int n, int d, int threads)
    {
        if (d < 1 || d > 8) throw new ArgumentOutOfRangeException(nameof(d), d, "feature dimension must be in 1..8");
        if (n < 1) throw new ArgumentOutOfRangeException(nameof(n), n, "need at least one point");
        if (features.Length != (long)n * d) throw new ArgumentException($"features have {features.Length} values, {n} points × {d} dims need {(long)n * d}", nameof(features));
        int d1 = d + 1;
        var weights = new float[n * d1];
        var offsets = new int[n * d1];
        var scale = new double[d + 1];
        for (int j = 1; j <= d; j++) scale[j] = Math.Sqrt(2.0 / 3.0) * d1 / Math.Sqrt((double)j * (j + 1));
        // One contiguous point range per thread, each with its own vertex table (no shared writes, no locks);
        // the tables are merged afterwards. Vertex numbering then depends on the thread count, the filter result
        // does not (every per-vertex and per-point sum runs in a fixed order independent of vertex ids).
        int parts = Math.Max(1, Math.Min(threads, n / 1024 + 1));
        var locals = new VertexTable[parts];
        var errors = new string?[parts];
        var options = new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, threads) };
        Parallel.For(0, parts, options, part =>
        {
            int start = (int)((long)n * part / parts), end = (int)((long)n * (part + 1) / parts);
            errors[part] = EmbedRange(features, d, scale, start, end, weights, offsets, out locals[part]);
        });
        foreach (var error in errors)
            if (error is not null) throw new ArgumentException(error, nameof(features));

        // Merge: part 0's local ids are the global ids; the other parts' vertices are found or added, and their
        // entries renumbered in parallel.
        var table = locals[0];
        var renumber = new int[parts][];
        for (int part = 1; part < parts; part++)
        {
            var local = locals[part];
            var map = renumber[part] = new int[local.Count + 1];
            for (int v = 0; v < local.Count; v++) map[v + 1] = table.FindOrAdd(local.Lo(v), local.Hi(v)) + 1;
        }
        if (parts > 1)
            Parallel.For(1, parts, options, part =>
            {
                int start = (int)((long)n * part / parts) * d1, end = (int)((long)n * (part + 1) / parts) * d1;
                var map = renumber[part];
                for (int e = start; e < end; e++) offsets[e] = map[offsets[e]];
            });
        int m = table.Count;
        int chunks = Math.Max(1, threads) * 4;

        // Blur neighbours along each lattice axis j: n1 = key − 1 (coordinate j: + d), n2 = key + 1 (coordinate j: − d);
        // for j = d every stored coordinate moves by ∓1. The shift is a bijection with n2(n1(v)) = v, so only n1 is
        // looked up and n2 of the vertex found is set to v (each slot is written by exactly one vertex: no race).
        var blur = new int[d1 * m * 2];
        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, threads) }, c =>
        {
            int start = (int)((long)m * c / chunks), end = (int)((long)m * (c + 1) / chunks);
            Span<int> key = stackalloc int[d];
            Span<int> nb = stackalloc int[d];
            for (int v = start; v < end; v++)
            {
                Unpack(table.Lo(v), table.Hi(v), key);
                for (int j = 0; j <= d; j++)
                {
                    for (int i = 0; i < d; i++) nb[i] = key[i] - 1;
                    if (j < d) nb[j] = key[j] + d;
                    var (lo1, hi1) = Pack(nb);
                    int u = table.Find(lo1, hi1);
                    blur[((long)j * m + v) * 2] = u + 1;
                    if (u >= 0) blur[((long)j * m + u) * 2 + 1] = v + 1;
                }
            }
        });
        return new PermutohedralLattice(n, d, threads, offsets, weights, m, blur);
    }

    /// <summary>
    /// Embeds points [start, end), computes their simplex vertex keys and barycentric weights, and numbers the vertices
    /// in a table of their own (offsets get local id + 1). Neighbouring points (consecutive pixels) usually share
    /// vertices, so the previous point's vertices are checked before the table. Returns an error message or null.
    /// </summary>
    private static string? EmbedRange(float[] features, int d, double[] scale, int start, int end, float[] weights, int[] offsets, out VertexTable table)
    {
        int d1 = d + 1;
        table = new VertexTable(Math.Max(16, (end - start) / 16), wideKeys: d > 6);
        Span<double> elevated = stackalloc double[d1];
        Span<int> rem0 = stackalloc int[d1];
        Span<int> rank = stackalloc int[d1];
        Span<double> bary = stackalloc double[d + 2];
        Span<int> key = stackalloc int[d];
        Span<ulong> prevLo = stackalloc ulong[d1], prevHi = stackalloc ulong[d1], curLo = stackalloc ulong[d1], curHi = stackalloc ulong[d1];
        Span<int> prevId = stackalloc int[d1], curId = stackalloc int[d1];
        bool havePrev = false;
        for (int p = start; p < end; p++)
        {
            if (!Embed(features.AsSpan(p * d, d), d, scale, elevated, rem0, rank, bary))
                return $"feature of point {p} is not finite";
            for (int r = 0; r <= d; r++)
            {
                for (int i = 0; i < d; i++)
                {
                    int k = rem0[i] + (rank[i] <= d - r ? r : r - d1);
                    if (k < short.MinValue || k > short.MaxValue)
                        return $"lattice coordinate {k} of point {p} exceeds the 16-bit key range (features too large: kernel standard deviation too small?)";
                    key[i] = k;
                }
                var (lo, hi) = Pack(key);
                int id = -1;
                if (havePrev)
                    for (int q = 0; q < d1; q++)
                        if (prevLo[q] == lo && prevHi[q] == hi) { id = prevId[q]; break; }
                if (id < 0) id = table.FindOrAdd(lo, hi);
                curLo[r] = lo; curHi[r] = hi; curId[r] = id;
                offsets[p * d1 + r] = id + 1;
                weights[p * d1 + r] = (float)bary[r];
            }
            curLo.CopyTo(prevLo); curHi.CopyTo(prevHi); curId.CopyTo(prevId);
            havePrev = true;
        }
        return null;
    }

    /// <summary>Elevation, nearest remainder-0 point, ranks and barycentric weights of one feature vector.</summary>
    private static bool Embed(ReadOnlySpan<float> f, int d, ReadOnlySpan<double> scale, Span<double> elevated, Span<int> rem0, Span<int> rank, Span<double> bary)
    {
        int d1 = d + 1;
        double sm = 0;
        for (int j = d; j > 0; j--)
        {
            double cf = f[j - 1] * scale[j];
            if (!double.IsFinite(cf)) return false;
            elevated[j] = sm - j * cf;
            sm += cf;
        }
        elevated[0] = sm;
        int sum = 0;
        for (int i = 0; i <= d; i++)
        {
            double v = elevated[i] / d1;
            int up = (int)Math.Ceiling(v) * d1, down = (int)Math.Floor(v) * d1;
            rem0[i] = up - elevated[i] < elevated[i] - down ? up : down;
            sum += rem0[i] / d1;
        }
        rank.Clear();
        for (int i = 0; i < d; i++)
        {
            double di = elevated[i] - rem0[i];
            for (int j = i + 1; j <= d; j++)
                if (di < elevated[j] - rem0[j]) rank[i]++;
                else rank[j]++;
        }
        for (int i = 0; i <= d; i++)
        {
            rank[i] += sum;
            if (rank[i] < 0) { rank[i] += d1; rem0[i] += d1; }
            else if (rank[i] > d) { rank[i] -= d1; rem0[i] -= d1; }
        }
        bary.Clear();
        for (int i = 0; i <= d; i++)
        {
            double v = (elevated[i] - rem0[i]) / d1;
            bary[d - rank[i]] += v;
            bary[d - rank[i] + 1] -= v;
        }
        bary[0] += 1.0 + bary[d + 1];
        return true;
    }

    private static (ulong Lo, ulong Hi) Pack(ReadOnlySpan<int> key)
    {
        ulong lo = 0, hi = 0;
        for (int i = 0; i < key.Length; i++)
        {
            ulong c = (ushort)(short)key[i];
            if (i < 4) lo |= c << (16 * i);
            else hi |= c << (16 * (i - 4));
        }
        return (lo, hi);
    }

    private static void Unpack(ulong lo, ulong hi, Span<int> key)
    {
        for (int i = 0; i < key.Length; i++)
            key[i] = (short)(ushort)(i < 4 ? lo >> (16 * i) : hi >> (16 * (i - 4)));
    }

    /// <summary>
    /// out = α·S·B·Sᵀ·in for point-major values [N, valueSize]; input and output may be the same array.
    /// </summary>
    public void Filter(ReadOnlySpan<float> input, Span<float> output, int valueSize)
    {
        if (valueSize < 1) throw new ArgumentOutOfRangeException(nameof(valueSize), valueSize, "value size must be positive");
        if (input.Length != (long)_n * valueSize || output.Length != (long)_n * valueSize)
            throw new ArgumentException($"filter input {input.Length} / output {output.Length} must have {_n}×{valueSize} values");
        int slots = (Vertices + 1) * valueSize;
        if (_values.Length < slots) { _values = new float[slots]; _scratch = new float[slots]; }
        if (_inArray.Length < input.Length) { _inArray = new float[input.Length]; _outArray = new float[input.Length]; }
        input.CopyTo(_inArray);
        _valueSize = valueSize;
        _chunks = _threads == 1 ? 1 : _threads * 4;
        Run(_splatBody);
        bool serialBlur = _chunks == 1 || (long)Vertices * valueSize < 1 << 18;
        for (int j = 0; j <= _d; j++)
        {
            _axis = j;
            // A blur pass over a small lattice is shorter than waking the workers (which, on a loaded machine, can
            // take milliseconds): run it on the calling thread.
            if (serialBlur) BlurRange(0, Vertices, true);
            else Run(_blurBody);
            (_values, _scratch) = (_scratch, _values);
        }
        Run(_sliceBody);
        _outArray.AsSpan(0, output.Length).CopyTo(output);
    }

    private void Run(Action<int> body)
    {
        if (_chunks == 1) body(0);
        else Parallel.For(0, _chunks, new ParallelOptions { MaxDegreeOfParallelism = _threads }, body);
    }

    private void SplatChunk(int c)
    {
        int m = Vertices, v0 = (int)((long)m * c / _chunks), v1 = (int)((long)m * (c + 1) / _chunks);
        int vs = _valueSize;
        var values = _values;
        var input = _inArray;
        if (c == 0) for (int k = 0; k < vs; k++) values[k] = 0;
        if (vs == 1)
        {
            for (int v = v0; v < v1; v++)
            {
                float s = 0;
                for (int e = _splatStart[v]; e < _splatStart[v + 1]; e++) s += _splatWeight[e] * input[_splatPoint[e]];
                values[v + 1] = s;
            }
            return;
        }
        for (int v = v0; v < v1; v++)
        {
            var dst = values.AsSpan((v + 1) * vs, vs);
            dst.Clear();
            for (int e = _splatStart[v]; e < _splatStart[v + 1]; e++)
            {
                float w = _splatWeight[e];
                var src = input.AsSpan(_splatPoint[e] * vs, vs);
                for (int k = 0; k < vs; k++) dst[k] += w * src[k];
            }
        }
    }

    private void BlurChunk(int c)
    {
        int m = Vertices;
        BlurRange((int)((long)m * c / _chunks), (int)((long)m * (c + 1) / _chunks), c == 0);
    }

    private void BlurRange(int v0, int v1, bool first)
    {
        int m = Vertices, vs = _valueSize;
        var oldV = _values;
        var newV = _scratch;
        var blur = _blur.AsSpan(_axis * m * 2, m * 2);
        if (first) for (int k = 0; k < vs; k++) newV[k] = 0;
        if (vs == 1)
        {
            for (int v = v0; v < v1; v++)
                newV[v + 1] = oldV[v + 1] + 0.5f * (oldV[blur[2 * v]] + oldV[blur[2 * v + 1]]);
            return;
        }
        for (int v = v0; v < v1; v++)
        {
            int o = (v + 1) * vs, n1 = blur[2 * v] * vs, n2 = blur[2 * v + 1] * vs;
            for (int k = 0; k < vs; k++) newV[o + k] = oldV[o + k] + 0.5f * (oldV[n1 + k] + oldV[n2 + k]);
        }
    }

    private void SliceChunk(int c)
    {
        int p0 = (int)((long)_n * c / _chunks), p1 = (int)((long)_n * (c + 1) / _chunks);
        int vs = _valueSize, d1 = _d + 1;
        var values = _values;
        var output = _outArray;
        float alpha = _alpha;
        if (vs == 1)
        {
            for (int p = p0; p < p1; p++)
            {
                float s = 0;
                int e0 = p * d1;
                for (int r = 0; r < d1; r++) s += _weights[e0 + r] * values[_offsets[e0 + r]];
                output[p] = s * alpha;
            }
            return;
        }
        for (int p = p0; p < p1; p++)
        {
            var dst = output.AsSpan(p * vs, vs);
            dst.Clear();
            int e0 = p * d1;
            for (int r = 0; r < d1; r++)
            {
                float w = _weights[e0 + r] * alpha;
                var src = values.AsSpan(_offsets[e0 + r] * vs, vs);
                for (int k = 0; k < vs; k++) dst[k] += w * src[k];
            }
        }
    }

    /// <summary>
    /// Open-addressing hash table from packed keys to vertex ids (linear probing, power-of-two capacity). Keys are
    /// stored in the slots, so a lookup touches one cache line; vertex keys are also kept by id for the blur pass.
    /// </summary>
    private sealed class VertexTable
    {
        // 16 bytes per slot (four per cache line): the low 64 key bits, the next 32, and the id. Keys of d ≤ 6
        // coordinates fit in 96 bits; for d = 7, 8 a slot match is confirmed against the full key kept by id.
        private struct Slot
        {
            public ulong Lo;
            public uint Hi;
            public int Id;   // −1 = empty
        }

        private Slot[] _slots;
        private ulong[] _lo, _hi;
        private int _mask;
        private readonly bool _wide;

        public VertexTable(int expected, bool wideKeys)
        {
            int cap = 1024;
            while (cap < expected * 2) cap <<= 1;
            _slots = NewSlots(cap);
            _mask = cap - 1;
            _lo = new ulong[Math.Max(16, expected)];
            _hi = new ulong[Math.Max(16, expected)];
            _wide = wideKeys;
        }

        private static Slot[] NewSlots(int cap)
        {
            var s = new Slot[cap];
            for (int i = 0; i < s.Length; i++) s[i].Id = -1;
            return s;
        }

        public int Count { get; private set; }

        public ulong Lo(int v) => _lo[v];
        public ulong Hi(int v) => _hi[v];

        private static int Hash(ulong lo, ulong hi)
        {
            ulong h = lo * 0x9E3779B97F4A7C15UL ^ (hi + 0x632BE59BD9B4E019UL) * 0xC2B2AE3D27D4EB4FUL;
            return (int)(h >> 32 ^ h);
        }

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        private bool Matches(in Slot s, ulong lo, ulong hi) => s.Lo == lo && s.Hi == (uint)hi && (!_wide || _hi[s.Id] == hi);

        public int Find(ulong lo, ulong hi)
        {
            int i = Hash(lo, hi) & _mask;
            while (true)
            {
                ref Slot s = ref _slots[i];
                if (s.Id < 0) return -1;
                if (Matches(s, lo, hi)) return s.Id;
                i = (i + 1) & _mask;
            }
        }

        public int FindOrAdd(ulong lo, ulong hi)
        {
            int i = Hash(lo, hi) & _mask;
            while (true)
            {
                ref Slot s = ref _slots[i];
                if (s.Id < 0) break;
                if (Matches(s, lo, hi)) return s.Id;
                i = (i + 1) & _mask;
            }
            if (Count == _lo.Length)
            {
                Array.Resize(ref _lo, Count * 2);
                Array.Resize(ref _hi, Count * 2);
            }
            int id = Count++;
            _lo[id] = lo; _hi[id] = hi;
            _slots[i] = new Slot { Lo = lo, Hi = (uint)hi, Id = id };
            if (Count * 2 > _slots.Length) Grow();
            return id;
        }

        private void Grow()
        {
            _slots = NewSlots(_slots.Length * 2);
            _mask = _slots.Length - 1;
            for (int v = 0; v < Count; v++)
            {
                int i = Hash(_lo[v], _hi[v]) & _mask;
                while (_slots[i].Id >= 0) i = (i + 1) & _mask;
                _slots[i] = new Slot { Lo = _lo[v], Hi = (uint)_hi[v], Id = v };
            }
        }
    }
}

/// <summary>Exact O(N²) Gaussian filter out_i = Σ_j exp(−½‖f_i − f_j‖²)·in_j (float64 sums); the lattice's oracle.</summary>
public sealed class BruteForceGaussianFilter : IFeatureFilter
{
    private readonly float[] _features;
    private readonly int _d;

    public BruteForceGaussianFilter(ReadOnlySpan<float> features, int n, int d)
    {
        if (features.Length != (long)n * d) throw new ArgumentException($"features have {features.Length} values, {n} points × {d} dims need {(long)n * d}", nameof(features));
        _features = features.ToArray();
        _d = d;
        Points = n;
    }

    public int Points { get; }

    public void Filter(ReadOnlySpan<float> input, Span<float> output, int valueSize)
    {
        int n = Points, d = _d;
        if (input.Length != (long)n * valueSize || output.Length != (long)n * valueSize)
            throw new ArgumentException($"filter input {input.Length} / output {output.Length} must have {n}×{valueSize} values");
        var result = new double[(long)n * valueSize];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double dist = 0;
                for (int k = 0; k < d; k++)
                {
                    double t = _features[i * d + k] - _features[j * d + k];
                    dist += t * t;
                }
                double w = Math.Exp(-0.5 * dist);
                for (int v = 0; v < valueSize; v++) result[(long)i * valueSize + v] += w * input[j * valueSize + v];
            }
        for (int i = 0; i < result.Length; i++) output[i] = (float)result[i];
    }
}
