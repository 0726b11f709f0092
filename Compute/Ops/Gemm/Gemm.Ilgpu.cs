using CrateIL.Compute.Devices;
using CrateIL.Compute.Ilgpu;
using CrateIL.Compute.Tensors;
using ILGPU;
using ILGPU.Runtime;

namespace CrateIL.Compute.Ops;

/// <summary>Which ILGPU SGEMM kernel runs: chosen per device and problem, or forced (tests, benchmarks).</summary>
internal enum GemmKernelVariant
{
    /// <summary>Pick by device and problem size.</summary>
    Auto,
    /// <summary>64×64 block tile, BK = 16, 4×4 accumulators per thread: many blocks for small/medium problems.</summary>
    Tile64,
    /// <summary>128×128 block tile, BK = 8, 8×8 accumulators per thread: the throughput kernel for large problems on GPUs.</summary>
    Tile128,
}

/// <summary>
/// ILGPU SGEMM: shared-memory tiles with register blocking. Both kernels use groups of 16×16 threads; thread
/// (tx, ty) owns the rows ty + 16·i and columns tx + 16·j of the block tile, so that its shared-memory reads are
/// bank-conflict free (a warp reads 16 consecutive B values and broadcasts 2 A values) and its stores coalesce.
/// Transposes are resolved when a tile is staged into shared memory (always k-major: s[k·ld + outer]), so the
/// inner product loop is the same for all four op(A)/op(B) combinations. Tiles are double-buffered: the next
/// tile is loaded into registers while the current one is multiplied, so one barrier per k-step suffices.
/// </summary>
internal static class GemmIlgpu
{
    /// <summary>Largest grid Y extent portable to every backend (CUDA's limit).</summary>
    private const int MaxGridY = 65535;
    private const int MaxGridZ = 65535;

    public static void Run(IlgpuDevice device, Tensor a, Tensor b, Tensor c, in GemmArgs g) =>
        Run(device, a, b, c, g, GemmKernelVariant.Auto);

    internal static void Run(IlgpuDevice device, Tensor a, Tensor b, Tensor c, in GemmArgs g, GemmKernelVariant variant)
    {
        if (g.Batch == 0 || g.M == 0 || g.N == 0) return;
        if (variant == GemmKernelVariant.Auto) variant = Choose(device, g);
        int tile = variant == GemmKernelVariant.Tile128 ? GemmKernels.Tile128 : GemmKernels.Tile64;
        int colBlocks = (g.N + tile - 1) / tile;
        if (colBlocks > MaxGridY)
            throw new ArgumentException($"GEMM with n={g.N} needs {colBlocks} column blocks of {tile}; at most {MaxGridY} are supported");
        var p = GemmParams.From(g);
        var config = new KernelConfig(
            new Index3D((g.M + tile - 1) / tile, colBlocks, Math.Min(g.Batch, MaxGridZ)),
            new Index3D(GemmKernels.GroupSide, GemmKernels.GroupSide, 1));
        var kernels = device.Kernels<GemmKernels>();
        if (variant == GemmKernelVariant.Tile128) kernels.Tile128Launcher(config, p, a.View, b.View, c.View);
        else kernels.Tile64Launcher(config, p, a.View, b.View, c.View);
    }

    /// <summary>
    /// The 128-tile kernel does twice the work per shared-memory read but needs at least one block per
    /// multiprocessor to keep the device busy; smaller problems use the 64-tile kernel (4× the blocks). The ILGPU
    /// CPU simulator always uses the 64-tile kernel: there the cost is group barriers, and BK = 16 halves them.
    /// </summary>
    internal static GemmKernelVariant Choose(IlgpuDevice device, in GemmArgs g)
    {
        if (device.Kind == DeviceKind.IlgpuCpu) return GemmKernelVariant.Tile64;
        long bigBlocks = (long)((g.M + 127) / 128) * ((g.N + 127) / 128) * g.Batch;
        return bigBlocks >= device.Accelerator.NumMultiprocessors ? GemmKernelVariant.Tile128 : GemmKernelVariant.Tile64;
    }
}

