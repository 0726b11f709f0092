using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;
using CrateIL.Compute.Cpu;
using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;

namespace CrateIL.Compute.Ops;

/// <summary>
/// CPU SIMD SGEMM, BLIS-style: for each NC-column block of op(B) and each KC-deep slice, op(B) is packed once into
/// NR-column panels shared by all threads (every thread packs a share), then each thread packs its MC-row blocks of
/// op(A) into MR-row panels and runs the register-blocked micro-kernel over its part of C. Transposes are absorbed
/// by the packing. Batches are spread over threads when there are enough of them; small problems run on the
/// calling thread without any synchronisation; otherwise a matrix is normally split into independent parts (each
/// member packs its own operands and never waits inside the call, see <see cref="TeamSchedule"/>). Packing buffers
/// live per thread and are reused across calls.
/// </summary>
/// <summary>How a thread team shares one matrix of a CPU GEMM call.</summary>
internal enum TeamSchedule
{
    /// <summary>Per call: the cheapest private split, or the shared schedule when every split would leave members idle (tiny m, n and k).</summary>
    Auto,
    /// <summary>Members share each packed block of op(B) (one barrier per block) and claim row blocks of C.</summary>
    Shared,
    /// <summary>Members compute disjoint runs of NR-column panels of C; each packs all of op(A).</summary>
    Columns,
    /// <summary>Members compute disjoint runs of MR-row micro-tiles of C; each packs all of op(B).</summary>
    Rows,
    /// <summary>Members compute partial products over disjoint ranges of the inner dimension, summed into C after one barrier.</summary>
    Depth,
}

internal static unsafe class GemmCpu
{
    /// <summary>Below this many multiply-adds per matrix, one thread does the whole matrix (waking a team costs more).</summary>
    internal const double SmallWork = 1 << 20;

    /// <summary>Forces the portable Vector256 micro-kernel where AVX-512 exists (tests; env CRATEIL_GEMM_KERNEL=vector256).</summary>
    internal static bool ForceVector256 { get; set; } =
        string.Equals(Environment.GetEnvironmentVariable("CRATEIL_GEMM_KERNEL"), "vector256", StringComparison.OrdinalIgnoreCase);

    /// <summary>The micro-kernel the next call uses.</summary>
    internal static SgemmKernel Kernel => Avx512F.IsSupported && !ForceVector256 ? SgemmKernels.Avx512 : SgemmKernels.Avx2;

    [ThreadStatic] private static Workspace? t_workspace;
    [ThreadStatic] private static TeamJob? t_job;

    private static Workspace OwnWorkspace => t_workspace ??= new Workspace();

    public static void Run(CpuDevice device, Tensor a, Tensor b, Tensor c, in GemmArgs g, PackedMatrix? packedB = null) =>
        Run(device, a, b, c, g, Kernel, packedB);

    /// <summary>
    /// The same with a chosen micro-kernel (tests run every kernel the machine supports). A packed op(B) made for
    /// another kernel's panel width is ignored (B is packed per call as without one).
    /// </summary>
    internal static void Run(CpuDevice device, Tensor a, Tensor b, Tensor c, in GemmArgs g, SgemmKernel kernel, PackedMatrix? packedB = null)
    {
        bool prepacked = packedB is not null && packedB.NR == kernel.NR;
        var p = new Problem(a.HostPointer, b.HostPointer, c.HostPointer, g, kernel, !g.TransA && (t_directA ?? EnvironmentDirectA),
            prepacked ? packedB!.Data : null, prepacked ? packedB!.PanelStride : 0);
        if (g.K == 0 || g.Alpha == 0f)
        {
            ScaleC(p);
            return;
        }
        double work = (double)g.M * g.N * g.K;
        int threads = Math.Min(device.Threads, Environment.ProcessorCount * 4);
        if (threads > 1 && work * g.Batch >= SmallWork)
        {
            var job = t_job ??= new TeamJob();
            job.Prepare(p, threads, OwnWorkspace);
            bool ran = CpuThreadTeam.Get(threads).TryRun(job);
            job.Clear();
            if (ran) return;
        }
        var ws = OwnWorkspace;
        float* bBuf = p.PackedB != null ? null : ws.B.Ensure(PackedBLength(p));
        for (int bt = 0; bt < g.Batch; bt++)
            Compute(p, bt, Partition.Whole, 0, null, bBuf, bBuf, ws);
    }

