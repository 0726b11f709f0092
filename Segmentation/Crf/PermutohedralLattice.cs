using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using CrateIL.Compute.Cpu;
using CrateIL.Compute.Devices;

namespace CrateIL.Segmentation.Crf;

/// <summary>A linear filter over per-point values: out_i ≈ Σ_j k(f_i, f_j)·in_j, values point-major [N, V].</summary>
public interface IFeatureFilter
{
    int Points { get; }

    void Filter(ReadOnlySpan<float> input, Span<float> output, int valueSize);
}

/// <summary>
/// Permutohedral-lattice Gaussian filtering (Adams, Baek &amp; Davis 2010) with the arithmetic of the densecrf /
/// pydensecrf lattice (crate-reference §6.3), so that a CRF built on it follows the reference to float32 rounding:
/// features are elevated onto the plane Σy = 0 of ℝ^(d+1) with per-axis scale √(2/3)(d+1)/√((i+1)(i+2)), each point
/// splats onto the d+1 vertices of its enclosing simplex with barycentric weights, the lattice is blurred with
/// [½ 1 ½] along each of the d+1 lattice axes, and values are sliced back with the same weights times
/// α = 1/(1 + 2^(−d)). The result approximates Σ_j exp(−½‖f_i − f_j‖²)·in_j up to a constant factor (it cancels
/// under symmetric normalisation).
/// <para>
/// Float32 fidelity (why the code looks the way it does): the embedding runs in float32 exactly as the reference's
/// SSE construction (products, rounding half-to-even, float comparisons for the ranks, barycentric sums in
/// coordinate order); filtering follows the reference's two code paths — value sizes ≤ 2 (the two-label CRF and
/// the normaliser) blur with a double-evaluated ½ and slice as (w·v)·α, larger value sizes blur in float and slice
/// as (w·α)·v. No fused multiply-adds anywhere (the reference has none). Splatting is a gather over a precomputed
/// vertex→(point, weight) list instead of a scatter (parallel without atomics, deterministic for any thread count);
/// it adds each vertex's terms in point order, as the reference's scatter does, so vertex numbering (which differs)
/// never changes a sum. Lattice keys are packed into two 64-bit words (d ≤ 8, coordinates in the 16-bit range, as
/// the reference's short keys; coordinate i is 16-bit lane i of the 128-bit pair).
/// </para>
/// The loop-heavy passes that run a few times per image (construction stages, splat, blur, slice; the CRF's pixel
/// passes likewise) are jitted fully optimised at once: under tiering a one-image CRF (<c>crate crf</c>) ran them as
/// tier-0/OSR code (≈ 10 % more CPU in its first 480² call, measured).
/// All parallel passes run on the <see cref="CpuDevice"/>'s thread team (struct kernels); buffers are allocated
/// once, so <see cref="Filter(ReadOnlySpan{float}, Span{float}, int)"/> allocates nothing after the first call with a given value size.
/// </summary>
public sealed class PermutohedralLattice : IFeatureFilter
{
    /// <summary>Points per thread below which a per-point pass is not split.</summary>
    private const int PointGrain = 8192;

    /// <summary>Vertex·value entries below which a blur pass runs on the calling thread (waking workers costs more).</summary>
    private const int BlurSerialEntries = 1 << 18;

    private readonly int _n, _d;
    private readonly CpuDevice _cpu;
    private readonly int[] _offsets;     // N·(d+1): vertex slot (+1; slot 0 is the all-zero "missing" vertex)
    private readonly float[] _weights;   // N·(d+1): barycentric weights
    private readonly int[] _splatStart;  // M+1: CSR rows of the transposed splat matrix
    private readonly int[] _splatPoint;
    private readonly float[] _splatWeight;
    private readonly int[] _blur;        // (d+1)·M·2: neighbour slots (n1, n2) per axis, 0 = missing
    private readonly float _alpha;
    private float[] _values = Array.Empty<float>();
    private float[] _scratch = Array.Empty<float>();

    // Per-call state of the filter passes (read by the struct kernels).
    private float[] _input = Array.Empty<float>();
    private float[] _output = Array.Empty<float>();
    private float[] _copyIn = Array.Empty<float>(), _copyOut = Array.Empty<float>();
    private int _valueSize, _axis;

    /// <summary>Number of lattice vertices.</summary>
    public int Vertices { get; }

    public int Points => _n;

    public int Dimensions => _d;

    private readonly Storage _storage;

