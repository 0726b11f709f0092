using CrateIL.Compute.Cpu;
using CrateIL.Compute.Devices;
using CrateIL.Compute.Ops;
using CrateIL.Compute.Tensors;

namespace CrateIL.Nn.Layers;

/// <summary>
/// Attention on the CPU: per batch entry, all heads at once through the strided batched SGEMM over column slices
/// (score matrices [heads, n, n]), the row softmax op, and a second batched SGEMM for P·V. Backward:
/// dP = dO·Vᵀ, dS = scale·P ⊙ (dP − rowsum(dP ⊙ P)) (the softmax backward op), then dQ = dS·K, dK = dSᵀ·Q,
/// dV = Pᵀ·dO. With Q = K = V = w (MSSA) the three gradients fold into dw = (dS + dSᵀ)·w + Pᵀ·dO: one GEMM fewer.
/// All buffers belong to this object and are reused across calls.
/// <para>
/// When one entry's attention is too small for the SGEMM to wake its thread team (short sequences: the CI model's
/// 65 tokens) and every entry's probabilities are kept, the batch entries themselves are spread over the device's
/// threads, each entry running its GEMMs and softmax single-threaded (no nested parallel regions), with its own
/// score-gradient buffer.
/// </para>
/// </summary>
internal sealed unsafe class AttentionCpu : IDisposable
{
    private readonly CpuDevice _device;
    private readonly int _heads, _dh;
    private readonly float _scale;

    // Probabilities [entries, heads·n, n]: every batch entry when they fit the budget, else one entry, recomputed in backward.
    private Tensor? _probs;
    private Tensor[] _probRows = [];
    private Tensor? _grad;          // dP, then dS [heads·n, n]: of one batch entry, or of every entry when entries run in parallel
    private Tensor[] _gradRows = [];
    private int _n = -1, _entries;
    private bool _keptAll;

    // The fused symmetric path (Q = K = V): per-row state saved by its forward, and whether the last forward took it.
    private readonly SymmetricAttentionCpu.Saved _symmetric = new();
    private bool _fusedLast;

    public AttentionCpu(CpuDevice device, int heads, int dh, float scale)
    {
        _device = device;
        _heads = heads;
        _dh = dh;
        _scale = scale;
    }

    public long SavedBudget { get; set; } = AttentionCore.DefaultSavedProbabilityBudget;

    /// <summary>
    /// Run Q = K = V attention through <see cref="SymmetricAttentionCpu"/> where it applies. Unset, the choice is
    /// automatic: fused from <see cref="FusedMinTokens"/> tokens on, unless CRATEIL_MSSA_ATTENTION=materialised (A/B
    /// timing of whole models). Set (tests, benchmarks), it is used at every size.
    /// </summary>
    public bool FusedSymmetric
    {
        get => _fusedChoice ?? !DefaultMaterialised;
        set => _fusedChoice = value;
    }

    /// <summary>
    /// Below this many tokens the automatic choice keeps the materialised path: measured in one quiet sitting on the
    /// CI model (65 tokens, batch 32, 2 threads) the fused path was 10 % slower (85.7 vs 77.9 ms a step) — its 96-row
    /// tiles are mostly padding there, while entries spread over the team keep the small GEMMs busy; at 197 tokens
    /// the two tie and at 785 the fused one is 10–15 % faster (benchmarks/RESULTS.md).
    /// </summary>
    public const int FusedMinTokens = 128;

    private bool? _fusedChoice;

    private static readonly bool DefaultMaterialised =
        Environment.GetEnvironmentVariable("CRATEIL_MSSA_ATTENTION") is string v &&
        (v.Equals("materialised", StringComparison.OrdinalIgnoreCase) || v.Equals("materialized", StringComparison.OrdinalIgnoreCase));

    /// <summary>Whether the last forward pass took the fused symmetric path (so no probabilities were kept).</summary>
    public bool LastForwardFused => _fusedLast;