/// <summary>The GEMM kernel parameters, passed as one struct. Flags are ints (portable across backends).</summary>
internal struct GemmParams
{
    public int Batch, M, N, K;
    public int Lda, Ldb, Ldc;
    /// <summary>1 when consecutive k of op(A) are adjacent in memory (A not transposed).</summary>
    public int AKContiguous;
    /// <summary>1 when consecutive k of op(B) are adjacent in memory (B transposed).</summary>
    public int BKContiguous;
    public float Alpha, Beta;
    public long OffsetA, StrideA, OffsetB, StrideB, OffsetC, StrideC;

    public static GemmParams From(in GemmArgs g) => new()
    {
        Batch = g.Batch, M = g.M, N = g.N, K = g.K,
        Lda = g.Lda, Ldb = g.Ldb, Ldc = g.Ldc,
        AKContiguous = g.TransA ? 0 : 1,
        BKContiguous = g.TransB ? 1 : 0,
        Alpha = g.Alpha, Beta = g.Beta,
        OffsetA = g.OffsetA, StrideA = g.StrideA,
        OffsetB = g.OffsetB, StrideB = g.StrideB,
        OffsetC = g.OffsetC, StrideC = g.StrideC,
    };
}

/// <summary>
/// One element a thread stages per k-tile: where it comes from in global memory (at k-tile 0; add k0·kStep) and
/// where it goes in shared memory. The element exists for k-tile k0 iff k0 &lt; KLimit, which folds both range
/// checks into one compare (and one register): KLimit = K − k when the row/column is inside the matrix, else −1.
/// </summary>
internal struct TileSlot
{
    public long Global;
    public int Shared;
    public int KLimit;

    /// <summary>
    /// Maps element <paramref name="index"/> (0 … outerTile·bk − 1) of a tile to (outer, k), letting consecutive
    /// threads walk the dimension that is contiguous in memory so global loads coalesce.
    /// </summary>
    public static TileSlot Create(int index, bool kContiguous, int bkShift, int outerShift, int sharedLd,
        int outer0, int outerExtent, int kExtent, long matrixBase, int ld)
    {
        int outer, k;
        if (kContiguous) { k = index & ((1 << bkShift) - 1); outer = index >> bkShift; }
        else { outer = index & ((1 << outerShift) - 1); k = index >> outerShift; }
        int globalOuter = outer0 + outer;
        return new TileSlot
        {
            Global = matrixBase + (kContiguous ? (long)globalOuter * ld + k : (long)k * ld + globalOuter),
            Shared = k * sharedLd + outer,
            KLimit = globalOuter < outerExtent ? kExtent - k : -1,
        };
    }

    /// <summary>The slot's element for the k-tile starting at <paramref name="k0"/>; 0 outside the matrix.</summary>
    public static float Load(ArrayView<float> x, TileSlot s, int k0, long kStep) =>
        k0 < s.KLimit ? x[s.Global + k0 * kStep] : 0f;
}

/// <summary>Eight floats held in registers (one accumulator row or one fragment of the 8×8 micro-tile).</summary>
internal struct Float8
{
    public float V0, V1, V2, V3, V4, V5, V6, V7;

    /// <summary>s[at], s[at + 16], …, s[at + 112]: one thread's strided share of a 128-wide shared row.</summary>
    public static Float8 LoadStrided16(ArrayView<float> s, int at) => new()
    {
        V0 = s[at], V1 = s[at + 16], V2 = s[at + 32], V3 = s[at + 48],
        V4 = s[at + 64], V5 = s[at + 80], V6 = s[at + 96], V7 = s[at + 112],
    };

    /// <summary>acc + a·b, element-wise.</summary>
    public static Float8 MulAdd(Float8 acc, float a, Float8 b) => new()
    {
        V0 = acc.V0 + a * b.V0, V1 = acc.V1 + a * b.V1, V2 = acc.V2 + a * b.V2, V3 = acc.V3 + a * b.V3,
        V4 = acc.V4 + a * b.V4, V5 = acc.V5 + a * b.V5, V6 = acc.V6 + a * b.V6, V7 = acc.V7 + a * b.V7,
    };
}