    /// <summary>C = β·C (β = 0: zero fill, C not read): the whole answer when k = 0 or α = 0.</summary>
    private static void ScaleC(in Problem p)
    {
        var g = p.Args;
        for (int bt = 0; bt < g.Batch; bt++)
            for (int i = 0; i < g.M; i++)
            {
                var row = new Span<float>(p.C + g.OffsetC + bt * g.StrideC + (long)i * g.Ldc, g.N);
                if (g.Beta == 0f) row.Clear();
                else System.Numerics.Tensors.TensorPrimitives.Multiply(row, g.Beta, row);
            }
    }

    private static long PackedBLength(in Problem p)
    {
        var k = p.Kernel;
        int nc = Math.Min(k.NC, RoundUp(p.Args.N, k.NR));
        return (long)Math.Min(k.KC, p.Args.K) * nc;
    }

    private static int RoundUp(int x, int multiple) => (x + multiple - 1) / multiple * multiple;

    /// <summary>Splits [0, total) into parts of at most <paramref name="max"/>, as even as possible, in multiples of <paramref name="unit"/>.</summary>
    private static int BlockSize(int total, int max, int unit)
    {
        int blocks = (total + max - 1) / max;
        return Math.Min(max, RoundUp((total + blocks - 1) / blocks, unit));
    }