    public ReadOnlySpan<float> SavedProbabilities(int b, int h)
    {
        // After a fused forward the buffer holds an earlier materialised pass's probabilities: never hand those out.
        if (_fusedLast || _probs is null || (!_keptAll && b != 0) || b >= _entries || h < 0 || h >= _heads) return default;
        long nn = (long)_n * _n;
        return _probs.AsSpan().Slice((int)(((long)b * _heads + h) * nn), (int)nn);
    }

    public void Forward(int batch, int n, HeadColumns q, HeadColumns k, HeadColumns v, HeadColumns o)
    {
        _fusedLast = false;
        if (UseSymmetric(batch, n, q, k, v))
        {
            _symmetric.Ensure(batch * _heads, n);
            int units = batch * _heads;
            _symmetric.Reset();
            CpuParallel.For(_device, Math.Min(units, _device.Threads), 1, new SymmetricAttentionCpu.ForwardKernel(units, _heads, _dh, n, _scale, q, o, _symmetric));
            _fusedLast = true;
            return;
        }
        Ensure(batch, n);
        if (EntriesInParallel(batch, n))
        {
            CpuParallel.For(_device, batch, 1, new EntryKernel(this, EntryPass.Forward, n, q, k, v, o, default, default, default, default));
            return;
        }
        for (int b = 0; b < batch; b++) ForwardEntry(b, n, q, k, v, o);
    }

    /// <summary>
    /// The fused symmetric path needs Q, K and V to be the same columns, and pays off when every thread gets its own
    /// (entry, head) units or when a head's GEMMs are too small to wake the thread team anyway.
    /// </summary>
    private bool UseSymmetric(int batch, int n, HeadColumns q, HeadColumns k, HeadColumns v) =>
        (_fusedChoice ?? (!DefaultMaterialised && n >= FusedMinTokens)) && q == k && q == v &&
        ((long)batch * _heads >= _device.Threads || (double)n * n * _dh < GemmCpu.SmallWork);

    private void ForwardEntry(int b, int n, HeadColumns q, HeadColumns k, HeadColumns v, HeadColumns o)
    {
        int e = _keptAll ? b : 0;
        Probabilities(b, n, q, k, e);
        // O_h = P_h · V_h, written straight into the head's columns of O.
        Gemm.Batched(_heads, n, _dh, n, 1f, Probs(e, n), false, Cols(v, b, n), false, 0f, Cols(o, b, n));
    }

    /// <summary>Entries go to separate threads when each is below the SGEMM's team threshold and all probabilities are kept.</summary>
    private bool EntriesInParallel(int batch, int n) =>
        _keptAll && batch > 1 && _device.Threads > 1 && (double)_heads * n * n * _dh < GemmCpu.SmallWork;

    private enum EntryPass { Forward, Backward, BackwardShared }

    /// <summary>Runs whole batch entries [start, start + count) of one pass on the calling thread.</summary>
    private readonly struct EntryKernel(AttentionCpu owner, EntryPass pass, int n, HeadColumns q, HeadColumns k, HeadColumns v,
        HeadColumns o, HeadColumns dO, HeadColumns dq, HeadColumns dk, HeadColumns dv) : IRangeKernel
    {
        public void Execute(int start, int count)
        {
            for (int b = start; b < start + count; b++)
            {
                switch (pass)
                {
                    case EntryPass.Forward: owner.ForwardEntry(b, n, q, k, v, o); break;
                    case EntryPass.Backward: owner.BackwardEntry(b, n, q, k, v, dO, dq, dk, dv); break;
                    default: owner.BackwardSharedEntry(b, n, q, dO, dq); break;
                }
            }
        }
    }

    public void Backward(int batch, int n, HeadColumns q, HeadColumns k, HeadColumns v, HeadColumns o, HeadColumns dO,
        HeadColumns dq, HeadColumns dk, HeadColumns dv)
    {
        if (_fusedLast) RecomputeInBackward(batch, n);
        if (EnsureGrad(batch, n))
        {
            CpuParallel.For(_device, batch, 1, new EntryKernel(this, EntryPass.Backward, n, q, k, v, o, dO, dq, dk, dv));
            return;
        }
        for (int b = 0; b < batch; b++) BackwardEntry(b, n, q, k, v, dO, dq, dk, dv);
    }