    private PermutohedralLattice(int n, int d, CpuDevice cpu, Storage storage, int[] offsets, float[] weights, int vertices, int[] blur,
        int[] splatStart, int[] splatPoint, float[] splatWeight)
    {
        _n = n; _d = d; _cpu = cpu; _storage = storage;
        _offsets = offsets; _weights = weights; Vertices = vertices; _blur = blur;
        _splatStart = splatStart; _splatPoint = splatPoint; _splatWeight = splatWeight;
        // float alpha = 1.0f / (1 + powf(2, -d)) in the reference: every step in float.
        _alpha = 1f / (1f + MathF.Pow(2f, -d));
    }

    /// <summary>
    /// Builds the lattice for <paramref name="n"/> points with <paramref name="d"/>-dimensional features
    /// (point-major [n, d], already divided by the kernel standard deviations). Construction and filtering run on
    /// <paramref name="cpu"/>'s threads; null runs everything on the calling thread.
    /// </summary>
    public static PermutohedralLattice Build(ReadOnlySpan<float> features, int n, int d, CpuDevice? cpu = null)
    {
        if (features.Length != (long)n * d) throw new ArgumentException($"features have {features.Length} values, {n} points × {d} dims need {(long)n * d}", nameof(features));
        return Build(features.ToArray(), n, d, cpu);
    }

    /// <summary>
    /// As <see cref="Build(ReadOnlySpan{float}, int, int, CpuDevice?)"/> without copying the features (the first
    /// n·d values of <paramref name="features"/>). With a <paramref name="workspace"/>, every table of the lattice
    /// and of its construction lives in the workspace under <paramref name="term"/> (a later build with the same
    /// term overwrites this lattice: the caller, <see cref="DenseCrf2D"/>, guards that).
    /// </summary>
    internal static PermutohedralLattice Build(float[] features, int n, int d, CpuDevice? cpu, CrfWorkspace? workspace = null, int term = 0)
    {
        if (d < 1 || d > 8) throw new ArgumentOutOfRangeException(nameof(d), d, "feature dimension must be in 1..8");
        if (n < 1) throw new ArgumentOutOfRangeException(nameof(n), n, "need at least one point");
        if (features.Length < (long)n * d) throw new ArgumentException($"features have {features.Length} values, {n} points × {d} dims need {(long)n * d}", nameof(features));
        var builder = new Builder(features, n, d, SegmentationCpu.Resolve(cpu), new Storage(workspace, term));
        return builder.Run();
    }

    /// <summary>Where the lattice's arrays come from: fresh (zeroed) ones, or the workspace's (contents undefined).</summary>
    private readonly struct Storage(CrfWorkspace? workspace, int term)
    {
        public T[] Get<T>(string role, int part, int length) =>
            workspace is null ? new T[length] : workspace.Rent<T>(role, term, part, length);
    }

    /// <summary>
    /// Construction state shared by the parallel passes. Points are split into one contiguous range per thread,
    /// each with its own vertex table (no shared writes, no locks); the tables are merged afterwards. Vertex
    /// numbering then depends on the thread count, the filter result does not.
    /// </summary>
    private sealed class Builder
    {
        private readonly float[] _features;
        private readonly int _n, _d, _d1, _parts;
        private readonly CpuDevice _cpu;
        private readonly Storage _storage;
        private readonly float[] _scale;
        private readonly float _invD1;
        private readonly int[] _offsets;
        private readonly float[] _weights;
        private readonly VertexTable[] _locals;
        private readonly string?[] _errors;
        private int[][] _renumber = Array.Empty<int[]>();
        private VertexTable _table = null!;
        private int[] _blur = Array.Empty<int>();
        private int[] _counts = Array.Empty<int>();
        private int[] _splatPoint = Array.Empty<int>();
        private float[] _splatWeight = Array.Empty<float>();
        private int _vertices;

        public Builder(float[] features, int n, int d, CpuDevice cpu, Storage storage)
        {
            _features = features; _n = n; _d = d; _d1 = d + 1; _cpu = cpu; _storage = storage;
            // The reference: float inv_std_dev = sqrt(2.0/3.0)*(d+1); scale_i = float(1.0/sqrt((i+2)(i+1))·inv_std_dev).
            float invStdDev = (float)(Math.Sqrt(2.0 / 3.0) * _d1);
            _scale = new float[d];
            for (int i = 0; i < d; i++) _scale[i] = (float)(1.0 / Math.Sqrt((i + 2) * (i + 1)) * invStdDev);
            _invD1 = 1f / _d1;
            _offsets = storage.Get<int>("offsets", 0, n * _d1);     // every entry written by Embed
            _weights = storage.Get<float>("weights", 0, n * _d1);
            _parts = Math.Max(1, Math.Min(cpu.Threads, n / 1024 + 1));
            _locals = new VertexTable[_parts];
            _errors = new string?[_parts];
        }