/// <summary>Four floats held in registers (one accumulator row or one fragment of the 4×4 micro-tile).</summary>
internal struct Float4
{
    public float V0, V1, V2, V3;

    /// <summary>s[at], s[at + 16], s[at + 32], s[at + 48]: one thread's strided share of a 64-wide shared row.</summary>
    public static Float4 LoadStrided16(ArrayView<float> s, int at) => new()
    {
        V0 = s[at], V1 = s[at + 16], V2 = s[at + 32], V3 = s[at + 48],
    };

    public static Float4 MulAdd(Float4 acc, float a, Float4 b) => new()
    {
        V0 = acc.V0 + a * b.V0, V1 = acc.V1 + a * b.V1, V2 = acc.V2 + a * b.V2, V3 = acc.V3 + a * b.V3,
    };
}

/// <summary>A thread's 8×8 accumulators: row i holds C[ty + 16·i, tx + 16·j] for j = 0 … 7.</summary>
internal struct Block8x8
{
    public Float8 R0, R1, R2, R3, R4, R5, R6, R7;

    /// <summary>
    /// One k-step: acc += a ⊗ b, with a = aTile[at + 16·i] (i = 0 … 7) and b = bTile[at + 16·j], where the tiles
    /// are views already offset to the thread's row (ty) and column (tx) in a k-major staged tile.
    /// </summary>
    public static Block8x8 Step(Block8x8 acc, ArrayView<float> aTile, ArrayView<float> bTile, int at)
    {
        var a = Float8.LoadStrided16(aTile, at);
        var b = Float8.LoadStrided16(bTile, at);
        return new Block8x8
        {
            R0 = Float8.MulAdd(acc.R0, a.V0, b), R1 = Float8.MulAdd(acc.R1, a.V1, b),
            R2 = Float8.MulAdd(acc.R2, a.V2, b), R3 = Float8.MulAdd(acc.R3, a.V3, b),
            R4 = Float8.MulAdd(acc.R4, a.V4, b), R5 = Float8.MulAdd(acc.R5, a.V5, b),
            R6 = Float8.MulAdd(acc.R6, a.V6, b), R7 = Float8.MulAdd(acc.R7, a.V7, b),
        };
    }
}

/// <summary>A thread's 4×4 accumulators: row i holds C[ty + 16·i, tx + 16·j] for j = 0 … 3.</summary>
internal struct Block4x4
{
    public Float4 R0, R1, R2, R3;

    /// <summary>One k-step of the 4×4 micro-tile (see <see cref="Block8x8.Step"/>).</summary>
    public static Block4x4 Step(Block4x4 acc, ArrayView<float> aTile, ArrayView<float> bTile, int at)
    {
        var a = Float4.LoadStrided16(aTile, at);
        var b = Float4.LoadStrided16(bTile, at);
        return new Block4x4
        {
            R0 = Float4.MulAdd(acc.R0, a.V0, b), R1 = Float4.MulAdd(acc.R1, a.V1, b),
            R2 = Float4.MulAdd(acc.R2, a.V2, b), R3 = Float4.MulAdd(acc.R3, a.V3, b),
        };
    }
}

/// <summary>The compiled GEMM kernels of one accelerator.</summary>
internal sealed class GemmKernels : IKernelSet<GemmKernels>
{
    /// <summary>Groups are GroupSide × GroupSide threads (256, within every backend's limit incl. the simulator).</summary>
    public const int GroupSide = 16;
    private const int Threads = GroupSide * GroupSide;

    public const int Tile128 = 128;
    private const int Tile128Shift = 7;
    private const int Bk8 = 8;
    private const int Bk8Shift = 3;

    public const int Tile64 = 64;
    private const int Tile64Shift = 6;
    private const int Bk16 = 16;
    private const int Bk16Shift = 4;

    /// <summary>
    /// Shared rows are padded by 4 floats: a k-contiguous operand is staged with a transposing store whose
    /// addresses k·ld + outer then spread over all 32 banks instead of colliding.
    /// </summary>
    private const int Pad = 4;
    private const int Ld128 = Tile128 + Pad;
    private const int Ld64 = Tile64 + Pad;
    private const int Buffer128 = Bk8 * Ld128;   // floats per staged operand tile
    private const int Buffer64 = Bk16 * Ld64;