    private void BackwardEntry(int b, int n, HeadColumns q, HeadColumns k, HeadColumns v, HeadColumns dO,
        HeadColumns dq, HeadColumns dk, HeadColumns dv)
    {
        int e = ScoreGradient(b, n, q, k, v, dO, out var grad);
        var dS = new MatrixOperand(grad, 0, n, (long)n * n);
        Gemm.Batched(_heads, n, _dh, n, 1f, dS, false, Cols(k, b, n), false, 0f, Cols(dq, b, n));
        Gemm.Batched(_heads, n, _dh, n, 1f, dS, true, Cols(q, b, n), false, 0f, Cols(dk, b, n));
        Gemm.Batched(_heads, n, _dh, n, 1f, Probs(e, n), true, Cols(dO, b, n), false, 0f, Cols(dv, b, n));
    }

    /// <summary>Sizes the score-gradient buffer (one slot, or one per entry when entries run in parallel); returns the latter.</summary>
    private bool EnsureGrad(int batch, int n)
    {
        bool parallel = EntriesInParallel(batch, n);
        int slots = parallel ? batch : 1;
        if (_grad is not null && _gradRows.Length == slots) return parallel;
        _grad?.Dispose();
        _grad = _device.Allocate(checked(slots * _heads * n), n);
        _gradRows = new Tensor[slots];
        for (int i = 0; i < slots; i++) _gradRows[i] = _grad.Slice((long)i * _heads * n * n, _heads * n, n);
        return parallel;
    }

    public void BackwardShared(int batch, int n, HeadColumns w, HeadColumns o, HeadColumns dO, HeadColumns dw)
    {
        if (_fusedLast)
        {
            int units = batch * _heads;
            _symmetric.Reset();
            CpuParallel.For(_device, Math.Min(units, _device.Threads), 1, new SymmetricAttentionCpu.BackwardKernel(units, _heads, _dh, n, _scale, w, o, dO, dw, _symmetric));
            return;
        }
        if (EnsureGrad(batch, n))
        {
            CpuParallel.For(_device, batch, 1, new EntryKernel(this, EntryPass.BackwardShared, n, w, w, w, o, dO, dw, default, default));
            return;
        }
        for (int b = 0; b < batch; b++) BackwardSharedEntry(b, n, w, dO, dw);
    }

    private void BackwardSharedEntry(int b, int n, HeadColumns w, HeadColumns dO, HeadColumns dw)
    {
        int e = ScoreGradient(b, n, w, w, w, dO, out var grad);
        // Scores S = w·wᵀ use w on both sides: dw = dS·w + dSᵀ·w = (dS + dSᵀ)·w, plus the value path Pᵀ·dO.
        Symmetrise(grad, n);
        Gemm.Batched(_heads, n, _dh, n, 1f, new MatrixOperand(grad, 0, n, (long)n * n), false, Cols(w, b, n), false, 0f, Cols(dw, b, n));
        Gemm.Batched(_heads, n, _dh, n, 1f, Probs(e, n), true, Cols(dO, b, n), false, 1f, Cols(dw, b, n));
    }

    /// <summary>
    /// Leaves dS = scale·P ⊙ (dP − rowsum(dP⊙P)) of batch entry b in its gradient buffer (<paramref name="grad"/>:
    /// the entry's own slot when entries run in parallel, else the single one); returns P's entry.
    /// </summary>
    private int ScoreGradient(int b, int n, HeadColumns q, HeadColumns k, HeadColumns v, HeadColumns dO, out Tensor grad)
    {
        int e = _keptAll ? b : 0;
        if (!_keptAll) Probabilities(b, n, q, k, 0);
        grad = _gradRows.Length > 1 ? _gradRows[b] : _gradRows[0];
        Gemm.Batched(_heads, n, n, _dh, 1f, Cols(dO, b, n), false, Cols(v, b, n), true, 0f, new MatrixOperand(grad, 0, n, (long)n * n));
        Softmax.Backward(_probRows[e], grad, grad, _scale);
        return e;
    }