    /// <summary>
    /// One matrix of the batch, for member <paramref name="member"/> of a team (or the whole matrix on one thread
    /// when <paramref name="team"/> is null). Members share the packed B block (double-buffered, so one barrier per
    /// block suffices: a buffer is refilled only after everyone passed the barrier that follows its successor's packing).
    /// With <paramref name="claims"/>, members take MC-row blocks of C from a shared counter per block of B
    /// (phases numbered from <paramref name="phase0"/>, which also picks the half of the double buffer), so a member slowed down by other load on the machine
    /// does less; without, each member owns a fixed rectangle of the <paramref name="part"/> grid.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Compute(in Problem p, int bt, Partition part, int member, CpuThreadTeam? team,
        float* sharedB0, float* sharedB1, Workspace ws, int[]? claims = null, int phase0 = 0)
    {
        var g = p.Args;
        var kern = p.Kernel;
        int mr = kern.MR, nr = kern.NR;
        float* a = p.A + g.OffsetA + bt * g.StrideA;
        float* b = p.B + g.OffsetB + bt * g.StrideB;
        float* c = p.C + g.OffsetC + bt * g.StrideC;
        int members = team?.Size ?? 1;
        bool direct = p.DirectA;

        // Static: this member's rows of C are a contiguous run of MR-row micro-tiles. Dynamic: all rows, claimed by block.
        int tilesM = (g.M + mr - 1) / mr;
        int tm = member / part.Tn, tn = member % part.Tn;
        int m0 = 0, m1 = g.M;
        if (claims is null)
        {
            m0 = Math.Min(g.M, tilesM * tm / part.Tm * mr);
            m1 = Math.Min(g.M, tilesM * (tm + 1) / part.Tm * mr);
        }
        else tn = 0;
        int tnCount = claims is null ? part.Tn : 1;

        int kc0 = BlockSize(g.K, kern.KC, 4);
        int nc0 = BlockSize(g.N, kern.NC, nr);
        // Dynamic claiming wants at least two blocks per member to balance; static wants the fewest blocks.
        int mcMax = claims is null ? kern.MC : Math.Clamp(RoundUp((g.M + 2 * members - 1) / (2 * members), mr), mr, kern.MC);
        int mc0 = m1 > m0 ? BlockSize(m1 - m0, mcMax, mr) : mr;
        int rowBlocks = (m1 - m0 + mc0 - 1) / mc0;
        float* aBuf = ws.A.Ensure((long)mc0 * kc0);
        float* tile = ws.Tile.Ensure((long)mr * nr);
        // Phases are numbered across the matrices of one team call, so the double buffer alternates across them too:
        // restarting at 0 per matrix let a member refill buffer 0 for the next matrix while another still read it
        // (an odd number of phases per matrix and two or more matrices on the team, e.g. batch 2 on 3 threads).
        int step = phase0;

        for (int jc = 0; jc < g.N; jc += nc0)
        {
            int nc = Math.Min(nc0, g.N - jc);
            int panels = (nc + nr - 1) / nr;
            int pn0 = panels * tn / tnCount, pn1 = panels * (tn + 1) / tnCount;
            for (int pc = 0; pc < g.K; pc += kc0, step++)
            {
                int kc = Math.Min(kc0, g.K - pc);
                float* bBuf = (step & 1) == 0 ? sharedB0 : sharedB1;
                long bPanelStride = (long)kc * nr;
                if (p.PackedB != null)
                {
                    // Panels over the whole depth: this block's kc rows of panel jp start pc rows into it.
                    bBuf = p.PackedB + (long)(jc / nr) * p.PackedStride + (long)pc * nr;
                    bPanelStride = p.PackedStride;
                }
                else SgemmPack.B(b, g.Ldb, g.TransB, pc, kc, jc, nc, nr, panels * member / members, panels * (member + 1) / members, bBuf);
                // With prepacked B the barrier still orders claimed row blocks across depth blocks (they accumulate into C).
                team?.Barrier();
                float beta = pc == 0 ? g.Beta : 1f;
                for (int blk = 0; ; blk++)
                {
                    if (claims is not null) blk = Interlocked.Increment(ref claims[step]) - 1;
                    if (blk >= rowBlocks) break;
                    int ic = m0 + blk * mc0, mc = Math.Min(mc0, m1 - ic);
                    // In place, only a last ragged row panel is packed (to aBuf's first panel): reading past it could leave the matrix.
                    int fullRows = direct ? mc / mr * mr : 0;
                    if (fullRows < mc) SgemmPack.A(a, g.Lda, g.TransA, ic + fullRows, mc - fullRows, pc, kc, mr, aBuf);
                    float* aRows = a + (long)ic * g.Lda + pc;
                    for (int jp = pn0; jp < pn1; jp++)
                    {
                        int jr = jp * nr, ncols = Math.Min(nr, nc - jr);
                        float* bPanel = bBuf + jp * bPanelStride;
                        float* cCol = c + jc + jr;
                        int ir = 0;
                        for (; ir < fullRows; ir += mr)
                            kern.RunDirect(kc, aRows + (long)ir * g.Lda, g.Lda, bPanel, cCol + (long)(ic + ir) * g.Ldc, g.Ldc,
                                g.Alpha, beta, ncols, tile);
                        for (; ir < mc; ir += mr)
                            kern.Run(kc, aBuf + (long)(ir - fullRows) * kc, bPanel, cCol + (long)(ic + ir) * g.Ldc, g.Ldc,
                                g.Alpha, beta, Math.Min(mr, mc - ir), ncols, tile);
                    }
                }
            }
        }
    }

    /// <summary>Blocks of B (barrier phases) one matrix takes: column blocks × depth blocks.</summary>
    private static int Phases(in Problem p)
    {
        var g = p.Args;
        int kc0 = BlockSize(g.K, p.Kernel.KC, 4), nc0 = BlockSize(g.N, p.Kernel.NC, p.Kernel.NR);
        return (g.N + nc0 - 1) / nc0 * ((g.K + kc0 - 1) / kc0);
    }

    /// <summary>
    /// The operands of one call: base pointers (tensor offsets applied), arguments, the micro-kernel, and whether a
    /// row-major op(A) is read in place (decided on the calling thread, so a test's override reaches every member).
    /// </summary>
    private readonly struct Problem(float* a, float* b, float* c, GemmArgs args, SgemmKernel kernel, bool directA,
        float* packedB = null, long packedStride = 0)
    {
        public readonly float* A = a, B = b, C = c;

        /// <summary>
        /// op(B) already packed (<see cref="PackedMatrix"/>): panel j of this problem's columns at PackedB + j·PackedStride,
        /// each the whole depth of NR columns; null when op(B) is packed per block as usual.
        /// </summary>
        public readonly float* PackedB = packedB;
        public readonly long PackedStride = packedStride;

        /// <summary>A sub-problem over other arguments (a member's share), its packed B moved by <paramref name="packedShift"/> floats.</summary>
        public Problem With(GemmArgs sub, float* c, long packedShift) =>
            new(A, B, c, sub, Kernel, DirectA, PackedB == null ? null : PackedB + packedShift, PackedStride);

        public readonly GemmArgs Args = args;
        public readonly SgemmKernel Kernel = kernel;
        /// <summary>
        /// op(A) is read in place by the micro-kernel (<see cref="SgemmKernel.RunDirect"/>) instead of packed: packing
        /// costs a load, a shuffle and a store per float, which a block of A used by only a few NR panels never earns
        /// back (every Linear of a ViT: n = 192 or 384 is 12 or 24 panels, and the column split made every member pack
        /// all of A). Measured faster at every size, 1024³ and 2048³ included, on both kernels.
        /// </summary>
        public readonly bool DirectA = directA;
    }

    /// <summary>How a team splits one matrix: a Tm × Tn grid of C blocks (rows of micro-tiles × columns of panels).</summary>
    private readonly record struct Partition(int Tm, int Tn)
    {
        public static readonly Partition Whole = new(1, 1);

        /// <summary>
        /// The grid with the least work on its busiest member; among near-ties (within 3 %) the one that splits M most,
        /// since splitting N makes every member pack all of A.
        /// </summary>
        public static Partition Choose(int members, int m, int n, SgemmKernel k)
        {
            long tilesM = (m + k.MR - 1) / k.MR, tilesN = (Math.Min(n, k.NC) + k.NR - 1) / k.NR;
            long Cost(int tm) => (tilesM + tm - 1) / tm * ((tilesN + members / tm - 1) / (members / tm));
            long best = long.MaxValue;
            for (int tm = 1; tm <= members; tm++) if (members % tm == 0) best = Math.Min(best, Cost(tm));
            for (int tm = members; tm >= 1; tm--)
                if (members % tm == 0 && Cost(tm) <= best * 1.03) return new Partition(tm, members / tm);
            return new Partition(members, 1);
        }
    }

    /// <summary>Per-thread scratch: the packed A block, a private packed B block (batch-parallel, single-thread and
    /// private-split paths), the team's shared B double buffer (owned by the calling thread), a ragged-tile buffer and
    /// a depth-split member's partial C.</summary>
    private sealed class Workspace
    {
        public readonly AlignedBuffer A = new(), B = new(), Tile = new(), Shared0 = new(), Shared1 = new(), Partial = new();
    }

    /// <summary>The schedule named by env CRATEIL_GEMM_SPLIT = shared | columns | rows | depth (A/B measurements), else Auto.</summary>
    private static readonly TeamSchedule EnvironmentSchedule = Environment.GetEnvironmentVariable("CRATEIL_GEMM_SPLIT")?.ToLowerInvariant() switch
    {
        "shared" => TeamSchedule.Shared,
        "columns" => TeamSchedule.Columns,
        "rows" => TeamSchedule.Rows,
        "depth" => TeamSchedule.Depth,
        _ => TeamSchedule.Auto,
    };

    [ThreadStatic] private static TeamSchedule? t_schedule;
    [ThreadStatic] private static bool? t_directA;

    /// <summary>
    /// Whether calls made by the current thread read a non-transposed op(A) in place (<see cref="Problem.DirectA"/>)
    /// instead of packing it; null restores the process default (env CRATEIL_GEMM_DIRECT_A = 0 turns it off).
    /// </summary>
    internal static bool? DirectA
    {
        get => t_directA;
        set => t_directA = value;
    }

    private static readonly bool EnvironmentDirectA = Environment.GetEnvironmentVariable("CRATEIL_GEMM_DIRECT_A") != "0";

    /// <summary>
    /// How team calls made by the current thread schedule a matrix: <see cref="TeamSchedule.Auto"/> chooses per call;
    /// the others force one schedule where the shape allows it. Per calling thread, so a test that forces a schedule
    /// leaves the GEMMs of other tests running at the same time alone; null restores the process default.
    /// </summary>
    internal static TeamSchedule? Schedule
    {
        get => t_schedule ?? EnvironmentSchedule;
        set => t_schedule = value;
    }

    /// <summary>
    /// The schedule of one matrix on a team of <paramref name="members"/>. The private splits remove the barrier per
    /// packed block of op(B) and the imbalance of claiming a few large row blocks, which dominate small and mid-size
    /// GEMMs (a 197×384×384 call is about 0.3 ms on two threads); each costs something the shared schedule does not:
    /// splitting the columns makes every member pack all of op(A) (k·m floats, (members − 1)/members of it extra),
    /// splitting the rows all of op(B), splitting the depth a final pass that sums the members' partial C (and a sum
    /// order that depends on the team size). Costs are relative to a perfect split of the multiply-adds, an extra
    /// packed or summed float counting <see cref="PackWeight"/> multiply-adds; the cheapest private split runs when it
    /// costs at most <see cref="PrivateMaxCost"/>, the shared schedule otherwise.
    /// </summary>
    private static TeamSchedule ChooseSchedule(in Problem p, int members)
    {
        var forced = t_schedule ?? EnvironmentSchedule;
        if (forced == TeamSchedule.Shared) return forced;
        var g = p.Args;
        var k = p.Kernel;
        long tilesM = (g.M + k.MR - 1) / k.MR, panelsN = (g.N + k.NR - 1) / k.NR, depthUnits = g.K / DepthUnit;
        // Imbalance of an even split into whole units (the busiest member's share over the mean).
        double Imbalance(long units) => units < members ? double.PositiveInfinity : (double)((units + members - 1) / members) * members / units;
        double extra = PackWeight * (members - 1);
        // Per member, against its m·n·k/members multiply-adds: all of op(A) is k·m floats, (members − 1)/members of
        // them extra (relative cost (members − 1)/n); likewise op(B) for rows; the partial sums m·n·(members − 1)/members.
        // Read in place, op(A) costs the column split nothing extra (measured at 197×384×384 on two threads: columns
        // 95 % of the AVX2 peak, rows 87 %).
        double columns = Imbalance(panelsN) * (1 + (p.DirectA ? 0 : extra / g.N));
        double rows = Imbalance(tilesM) * (1 + extra / g.M);
        double depth = Imbalance(depthUnits) * (1 + extra / g.K);
        switch (forced)
        {
            case TeamSchedule.Columns: return double.IsFinite(columns) ? forced : TeamSchedule.Shared;
            case TeamSchedule.Rows: return double.IsFinite(rows) ? forced : TeamSchedule.Shared;
            case TeamSchedule.Depth: return double.IsFinite(depth) ? forced : TeamSchedule.Shared;
        }
        if ((double)g.M * g.N * g.K > PrivateMaxWork) return TeamSchedule.Shared;
        var best = columns <= rows ? TeamSchedule.Columns : TeamSchedule.Rows;
        double cost = Math.Min(columns, rows);
        // The depth split changes the summation order with the team size; take it only for a clear gain.
        if (depth < 0.98 * cost) (best, cost) = (TeamSchedule.Depth, depth);
        return cost <= PrivateMaxCost ? best : TeamSchedule.Shared;
    }

    /// <summary>Cost of packing (or summing) one extra float, in multiply-adds of the micro-kernel (a load, a store and a shuffle against 1/16 cycle per FMA).</summary>
    private const double PackWeight = 8;

    /// <summary>The largest relative cost of a private split that beats the shared schedule's barriers and claiming.</summary>
    private const double PrivateMaxCost = 1.08;

    /// <summary>Granularity of the depth split (whole k-steps of the micro-kernels' 4-way unrolled loop).</summary>
    private const int DepthUnit = 4;

    /// <summary>
    /// Above this many multiply-adds per matrix the shared, claimed schedule runs (env CRATEIL_GEMM_PRIVATE_MAX; no
    /// limit by default). Measured in a quiet sitting on Zen 5, 2 threads: at 1024³ the private row or column split
    /// reaches 92–94 % of the AVX2 FMA peak against 88 % shared, 88 % against 83 % on AVX-512, and at 2048³ 94 %
    /// against 90 %: each member's packed blocks stay in its own L2 and no member waits at a barrier.
    /// </summary>
    private static readonly double PrivateMaxWork = double.TryParse(Environment.GetEnvironmentVariable("CRATEIL_GEMM_PRIVATE_MAX"), out double v) ? v : double.PositiveInfinity;

    /// <summary>A team run of one GEMM call: whole matrices per member while there are enough, then the rest together.</summary>
    private sealed class TeamJob : ITeamJob
    {
        private Problem _p;
        private Partition _partition;
        private bool _dynamic;
        private int _solo, _next, _phases;
        private int[] _claims = [];
        private float* _shared0, _shared1;
        private TeamSchedule _schedule;
        private nint[] _partials = [];

        public void Prepare(in Problem p, int members, Workspace owner)
        {
            _p = p;
            var g = p.Args;
            bool smallEach = (double)g.M * g.N * g.K < SmallWork;
            _solo = smallEach ? g.Batch : g.Batch / members * members;
            _next = 0;
            _partition = Partition.Choose(members, g.M, g.N, p.Kernel);
            // Claiming row blocks balances the load (also against other processes) when M has enough micro-tiles.
            _dynamic = (g.M + p.Kernel.MR - 1) / p.Kernel.MR >= 4 * members;
            _phases = Phases(p);
            _schedule = ChooseSchedule(p, members);
            if (_partials.Length < members) _partials = new nint[members];
            int claimsNeeded = (g.Batch - _solo) * _phases;
            if (_claims.Length < claimsNeeded) _claims = new int[Math.Max(claimsNeeded, 2 * _claims.Length)];
            Array.Clear(_claims, 0, claimsNeeded);
            long len = PackedBLength(p);
            _shared0 = _solo < g.Batch ? owner.Shared0.Ensure(len) : null;
            _shared1 = _solo < g.Batch ? owner.Shared1.Ensure(len) : null;
        }

        public void Clear() => _p = default;

        public void Execute(int member, CpuThreadTeam team)
        {
            var ws = OwnWorkspace;
            var g = _p.Args;
            if (_solo > 0)
            {
                float* bBuf = ws.B.Ensure(PackedBLength(_p));
                for (int bt = Interlocked.Increment(ref _next) - 1; bt < _solo; bt = Interlocked.Increment(ref _next) - 1)
                    Compute(_p, bt, Partition.Whole, 0, null, bBuf, bBuf, ws);
            }
            if (_schedule is TeamSchedule.Columns or TeamSchedule.Rows)
            {
                for (int bt = _solo; bt < g.Batch; bt++) ComputePrivate(member, team.Size, bt, ws);
                return;
            }
            if (_schedule == TeamSchedule.Depth)
            {
                for (int bt = _solo; bt < g.Batch; bt++) ComputeDepth(member, team, bt, ws, last: bt == g.Batch - 1);
                return;
            }
            for (int bt = _solo; bt < g.Batch; bt++)
                Compute(_p, bt, _partition, member, team, _shared0, _shared1, ws, _dynamic ? _claims : null, (bt - _solo) * _phases);
        }

        /// <summary>
        /// This member's share of matrix <paramref name="bt"/> as an independent GEMM: a run of whole NR-column panels
        /// (every member packs all of op(A)) or of whole MR-row micro-tiles (every member packs all of op(B)), with
        /// its own packing buffers, so members never wait for each other inside the call.
        /// </summary>
        private void ComputePrivate(int member, int members, int bt, Workspace ws)
        {
            var g = _p.Args;
            var kern = _p.Kernel;
            GemmArgs sub;
            long packedShift = 0;
            if (_schedule == TeamSchedule.Columns)
            {
                int panels = (g.N + kern.NR - 1) / kern.NR;
                int j0 = Math.Min(g.N, panels * member / members * kern.NR), j1 = Math.Min(g.N, panels * (member + 1) / members * kern.NR);
                if (j1 <= j0) return;
                sub = g with { N = j1 - j0, OffsetB = g.OffsetB + (g.TransB ? (long)j0 * g.Ldb : j0), OffsetC = g.OffsetC + j0 };
                packedShift = j0 / kern.NR * _p.PackedStride;
            }
            else
            {
                int tiles = (g.M + kern.MR - 1) / kern.MR;
                int i0 = Math.Min(g.M, tiles * member / members * kern.MR), i1 = Math.Min(g.M, tiles * (member + 1) / members * kern.MR);
                if (i1 <= i0) return;
                sub = g with { M = i1 - i0, OffsetA = g.OffsetA + (g.TransA ? i0 : (long)i0 * g.Lda), OffsetC = g.OffsetC + (long)i0 * g.Ldc };
            }
            var p = _p.With(sub, _p.C, packedShift);
            float* bBuf = p.PackedB != null ? null : ws.B.Ensure(PackedBLength(p));
            Compute(p, bt, Partition.Whole, 0, null, bBuf, bBuf, ws);
        }

        /// <summary>
        /// This member's range of the inner dimension of matrix <paramref name="bt"/>: member 0 computes α·A₀B₀ + β·C
        /// into C, every other member α·AₘBₘ into its own buffer; after a barrier each member adds the partials into its
        /// share of C's rows, in member order (so the result depends on the team size, not on timing).
        /// </summary>
        private void ComputeDepth(int member, CpuThreadTeam team, int bt, Workspace ws, bool last)
        {
            var g = _p.Args;
            int members = team.Size;
            long units = g.K / DepthUnit;
            int k0 = member == 0 ? 0 : (int)(units * member / members) * DepthUnit;
            int k1 = member == members - 1 ? g.K : (int)(units * (member + 1) / members) * DepthUnit;
            var sub = g with
            {
                K = k1 - k0,
                OffsetA = g.OffsetA + (g.TransA ? (long)k0 * g.Lda : k0),
                OffsetB = g.OffsetB + (g.TransB ? k0 : (long)k0 * g.Ldb),
            };
            float* c = _p.C;
            if (member > 0)
            {
                c = ws.Partial.Ensure((long)g.M * g.N);
                sub = sub with { Beta = 0f, OffsetC = 0, Ldc = g.N, StrideC = 0 };
                _partials[member] = (nint)c;
            }
            var p = _p.With(sub, c, (long)k0 * _p.Kernel.NR);
            float* bBuf = p.PackedB != null ? null : ws.B.Ensure(PackedBLength(p));
            Compute(p, bt, Partition.Whole, 0, null, bBuf, bBuf, ws);
            team.Barrier();
            int r0 = (int)((long)g.M * member / members), r1 = (int)((long)g.M * (member + 1) / members);
            for (int i = r0; i < r1; i++)
            {
                var row = new Span<float>(_p.C + g.OffsetC + bt * g.StrideC + (long)i * g.Ldc, g.N);
                for (int m = 1; m < members; m++)
                    System.Numerics.Tensors.TensorPrimitives.Add(row, new ReadOnlySpan<float>((float*)_partials[m] + (long)i * g.N, g.N), row);
            }
            // The partial buffers are refilled by the next matrix; the end of the job orders the last one.
            if (!last) team.Barrier();
        }
    }
}