    public readonly Action<KernelConfig, GemmParams, ArrayView<float>, ArrayView<float>, ArrayView<float>> Tile128Launcher;
    public readonly Action<KernelConfig, GemmParams, ArrayView<float>, ArrayView<float>, ArrayView<float>> Tile64Launcher;

    private GemmKernels(Accelerator accelerator)
    {
        // At most 256 threads per group; for the 8×8 kernel ask for 2 resident groups per multiprocessor, which
        // caps registers at 128 per thread (the 64 accumulators plus fragments and prefetch fit).
        Tile128Launcher = accelerator.LoadStreamKernel<GemmParams, ArrayView<float>, ArrayView<float>, ArrayView<float>>(
            Tile128Kernel, new KernelSpecialization(Threads, 2));
        Tile64Launcher = accelerator.LoadStreamKernel<GemmParams, ArrayView<float>, ArrayView<float>, ArrayView<float>>(
            Tile64Kernel, new KernelSpecialization(Threads, null));
    }

    public static GemmKernels Load(Accelerator accelerator) => new(accelerator);

    /// <summary>128×128 block tile, BK = 8, 8×8 accumulators per thread. Grid: (row blocks, column blocks, batch).</summary>
    [IlgpuKernel(Grouping.Explicit)]
    internal static void Tile128Kernel(GemmParams p, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c)
    {
        var sa = SharedMemory.Allocate<float>(2 * Buffer128);
        var sb = SharedMemory.Allocate<float>(2 * Buffer128);
        int tx = Group.IdxX, ty = Group.IdxY, tid = ty * GroupSide + tx;
        int row0 = Grid.IdxX * Tile128, col0 = Grid.IdxY * Tile128;
        bool aK = p.AKContiguous != 0, bK = p.BKContiguous != 0;
        long aStep = aK ? 1 : p.Lda, bStep = bK ? 1 : p.Ldb;
        int tiles = (p.K + Bk8 - 1) >> Bk8Shift;

        for (int batch = Grid.IdxZ; batch < p.Batch; batch += Grid.DimZ)
        {
            long baseA = p.OffsetA + batch * p.StrideA, baseB = p.OffsetB + batch * p.StrideB;
            // 128×8 = 1024 elements per operand tile: 4 per thread.
            var a0 = TileSlot.Create(tid, aK, Bk8Shift, Tile128Shift, Ld128, row0, p.M, p.K, baseA, p.Lda);
            var a1 = TileSlot.Create(tid + Threads, aK, Bk8Shift, Tile128Shift, Ld128, row0, p.M, p.K, baseA, p.Lda);
            var a2 = TileSlot.Create(tid + 2 * Threads, aK, Bk8Shift, Tile128Shift, Ld128, row0, p.M, p.K, baseA, p.Lda);
            var a3 = TileSlot.Create(tid + 3 * Threads, aK, Bk8Shift, Tile128Shift, Ld128, row0, p.M, p.K, baseA, p.Lda);
            var b0 = TileSlot.Create(tid, bK, Bk8Shift, Tile128Shift, Ld128, col0, p.N, p.K, baseB, p.Ldb);
            var b1 = TileSlot.Create(tid + Threads, bK, Bk8Shift, Tile128Shift, Ld128, col0, p.N, p.K, baseB, p.Ldb);
            var b2 = TileSlot.Create(tid + 2 * Threads, bK, Bk8Shift, Tile128Shift, Ld128, col0, p.N, p.K, baseB, p.Ldb);
            var b3 = TileSlot.Create(tid + 3 * Threads, bK, Bk8Shift, Tile128Shift, Ld128, col0, p.N, p.K, baseB, p.Ldb);

            // Stage k-tile 0 into buffer 0 (all zeros when K = 0).
            sa[a0.Shared] = TileSlot.Load(a, a0, 0, aStep);
            sa[a1.Shared] = TileSlot.Load(a, a1, 0, aStep);
            sa[a2.Shared] = TileSlot.Load(a, a2, 0, aStep);
            sa[a3.Shared] = TileSlot.Load(a, a3, 0, aStep);
            sb[b0.Shared] = TileSlot.Load(b, b0, 0, bStep);
            sb[b1.Shared] = TileSlot.Load(b, b1, 0, bStep);
            sb[b2.Shared] = TileSlot.Load(b, b2, 0, bStep);
            sb[b3.Shared] = TileSlot.Load(b, b3, 0, bStep);
            Group.Barrier();

            var acc = default(Block8x8);
            for (int t = 0; t < tiles; t++)
            {
                bool more = t + 1 < tiles;
                int kNext = (t + 1) << Bk8Shift;
                float na0 = 0f, na1 = 0f, na2 = 0f, na3 = 0f, nb0 = 0f, nb1 = 0f, nb2 = 0f, nb3 = 0f;
                if (more)
                {
                    na0 = TileSlot.Load(a, a0, kNext, aStep);
                    na1 = TileSlot.Load(a, a1, kNext, aStep);
                    na2 = TileSlot.Load(a, a2, kNext, aStep);
                    na3 = TileSlot.Load(a, a3, kNext, aStep);
                    nb0 = TileSlot.Load(b, b0, kNext, bStep);
                    nb1 = TileSlot.Load(b, b1, kNext, bStep);
                    nb2 = TileSlot.Load(b, b2, kNext, bStep);
                    nb3 = TileSlot.Load(b, b3, kNext, bStep);
                }

                // The k-steps are written out so every shared-memory address is a base plus a constant.
                var aTile = sa.SubView((t & 1) * Buffer128 + ty, Buffer128 - GroupSide);
                var bTile = sb.SubView((t & 1) * Buffer128 + tx, Buffer128 - GroupSide);
                acc = Block8x8.Step(acc, aTile, bTile, 0 * Ld128);
                acc = Block8x8.Step(acc, aTile, bTile, 1 * Ld128);
                acc = Block8x8.Step(acc, aTile, bTile, 2 * Ld128);
                acc = Block8x8.Step(acc, aTile, bTile, 3 * Ld128);
                acc = Block8x8.Step(acc, aTile, bTile, 4 * Ld128);
                acc = Block8x8.Step(acc, aTile, bTile, 5 * Ld128);
                acc = Block8x8.Step(acc, aTile, bTile, 6 * Ld128);
                acc = Block8x8.Step(acc, aTile, bTile, 7 * Ld128);

                if (more)
                {
                    // This buffer was last read in step t − 1, which every thread finished before the last barrier.
                    int next = Buffer128 - (t & 1) * Buffer128;
                    sa[next + a0.Shared] = na0;
                    sa[next + a1.Shared] = na1;
                    sa[next + a2.Shared] = na2;
                    sa[next + a3.Shared] = na3;
                    sb[next + b0.Shared] = nb0;
                    sb[next + b1.Shared] = nb1;
                    sb[next + b2.Shared] = nb2;
                    sb[next + b3.Shared] = nb3;
                }
                Group.Barrier();
            }

            long baseC = p.OffsetC + batch * p.StrideC;
            int col = col0 + tx;
            StoreRow8(c, p, baseC, row0 + ty, col, acc.R0);
            StoreRow8(c, p, baseC, row0 + ty + 16, col, acc.R1);
            StoreRow8(c, p, baseC, row0 + ty + 32, col, acc.R2);
            StoreRow8(c, p, baseC, row0 + ty + 48, col, acc.R3);
            StoreRow8(c, p, baseC, row0 + ty + 64, col, acc.R4);
            StoreRow8(c, p, baseC, row0 + ty + 80, col, acc.R5);
            StoreRow8(c, p, baseC, row0 + ty + 96, col, acc.R6);
            StoreRow8(c, p, baseC, row0 + ty + 112, col, acc.R7);
        }
    }