        private (int Start, int End) PartRange(int part) => ((int)((long)_n * part / _parts), (int)((long)_n * (part + 1) / _parts));

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public PermutohedralLattice Run()
        {
            CpuParallel.For(_cpu, _parts, 1, new PartKernel(this, Stage.Embed));
            foreach (var error in _errors)
                if (error is not null) throw new ArgumentException(error, "features");
            // Merge: part 0's local ids are the global ids; the other parts' vertices are found or added, and their
            // entries renumbered in parallel.
            _table = _locals[0];
            _renumber = new int[_parts][];
            for (int part = 1; part < _parts; part++)
            {
                var local = _locals[part];
                var map = _renumber[part] = _storage.Get<int>("renumber", part, local.Count + 1);
                map[0] = 0;
                for (int v = 0; v < local.Count; v++) map[v + 1] = _table.FindOrAdd(local.Lo(v), local.Hi(v)) + 1;
            }
            if (_parts > 1) CpuParallel.For(_cpu, _parts, 1, new PartKernel(this, Stage.Renumber));
            _vertices = _table.Count;
            _blur = _storage.Get<int>("blur", 0, _d1 * _vertices * 2);
            Array.Clear(_blur, 0, _d1 * _vertices * 2);   // n2 slots without a vertex stay 0 (missing)
            CpuParallel.For(_cpu, _vertices, 2048, new PartKernel(this, Stage.Neighbours));
            // Transposed splat matrix: for each vertex the points (ascending) and weights that land on it. A counting
            // sort over the point ranges: counts per (range, vertex), offsets in (vertex, range) order, then each
            // range fills its own positions, so the layout equals a serial pass.
            _counts = _storage.Get<int>("counts", 0, _parts * _vertices);
            Array.Clear(_counts, 0, _parts * _vertices);
            CpuParallel.For(_cpu, _parts, 1, new PartKernel(this, Stage.Count));
            var splatStart = _storage.Get<int>("splatStart", 0, _vertices + 1);
            int running = 0;
            for (int v = 0; v < _vertices; v++)
            {
                splatStart[v] = running;
                for (int part = 0; part < _parts; part++)
                {
                    int c = _counts[part * _vertices + v];
                    _counts[part * _vertices + v] = running;
                    running += c;
                }
            }
            splatStart[_vertices] = running;
            _splatPoint = _storage.Get<int>("splatPoint", 0, _n * _d1);     // every entry written by Fill
            _splatWeight = _storage.Get<float>("splatWeight", 0, _n * _d1);
            CpuParallel.For(_cpu, _parts, 1, new PartKernel(this, Stage.Fill));
            return new PermutohedralLattice(_n, _d, _cpu, _storage, _offsets, _weights, _vertices, _blur, splatStart, _splatPoint, _splatWeight);
        }

        private enum Stage { Embed, Renumber, Neighbours, Count, Fill }