    /// <summary>P = softmax(scale·Q·Kᵀ) of batch entry b, all heads, into probability entry e.</summary>
    private void Probabilities(int b, int n, HeadColumns q, HeadColumns k, int e)
    {
        Gemm.Batched(_heads, n, n, _dh, _scale, Cols(q, b, n), false, Cols(k, b, n), true, 0f, Probs(e, n));
        Softmax.Forward(_probRows[e], _probRows[e]);
    }

    private MatrixOperand Cols(HeadColumns c, int b, int n) => new(c.Tensor, (long)b * n * c.Ld + c.Offset, c.Ld, _dh);

    private MatrixOperand Probs(int e, int n) => new(_probs!, (long)e * _heads * n * n, n, (long)n * n);

    private void Ensure(int batch, int n, bool recompute = false)
    {
        long perEntry = (long)_heads * n * n;
        bool keepAll = !recompute && (batch == 1 || perEntry * batch * sizeof(float) <= SavedBudget);
        int entries = keepAll ? batch : 1;
        if (_probs is not null && n == _n && entries == _entries && keepAll == _keptAll) return;
        _probs?.Dispose();
        _grad?.Dispose();
        _grad = null;
        _gradRows = [];
        _n = n;
        _entries = entries;
        _keptAll = keepAll;
        _probs = _device.Allocate(checked((int)(perEntry * entries)));
        _probRows = new Tensor[entries];
        for (int e = 0; e < entries; e++) _probRows[e] = _probs.Slice(e * perEntry, _heads * n, n);
    }

    /// <summary>
    /// After a fused forward nothing is kept: the general backward recomputes one entry's probabilities at a time
    /// (the budget-exceeded mode of <see cref="Ensure"/>).
    /// </summary>
    private void RecomputeInBackward(int batch, int n)
    {
        Ensure(batch, n, recompute: true);
        _fusedLast = false;
    }

    /// <summary>A ← A + Aᵀ for each head's n×n block of <paramref name="t"/>, in place, in cache-sized tiles.</summary>
    private void Symmetrise(Tensor t, int n)
    {
        int tiles = (n + SymmetriseKernel.Tile - 1) / SymmetriseKernel.Tile;
        var kernel = new SymmetriseKernel(t.HostPointer, n, tiles);
        CpuParallel.For(_device, _heads * tiles, Math.Max(1, (1 << 14) / Math.Max(1, n)), kernel);
    }

    /// <summary>Unit u = (head, tile row ti): handles tiles (ti, tj ≤ ti), so every pair is touched by exactly one unit.</summary>
    private readonly struct SymmetriseKernel(float* a, int n, int tiles) : IRangeKernel
    {
        public const int Tile = 32;

        public void Execute(int start, int count)
        {
            for (int u = start; u < start + count; u++)
            {
                int h = u / tiles, ti = u % tiles;
                float* m = a + (long)h * n * n;
                int i0 = ti * Tile, i1 = Math.Min(n, i0 + Tile);
                for (int tj = 0; tj <= ti; tj++)
                {
                    int j0 = tj * Tile, j1 = Math.Min(n, j0 + Tile);
                    for (int i = i0; i < i1; i++)
                    {
                        int jEnd = tj == ti ? i : j1;
                        float* row = m + (long)i * n;
                        for (int j = j0; j < jEnd; j++)
                        {
                            float* mirror = m + (long)j * n + i;
                            float s = row[j] + *mirror;
                            row[j] = s;
                            *mirror = s;
                        }
                        if (tj == ti) row[i] *= 2f;
                    }
                }
            }
        }
    }

    public void Dispose()
    {
        _probs?.Dispose();
        _grad?.Dispose();
        _probs = _grad = null;
        _gradRows = [];
    }
}