    /// <summary>64×64 block tile, BK = 16, 4×4 accumulators per thread. Grid: (row blocks, column blocks, batch).</summary>
    [IlgpuKernel(Grouping.Explicit)]
    internal static void Tile64Kernel(GemmParams p, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c)
    {
        var sa = SharedMemory.Allocate<float>(2 * Buffer64);
        var sb = SharedMemory.Allocate<float>(2 * Buffer64);
        int tx = Group.IdxX, ty = Group.IdxY, tid = ty * GroupSide + tx;
        int row0 = Grid.IdxX * Tile64, col0 = Grid.IdxY * Tile64;
        bool aK = p.AKContiguous != 0, bK = p.BKContiguous != 0;
        long aStep = aK ? 1 : p.Lda, bStep = bK ? 1 : p.Ldb;
        int tiles = (p.K + Bk16 - 1) >> Bk16Shift;

        for (int batch = Grid.IdxZ; batch < p.Batch; batch += Grid.DimZ)
        {
            long baseA = p.OffsetA + batch * p.StrideA, baseB = p.OffsetB + batch * p.StrideB;
            // 64×16 = 1024 elements per operand tile: 4 per thread.
            var a0 = TileSlot.Create(tid, aK, Bk16Shift, Tile64Shift, Ld64, row0, p.M, p.K, baseA, p.Lda);
            var a1 = TileSlot.Create(tid + Threads, aK, Bk16Shift, Tile64Shift, Ld64, row0, p.M, p.K, baseA, p.Lda);
            var a2 = TileSlot.Create(tid + 2 * Threads, aK, Bk16Shift, Tile64Shift, Ld64, row0, p.M, p.K, baseA, p.Lda);
            var a3 = TileSlot.Create(tid + 3 * Threads, aK, Bk16Shift, Tile64Shift, Ld64, row0, p.M, p.K, baseA, p.Lda);
            var b0 = TileSlot.Create(tid, bK, Bk16Shift, Tile64Shift, Ld64, col0, p.N, p.K, baseB, p.Ldb);
            var b1 = TileSlot.Create(tid + Threads, bK, Bk16Shift, Tile64Shift, Ld64, col0, p.N, p.K, baseB, p.Ldb);
            var b2 = TileSlot.Create(tid + 2 * Threads, bK, Bk16Shift, Tile64Shift, Ld64, col0, p.N, p.K, baseB, p.Ldb);
            var b3 = TileSlot.Create(tid + 3 * Threads, bK, Bk16Shift, Tile64Shift, Ld64, col0, p.N, p.K, baseB, p.Ldb);

            sa[a0.Shared] = TileSlot.Load(a, a0, 0, aStep);
            sa[a1.Shared] = TileSlot.Load(a, a1, 0, aStep);
            sa[a2.Shared] = TileSlot.Load(a, a2, 0, aStep);
            sa[a3.Shared] = TileSlot.Load(a, a3, 0, aStep);
            sb[b0.Shared] = TileSlot.Load(b, b0, 0, bStep);
            sb[b1.Shared] = TileSlot.Load(b, b1, 0, bStep);
            sb[b2.Shared] = TileSlot.Load(b, b2, 0, bStep);
            sb[b3.Shared] = TileSlot.Load(b, b3, 0, bStep);
            Group.Barrier();

            var acc = default(Block4x4);
            for (int t = 0; t < tiles; t++)
            {
                bool more = t + 1 < tiles;
                int kNext = (t + 1) << Bk16Shift;
                float na0 = 0f, na1 = 0f, na2 = 0f, na3 = 0f, nb0 = 0f, nb1 = 0f, nb2 = 0f, nb3 = 0f;
                if (more)
                {
                    na0 = TileSlot.Load(a, a0, kNext, aStep);
                    na1 = TileSlot.Load(a, a1, kNext, aStep);
                    na2 = TileSlot.Load(a, a2, kNext, aStep);
                    na3 = TileSlot.Load(a, a3, kNext, aStep);
                    nb0 = TileSlot.Load(b, b0, kNext, bStep);
                    nb1 = TileSlot.Load(b, b1, kNext, bStep);
                    nb2 = TileSlot.Load(b, b2, kNext, bStep);
                    nb3 = TileSlot.Load(b, b3, kNext, bStep);
                }

                var aTile = sa.SubView((t & 1) * Buffer64 + ty, Buffer64 - GroupSide);
                var bTile = sb.SubView((t & 1) * Buffer64 + tx, Buffer64 - GroupSide);
                acc = Block4x4.Step(acc, aTile, bTile, 0 * Ld64);
                acc = Block4x4.Step(acc, aTile, bTile, 1 * Ld64);
                acc = Block4x4.Step(acc, aTile, bTile, 2 * Ld64);
                acc = Block4x4.Step(acc, aTile, bTile, 3 * Ld64);
                acc = Block4x4.Step(acc, aTile, bTile, 4 * Ld64);
                acc = Block4x4.Step(acc, aTile, bTile, 5 * Ld64);
                acc = Block4x4.Step(acc, aTile, bTile, 6 * Ld64);
                acc = Block4x4.Step(acc, aTile, bTile, 7 * Ld64);
                acc = Block4x4.Step(acc, aTile, bTile, 8 * Ld64);
                acc = Block4x4.Step(acc, aTile, bTile, 9 * Ld64);
                acc = Block4x4.Step(acc, aTile, bTile, 10 * Ld64);
                acc = Block4x4.Step(acc, aTile, bTile, 11 * Ld64);
                acc = Block4x4.Step(acc, aTile, bTile, 12 * Ld64);
                acc = Block4x4.Step(acc, aTile, bTile, 13 * Ld64);
                acc = Block4x4.Step(acc, aTile, bTile, 14 * Ld64);
                acc = Block4x4.Step(acc, aTile, bTile, 15 * Ld64);

                if (more)
                {
                    int next = Buffer64 - (t & 1) * Buffer64;
                    sa[next + a0.Shared] = na0;
                    sa[next + a1.Shared] = na1;
                    sa[next + a2.Shared] = na2;
                    sa[next + a3.Shared] = na3;
                    sb[next + b0.Shared] = nb0;
                    sb[next + b1.Shared] = nb1;
                    sb[next + b2.Shared] = nb2;
                    sb[next + b3.Shared] = nb3;
                }
                Group.Barrier();
            }

            long baseC = p.OffsetC + batch * p.StrideC;
            int col = col0 + tx;
            StoreRow4(c, p, baseC, row0 + ty, col, acc.R0);
            StoreRow4(c, p, baseC, row0 + ty + 16, col, acc.R1);
            StoreRow4(c, p, baseC, row0 + ty + 32, col, acc.R2);
            StoreRow4(c, p, baseC, row0 + ty + 48, col, acc.R3);
        }
    }