        private readonly struct PartKernel(Builder b, Stage stage) : IRangeKernel
        {
            public void Execute(int start, int count)
            {
                if (stage == Stage.Neighbours)
                {
                    b.Neighbours(start, start + count);
                    return;
                }
                for (int u = start; u < start + count; u++)
                    switch (stage)
                    {
                        case Stage.Embed: b.Embed(u); break;
                        case Stage.Renumber: if (u > 0) b.Renumber(u); break;
                        case Stage.Count: b.Count(u); break;
                        default: b.Fill(u); break;
                    }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Renumber(int part)
        {
            var (p0, p1) = PartRange(part);
            var map = _renumber[part];
            for (int e = p0 * _d1; e < p1 * _d1; e++) _offsets[e] = map[_offsets[e]];
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Count(int part)
        {
            var (p0, p1) = PartRange(part);
            var own = _counts.AsSpan(part * _vertices, _vertices);
            for (int e = p0 * _d1; e < p1 * _d1; e++) own[_offsets[e] - 1]++;
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Fill(int part)
        {
            var (p0, p1) = PartRange(part);
            var fill = _counts.AsSpan(part * _vertices, _vertices);
            for (int p = p0; p < p1; p++)
                for (int e = p * _d1; e < (p + 1) * _d1; e++)
                {
                    int at = fill[_offsets[e] - 1]++;
                    _splatPoint[at] = p;
                    _splatWeight[at] = _weights[e];
                }
        }

        /// <summary>
        /// Blur neighbours along each lattice axis j: n1 = key − 1 (coordinate j: + d), n2 = key + 1 (coordinate j:
        /// − d); for j = d every stored coordinate moves by ∓1. The shift is a bijection with n2(n1(v)) = v, so only
        /// n1 is looked up and n2 of the vertex found is set to v (each slot is written by exactly one vertex).
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Neighbours(int start, int end)
        {
            int d = _d, m = _vertices;
            // Keys as 16-bit lanes (the packed layout): n1 = key − 1 in lanes < d, plus d + 1 in lane j for j < d; the
            // lanes wrap as the 16-bit key coordinates do.
            Span<short> lanes = stackalloc short[8];
            lanes.Clear();
            lanes[..d].Fill(1);
            var ones = Vector128.Create<short>(lanes);
            Span<Vector128<short>> step = stackalloc Vector128<short>[d + 1];
            for (int j = 0; j < d; j++) step[j] = Vector128<short>.Zero.WithElement(j, (short)(d + 1));
            step[d] = Vector128<short>.Zero;
            for (int v = start; v < end; v++)
            {
                var below = Vector128.Create(_table.Lo(v), _table.Hi(v)).AsInt16() - ones;
                for (int j = 0; j <= d; j++)
                {
                    var nb = (below + step[j]).AsUInt64();
                    int u = _table.Find(nb.ToScalar(), nb.GetElement(1));
                    _blur[((long)j * m + v) * 2] = u + 1;
                    if (u >= 0) _blur[((long)j * m + u) * 2 + 1] = v + 1;
                }
            }
        }

        /// <summary>
        /// Embeds the points of one range, computes their simplex vertex keys and barycentric weights, and numbers the
        /// vertices in a table of their own (offsets get local id + 1). Neighbouring points (consecutive pixels) often
        /// share vertices, so the previous point's vertices are checked before the table.
        /// </summary>
        private void Embed(int part)
        {
            var (start, end) = PartRange(part);
            int d = _d, d1 = _d1;
            var table = _locals[part] = new VertexTable(Math.Max(16, (end - start) / 4), wideKeys: d > 6, _storage, part);
            const int W = EmbedLanes;
            Span<float> rem0 = stackalloc float[W * d1];
            Span<int> rank = stackalloc int[W * d1];
            Span<float> bary = stackalloc float[W * (d + 2)];
            Span<float> scratch = stackalloc float[EmbedScratch(d)];
            Span<short> remLanes = stackalloc short[8], rankLanes = stackalloc short[8];
            Span<short> maskLanes = stackalloc short[8];
            remLanes.Clear(); rankLanes.Clear(); maskLanes.Clear();
            maskLanes[..d].Fill(-1);
            var laneMask = Vector128.Create<short>(maskLanes);
            var vD1 = Vector128.Create((short)d1);
            Span<ulong> prevLo = stackalloc ulong[d1], prevHi = stackalloc ulong[d1], curLo = stackalloc ulong[d1], curHi = stackalloc ulong[d1];
            Span<int> prevId = stackalloc int[d1], curId = stackalloc int[d1];
            bool havePrev = false;
            for (int p0 = start; p0 < end; p0 += W)
            {
                int count = Math.Min(W, end - p0);
                if (!EmbedBlock(_features, p0, count, d, _scale, _invD1, scratch, rem0, rank, bary))
                    // A non-finite or huge coordinate somewhere in the block: redo it point by point to name the point.
                    for (int l = 0; l < count; l++)
                        if (!EmbedPoint(_features.AsSpan((p0 + l) * d, d), d, _scale, _invD1, scratch[..d1], rem0.Slice(l * d1, d1), rank.Slice(l * d1, d1), bary.Slice(l * (d + 2), d + 2)))
                        {
                            _errors[part] = $"feature of point {p0 + l} is not finite or too large for the lattice";
                            return;
                        }
                for (int l = 0; l < count; l++)
                {
                    int p = p0 + l;
                    var pr = rem0.Slice(l * d1, d1);
                    var pk = rank.Slice(l * d1, d1);
                    var pb = bary.Slice(l * (d + 2), d + 2);
                    // Coordinate i < d of vertex r is rem0_i + r, less d + 1 where rank_i > d − r: integers (the
                    // reference's float sums of small integers are exact), over all r in [rem0_i − rank_i,
                    // rem0_i + d − rank_i]. All d coordinates of a key are formed at once in 16-bit lanes, which are
                    // the packed key (lanes 0–3 the low word, 4–7 the high word, unused lanes 0).
                    bool inRange = true;
                    for (int i = 0; i < d; i++)
                    {
                        int rm = (int)pr[i], rk = pk[i];
                        inRange &= rm - rk >= short.MinValue && rm + d - rk <= short.MaxValue;
                        remLanes[i] = (short)rm;
                        rankLanes[i] = (short)rk;
                    }
                    if (!inRange)
                    {
                        _errors[part] = KeyRangeError(p, pr, pk, d);
                        return;
                    }
                    var remV = Vector128.Create<short>(remLanes);
                    var rankV = Vector128.Create<short>(rankLanes);
                    for (int r = 0; r <= d; r++)
                    {
                        var wrap = Vector128.GreaterThan(rankV, Vector128.Create((short)(d - r))) & vD1;
                        var keyV = (remV + ((Vector128.Create((short)r) - wrap) & laneMask)).AsUInt64();
                        ulong lo = keyV.ToScalar(), hi = keyV.GetElement(1);
                        int id = -1;
                        if (havePrev)
                            for (int q = 0; q < d1; q++)
                                if (prevLo[q] == lo && prevHi[q] == hi) { id = prevId[q]; break; }
                        if (id < 0) id = table.FindOrAdd(lo, hi);
                        curLo[r] = lo; curHi[r] = hi; curId[r] = id;
                        _offsets[p * d1 + r] = id + 1;
                        _weights[p * d1 + r] = pb[r];
                    }
                    curLo.CopyTo(prevLo); curHi.CopyTo(prevHi); curId.CopyTo(prevId);
                    havePrev = true;
                }
            }
        }
    }

    /// <summary>The message for the first key coordinate of a point outside the 16-bit range (vertex order, then axis).</summary>
    private static string KeyRangeError(int p, ReadOnlySpan<float> rem0, ReadOnlySpan<int> rank, int d)
    {
        for (int r = 0; r <= d; r++)
            for (int i = 0; i < d; i++)
            {
                float k = rem0[i] + (rank[i] <= d - r ? r : r - (d + 1));
                if (!(k >= short.MinValue && k <= short.MaxValue))
                    return $"lattice coordinate {k} of point {p} exceeds the 16-bit key range (features too large: kernel standard deviation too small?)";
            }
        throw new InvalidOperationException($"point {p}: key range check disagrees with the coordinates");
    }

    /// <summary>Points embedded together by <see cref="EmbedBlock"/> (one Vector256 of floats).</summary>
    private const int EmbedLanes = 8;

    private static int EmbedScratch(int d) => EmbedLanes * (4 * (d + 1) + 1);

    /// <summary>
    /// <see cref="EmbedPoint"/> for up to 8 points at once, lane by lane the same float32 operations (Vector256
    /// multiply, add, subtract, compare and round-half-to-even are exact per lane, and no FMA is used), so the
    /// result equals the scalar path bit for bit; this is how the reference's SSE construction works too (4 lanes).
    /// Lanes past <paramref name="count"/> embed a zero feature and are ignored. Outputs per lane l: rem0[l·(d+1)..],
    /// rank[l·(d+1)..], bary[l·(d+2)..]. Returns false when a lane is not finite or too large for the lattice.
    /// </summary>
    private static bool EmbedBlock(float[] features, int p0, int count, int d, ReadOnlySpan<float> scale, float invD1,
        Span<float> scratch, Span<float> rem0, Span<int> rank, Span<float> bary)
    {
        const int W = EmbedLanes;
        int d1 = d + 1;
        var elevated = scratch[..(W * d1)];
        var rem = scratch.Slice(W * d1, W * d1);
        var rk = scratch.Slice(2 * W * d1, W * d1);
        var bv = scratch.Slice(3 * W * d1, W * d1);
        var lane = scratch.Slice(4 * W * d1, W);
        var sm = Vector256<float>.Zero;
        for (int j = d; j > 0; j--)
        {
            for (int l = 0; l < W; l++) lane[l] = l < count ? features[(p0 + l) * d + j - 1] : 0f;
            var cf = Vector256.Create<float>(lane) * Vector256.Create(scale[j - 1]);
            (sm - Vector256.Create((float)j) * cf).CopyTo(elevated.Slice(j * W, W));
            sm += cf;
        }
        sm.CopyTo(elevated[..W]);
        var limit = Vector256.Create((float)(1 << 20));
        var vInv = Vector256.Create(invD1);
        var vD1 = Vector256.Create((float)d1);
        var one = Vector256<float>.One;
        var sum = Vector256<float>.Zero;
        var bad = Vector256<float>.Zero;
        for (int i = 0; i <= d; i++)
        {
            var v = Vector256.Round(vInv * Vector256.Create<float>(elevated.Slice(i * W, W)));
            // NaN and ±∞ fail the comparison (NaN compares false), as do coordinates beyond the key range.
            bad |= ~Vector256.LessThanOrEqual(Vector256.Abs(v), limit);
            (v * vD1).CopyTo(rem.Slice(i * W, W));
            sum += v;
        }
        if (!Vector256.EqualsAll(bad, Vector256<float>.Zero)) return false;
        for (int i = 0; i <= d; i++) Vector256<float>.Zero.CopyTo(rk.Slice(i * W, W));
        for (int i = 0; i < d; i++)
        {
            var di = Vector256.Create<float>(elevated.Slice(i * W, W)) - Vector256.Create<float>(rem.Slice(i * W, W));
            var ri = Vector256.Create<float>(rk.Slice(i * W, W));
            for (int j = i + 1; j <= d; j++)
            {
                var dj = Vector256.Create<float>(elevated.Slice(j * W, W)) - Vector256.Create<float>(rem.Slice(j * W, W));
                var c = Vector256.LessThan(di, dj) & one;
                ri += c;
                (Vector256.Create<float>(rk.Slice(j * W, W)) + (one - c)).CopyTo(rk.Slice(j * W, W));
            }
            ri.CopyTo(rk.Slice(i * W, W));
        }
        for (int i = 0; i <= d; i++)
        {
            var r = Vector256.Create<float>(rk.Slice(i * W, W)) + sum;
            var shift = (Vector256.LessThan(r, Vector256<float>.Zero) & vD1) - (Vector256.GreaterThanOrEqual(r, vD1) & vD1);
            (r + shift).CopyTo(rk.Slice(i * W, W));
            var m = Vector256.Create<float>(rem.Slice(i * W, W)) + shift;
            m.CopyTo(rem.Slice(i * W, W));
            ((Vector256.Create<float>(elevated.Slice(i * W, W)) - m) * vInv).CopyTo(bv.Slice(i * W, W));
        }
        // Barycentric sums per lane, in coordinate order (the reference does this part lane by lane too).
        for (int l = 0; l < count; l++)
        {
            var b = bary.Slice(l * (d + 2), d + 2);
            b.Clear();
            for (int i = 0; i <= d; i++)
            {
                int ri = (int)rk[i * W + l];
                float v = bv[i * W + l];
                b[d - ri] += v;
                b[d - ri + 1] -= v;
                rem0[l * d1 + i] = rem[i * W + l];
                rank[l * d1 + i] = ri;
            }
            b[0] += 1f + b[d + 1];
        }
        return true;
    }

    /// <summary>
    /// Elevation, nearest remainder-0 point, ranks and barycentric weights of one feature vector, each operation in
    /// float32 as the reference's SSE construction (which works on four points per vector, lane by lane the same
    /// arithmetic). Returns false for a non-finite feature.
    /// </summary>
    private static bool EmbedPoint(ReadOnlySpan<float> f, int d, ReadOnlySpan<float> scale, float invD1,
        Span<float> elevated, Span<float> rem0, Span<int> rank, Span<float> bary)
    {
        int d1 = d + 1;
        float sm = 0;
        for (int j = d; j > 0; j--)
        {
            float cf = f[j - 1] * scale[j - 1];
            elevated[j] = sm - j * cf;
            sm += cf;
        }
        elevated[0] = sm;
        if (!float.IsFinite(sm)) return false;
        // Nearest point of the (d+1)ℤ lattice coordinate-wise: round(v/(d+1)) with v·(1/(d+1)) in float, ties to even.
        int sum = 0;
        for (int i = 0; i <= d; i++)
        {
            float v = MathF.Round(invD1 * elevated[i]);
            if (!float.IsFinite(v) || Math.Abs(v) > 1 << 20) return false;
            rem0[i] = v * d1;
            sum += (int)v;
        }
        rank.Clear();
        for (int i = 0; i < d; i++)
        {
            float di = elevated[i] - rem0[i];
            for (int j = i + 1; j <= d; j++)
                if (di < elevated[j] - rem0[j]) rank[i]++;
                else rank[j]++;
        }
        for (int i = 0; i <= d; i++)
        {
            rank[i] += sum;
            if (rank[i] < 0) { rank[i] += d1; rem0[i] += d1; }
            else if (rank[i] >= d1) { rank[i] -= d1; rem0[i] -= d1; }
        }
        bary.Clear();
        for (int i = 0; i <= d; i++)
        {
            float v = (elevated[i] - rem0[i]) * invD1;
            bary[d - rank[i]] += v;
            bary[d - rank[i] + 1] -= v;
        }
        bary[0] += 1f + bary[d + 1];
        return true;
    }

    /// <summary>
    /// out = α·S·B·Sᵀ·in for point-major values [N, valueSize]; input and output may be the same span.
    /// </summary>
    public void Filter(ReadOnlySpan<float> input, Span<float> output, int valueSize)
    {
        CheckSizes(input.Length, output.Length, valueSize);
        if (_copyIn.Length < input.Length) { _copyIn = new float[input.Length]; _copyOut = new float[input.Length]; }
        input.CopyTo(_copyIn);
        Filter(_copyIn, _copyOut, valueSize);
        _copyOut.AsSpan(0, output.Length).CopyTo(output);
    }

    private void CheckSizes(long input, long output, int valueSize)
    {
        if (valueSize < 1) throw new ArgumentOutOfRangeException(nameof(valueSize), valueSize, "value size must be positive");
        if (input < (long)_n * valueSize || output < (long)_n * valueSize)
            throw new ArgumentException($"filter input {input} / output {output} must have {_n}×{valueSize} values");
    }

    /// <summary>As <see cref="Filter(ReadOnlySpan{float}, Span{float}, int)"/> on arrays (first N·valueSize values),
    /// without copies; <paramref name="input"/> and <paramref name="output"/> must be different arrays.</summary>
    internal void Filter(float[] input, float[] output, int valueSize)
    {
        CheckSizes(input.Length, output.Length, valueSize);
        int slots = (Vertices + 1) * valueSize;
        if (_values.Length < slots)
        {
            // Every slot is written by the splat and each blur pass before it is read.
            _values = _storage.Get<float>("values", valueSize, slots);
            _scratch = _storage.Get<float>("scratch", valueSize, slots);
        }
        _input = input;
        _output = output;
        _valueSize = valueSize;
        CpuParallel.For(_cpu, Vertices, Math.Max(256, PointGrain / (_d + 1)), new FilterKernel(this, FilterPass.Splat));
        bool serialBlur = (long)Vertices * valueSize < BlurSerialEntries;
        for (int j = 0; j <= _d; j++)
        {
            _axis = j;
            // A blur pass over a small lattice is shorter than waking the workers: run it on the calling thread.
            if (serialBlur) BlurRange(0, Vertices);
            else CpuParallel.For(_cpu, Vertices, 4096, new FilterKernel(this, FilterPass.Blur));
            (_values, _scratch) = (_scratch, _values);
        }
        CpuParallel.For(_cpu, _n, PointGrain, new FilterKernel(this, FilterPass.Slice));
        _input = _output = Array.Empty<float>();
    }

    private enum FilterPass { Splat, Blur, Slice }

    private readonly struct FilterKernel(PermutohedralLattice lattice, FilterPass pass) : IRangeKernel
    {
        public void Execute(int start, int count)
        {
            switch (pass)
            {
                case FilterPass.Splat: lattice.SplatRange(start, start + count); break;
                case FilterPass.Blur: lattice.BlurRange(start, start + count); break;
                default: lattice.SliceRange(start, start + count); break;
            }
        }
    }

    /// <summary>values[v] = Σ_points w·in (points ascending, each product rounded, then added: the reference's scatter order).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void SplatRange(int v0, int v1)
    {
        int vs = _valueSize;
        var values = _values;
        var input = _input;
        var start = _splatStart;
        var point = _splatPoint;
        var weight = _splatWeight;
        if (v0 == 0) for (int k = 0; k < vs; k++) values[k] = 0;
        if (vs == 1)
        {
            for (int v = v0; v < v1; v++)
            {
                float s = 0;
                for (int e = start[v]; e < start[v + 1]; e++) s += weight[e] * input[point[e]];
                values[v + 1] = s;
            }
        }
        else if (vs == 2)
        {
            for (int v = v0; v < v1; v++)
            {
                float s0 = 0, s1 = 0;
                for (int e = start[v]; e < start[v + 1]; e++)
                {
                    float w = weight[e];
                    int p = 2 * point[e];
                    s0 += w * input[p];
                    s1 += w * input[p + 1];
                }
                values[2 * v + 2] = s0;
                values[2 * v + 3] = s1;
            }
        }
        else
        {
            for (int v = v0; v < v1; v++)
            {
                var dst = values.AsSpan((v + 1) * vs, vs);
                dst.Clear();
                for (int e = start[v]; e < start[v + 1]; e++)
                {
                    float w = weight[e];
                    var src = input.AsSpan(point[e] * vs, vs);
                    for (int k = 0; k < vs; k++) dst[k] += w * src[k];
                }
            }
        }
    }

    /// <summary>
    /// new = old + ½(n1 + n2) along the current axis. For value sizes ≤ 2 the reference evaluates this with a
    /// double ½ (old + 0.5·(float sum), rounded once to float); above it uses float SSE arithmetic.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void BlurRange(int v0, int v1)
    {
        int m = Vertices, vs = _valueSize;
        var oldV = _values;
        var newV = _scratch;
        var blur = _blur.AsSpan(_axis * m * 2, m * 2);
        if (v0 == 0) for (int k = 0; k < vs; k++) newV[k] = 0;
        if (vs == 1)
        {
            for (int v = v0; v < v1; v++)
                newV[v + 1] = (float)(oldV[v + 1] + 0.5 * (oldV[blur[2 * v]] + oldV[blur[2 * v + 1]]));
        }
        else if (vs == 2)
        {
            for (int v = v0; v < v1; v++)
            {
                int o = 2 * v + 2, n1 = 2 * blur[2 * v], n2 = 2 * blur[2 * v + 1];
                newV[o] = (float)(oldV[o] + 0.5 * (oldV[n1] + oldV[n2]));
                newV[o + 1] = (float)(oldV[o + 1] + 0.5 * (oldV[n1 + 1] + oldV[n2 + 1]));
            }
        }
        else
        {
            for (int v = v0; v < v1; v++)
            {
                int o = (v + 1) * vs, n1 = blur[2 * v] * vs, n2 = blur[2 * v + 1] * vs;
                for (int k = 0; k < vs; k++) newV[o + k] = oldV[o + k] + 0.5f * (oldV[n1 + k] + oldV[n2 + k]);
            }
        }
    }

    /// <summary>out_p = Σ_r (w·value)·α for value sizes ≤ 2, Σ_r (w·α)·value above (the reference's two paths).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void SliceRange(int p0, int p1)
    {
        int vs = _valueSize, d1 = _d + 1;
        var values = _values;
        var output = _output;
        var weights = _weights;
        var offsets = _offsets;
        float alpha = _alpha;
        if (vs == 1)
        {
            for (int p = p0; p < p1; p++)
            {
                float s = 0;
                for (int e = p * d1; e < p * d1 + d1; e++) s += weights[e] * values[offsets[e]] * alpha;
                output[p] = s;
            }
        }
        else if (vs == 2)
        {
            for (int p = p0; p < p1; p++)
            {
                float s0 = 0, s1 = 0;
                for (int e = p * d1; e < p * d1 + d1; e++)
                {
                    float w = weights[e];
                    int o = 2 * offsets[e];
                    s0 += w * values[o] * alpha;
                    s1 += w * values[o + 1] * alpha;
                }
                output[2 * p] = s0;
                output[2 * p + 1] = s1;
            }
        }
        else
        {
            for (int p = p0; p < p1; p++)
            {
                var dst = output.AsSpan(p * vs, vs);
                dst.Clear();
                for (int e = p * d1; e < p * d1 + d1; e++)
                {
                    float w = weights[e] * alpha;
                    var src = values.AsSpan(offsets[e] * vs, vs);
                    for (int k = 0; k < vs; k++) dst[k] += w * src[k];
                }
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
        private int _mask, _keyCapacity;
        private readonly bool _wide;
        private readonly Storage _storage;
        private readonly int _part;

        public VertexTable(int expected, bool wideKeys, Storage storage, int part)
        {
            _storage = storage;
            _part = part;
            int cap = 1024;
            while (cap < expected * 2) cap <<= 1;
            _slots = NewSlots(cap);
            _mask = cap - 1;
            _keyCapacity = Math.Max(16, expected);
            _lo = storage.Get<ulong>("keyLo", part, _keyCapacity);
            _hi = storage.Get<ulong>("keyHi", part, _keyCapacity);
            _wide = wideKeys;
        }

        /// <summary>Empty slots for a capacity (only the first <paramref name="cap"/> entries of the array are used).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private Slot[] NewSlots(int cap)
        {
            var s = _storage.Get<Slot>("slots", _part, cap);
            s.AsSpan(0, cap).Fill(new Slot { Id = -1 });
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

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
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
            if (Count == _keyCapacity)
            {
                _keyCapacity = Count * 2;
                var keysLo = _storage.Get<ulong>("keyLo", _part, _keyCapacity);
                var keysHi = _storage.Get<ulong>("keyHi", _part, _keyCapacity);
                if (keysLo != _lo) _lo.AsSpan(0, Count).CopyTo(keysLo);
                if (keysHi != _hi) _hi.AsSpan(0, Count).CopyTo(keysHi);
                _lo = keysLo; _hi = keysHi;
            }
            int id = Count++;
            _lo[id] = lo; _hi[id] = hi;
            _slots[i] = new Slot { Lo = lo, Hi = (uint)hi, Id = id };
            if (Count * 2 > _mask + 1) Grow();
            return id;
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Grow()
        {
            // Rehashed from the keys by id, so the workspace may hand back the same (long enough) array.
            int cap = (_mask + 1) * 2;
            _slots = NewSlots(cap);
            _mask = cap - 1;
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