    private static void StoreRow8(ArrayView<float> c, GemmParams p, long baseC, int row, int col, Float8 v)
    {
        if (row >= p.M) return;
        long at = baseC + (long)row * p.Ldc;
        Store(c, p, at, col, v.V0);
        Store(c, p, at, col + 16, v.V1);
        Store(c, p, at, col + 32, v.V2);
        Store(c, p, at, col + 48, v.V3);
        Store(c, p, at, col + 64, v.V4);
        Store(c, p, at, col + 80, v.V5);
        Store(c, p, at, col + 96, v.V6);
        Store(c, p, at, col + 112, v.V7);
    }

    private static void StoreRow4(ArrayView<float> c, GemmParams p, long baseC, int row, int col, Float4 v)
    {
        if (row >= p.M) return;
        long at = baseC + (long)row * p.Ldc;
        Store(c, p, at, col, v.V0);
        Store(c, p, at, col + 16, v.V1);
        Store(c, p, at, col + 32, v.V2);
        Store(c, p, at, col + 48, v.V3);
    }

    /// <summary>C[row, col] = α·acc (+ β·C[row, col] only when β ≠ 0, so NaN in an unread C cannot leak in).</summary>
    private static void Store(ArrayView<float> c, GemmParams p, long rowAt, int col, float acc)
    {
        if (col >= p.N) return;
        long i = rowAt + col;
        c[i] = p.Beta == 0f ? p.Alpha * acc : p.Alpha * acc + p.Beta * c[i];
    }
}
