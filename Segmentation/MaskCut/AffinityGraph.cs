using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using CrateIL.Compute.Cpu;
using CrateIL.Compute.Devices;
using CrateIL.Compute.Ops;
using CrateIL.Compute.Tensors;
using CrateIL.Imaging;
using CrateIL.Segmentation.Linalg;

namespace CrateIL.Segmentation.MaskCut;

/// <summary>
/// The binarised token-affinity graph of MaskCut (CutLER <c>get_affinity_matrix</c>): with L2-normalised token
/// features f_i (a zero token stays zero), A_ij = 1 if f_i·f_j &gt; τ, else ε (self-loops included).
/// Stored as a bit matrix B (B_ij = [f_i·f_j &gt; τ]) so that A = ε·11ᵀ + (1−ε)·B; 3600 tokens take 1.6 MB.
/// As an <see cref="ISymmetricOperator"/> it applies M = D^(-½)·A·D^(-½) (D = diag of row sums), whose top
/// eigenvector is D^(½)·1 (eigenvalue 1) and whose second eigenvector u gives the Fiedler vector v = D^(-½)u of
/// (D − A)v = λDv with λ = 1 − θ.
/// </summary>
public sealed class AffinityGraph : ISymmetricOperator
{
    private readonly int _words;          // ulongs per bit row
    private readonly ulong[] _bits;       // N rows × _words
    private readonly double[] _invSqrtDegree;
    private readonly double[] _degree;
    private readonly double[] _scaled;    // s∘x, padded to _words·64 with zeros
    private readonly double[] _product;
    private readonly CpuDevice _cpu;

    private AffinityGraph(int n, double tau, double eps, CpuDevice cpu)
    {
        if (!(eps > 0)) throw new ArgumentOutOfRangeException(nameof(eps), eps, "the weak-edge weight ε must be positive (it keeps the graph connected)");
        Size = n;
        Tau = tau;
        Eps = eps;
        _words = (n + 63) / 64;
        _bits = new ulong[(long)n * _words];
        _invSqrtDegree = new double[n];
        _degree = new double[n];
        _scaled = new double[_words * 64];
        _product = new double[n];
        _cpu = cpu;
    }

    /// <summary>Number of tokens (graph nodes).</summary>
    public int Size { get; }

    public double Tau { get; }
    public double Eps { get; }

    /// <summary>Weighted degree d_i = Σ_j A_ij.</summary>
    public ReadOnlySpan<double> Degree => _degree;

    /// <summary>
    /// Builds the graph from token features [N, D] (row per token). The rows are L2-normalised on the host
    /// (x / max(‖x‖, 1e−12), as F.normalize), the cosine matrix F·Fᵀ is computed by the Compute layer's GEMM on the
    /// features' device (float32, as CutLER), then binarised with the float32 comparison cos &gt; (float)τ.
    /// </summary>
    /// <param name="cpu">Threads for the graph operator's mat-vecs; null: the features' device when it is a CPU,
    /// else the calling thread.</param>
    public static AffinityGraph FromFeatures(Tensor features, double tau, double eps = 1e-5, CpuDevice? cpu = null)
    {
        if (features.Rank != 2) throw new ArgumentException($"features must be [tokens, dim], got {features.Shape}", nameof(features));
        int n = features.Shape[0], dim = features.Shape[1];
        if (n < 2) throw new ArgumentException($"MaskCut needs at least 2 tokens, got {n}", nameof(features));
        var host = features.ToArray();
        NormalizeRows(host, n, dim);
        var device = features.Device;
        using var f = device.FromHost(host, n, dim);
        using var cos = device.Allocate(n, n);
        Gemm.MatMul(f, f, cos, transA: false, transB: true);
        device.Synchronize();
        float[] cosine = device.IsHost ? Array.Empty<float>() : cos.ToArray();
        ReadOnlySpan<float> c = device.IsHost ? cos.AsSpan() : cosine;
        return FromCosine(c, n, tau, eps, cpu ?? device as CpuDevice);
    }

    /// <summary>Builds the graph from a precomputed cosine-similarity matrix [N, N] (row-major); its mat-vecs run on
    /// <paramref name="cpu"/>'s threads (null: the calling thread).</summary>
    public static AffinityGraph FromCosine(ReadOnlySpan<float> cosine, int n, double tau, double eps = 1e-5, CpuDevice? cpu = null)
    {
        if (n < 2) throw new ArgumentException($"MaskCut needs at least 2 tokens, got {n}", nameof(n));
        if (cosine.Length != (long)n * n) throw new ArgumentException($"cosine matrix has {cosine.Length} elements, expected {n}×{n}", nameof(cosine));
        var g = new AffinityGraph(n, tau, eps, SegmentationCpu.Resolve(cpu));
        float t = (float)tau;
        for (int i = 0; i < n; i++)
        {
            var row = cosine.Slice(i * n, n);
            var bits = g._bits.AsSpan(i * g._words, g._words);
            for (int j = 0; j < n; j++)
                if (row[j] > t) bits[j >> 6] |= 1UL << (j & 63);
        }
        g.UpdateDegrees();
        return g;
    }

    /// <summary>L2-normalises each row in place: x / max(‖x‖₂, 1e−12), like torch.nn.functional.normalize.</summary>
    public static void NormalizeRows(Span<float> x, int rows, int dim)
    {
        for (int i = 0; i < rows; i++)
        {
            var r = x.Slice(i * dim, dim);
            double s = 0;
            foreach (float v in r) s += (double)v * v;
            float inv = (float)(1.0 / Math.Max(Math.Sqrt(s), 1e-12));
            for (int k = 0; k < dim; k++) r[k] *= inv;
        }
    }

    /// <summary>A_ij.</summary>
    public double Weight(int i, int j) => Bit(i, j) ? 1.0 : Eps;

    internal bool Bit(int i, int j) => (_bits[(long)i * _words + (j >> 6)] >> (j & 63) & 1) != 0;

    /// <summary>
    /// Removes tokens from the graph as CutLER does: their features are zeroed, so their cosine with every token
    /// (themselves included) is 0 and every edge touching them becomes [0 &gt; τ] ? 1 : ε. Tokens stay in the graph.
    /// </summary>
    public void MaskTokens(BinaryMask tokens)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        var selected = tokens.Pixels;
        if (selected.Length != Size) throw new ArgumentException($"token mask is {tokens.Height}×{tokens.Width}, graph has {Size} tokens", nameof(tokens));
        bool strong = 0f > (float)Tau;
        for (int i = 0; i < Size; i++)
        {
            if (selected[i] == 0) continue;
            var row = _bits.AsSpan(i * _words, _words);
            if (strong)
            {
                row.Fill(ulong.MaxValue);
                if ((Size & 63) != 0) row[^1] = (1UL << (Size & 63)) - 1;
            }
            else row.Clear();
            ulong bit = 1UL << (i & 63);
            int w = i >> 6;
            for (int r = 0; r < Size; r++)
            {
                if (strong) _bits[(long)r * _words + w] |= bit;
                else _bits[(long)r * _words + w] &= ~bit;
            }
        }
        UpdateDegrees();
    }

    private void UpdateDegrees()
    {
        for (int i = 0; i < Size; i++)
        {
            long ones = 0;
            var row = _bits.AsSpan(i * _words, _words);
            foreach (ulong w in row) ones += BitOperations.PopCount(w);
            // d_i = Σ_j A_ij = ε·(N − ones) + ones
            double d = Eps * (Size - ones) + ones;
            _degree[i] = d;
            _invSqrtDegree[i] = 1.0 / Math.Sqrt(d);
        }
    }

    /// <summary>The unit vector D^(½)·1/‖·‖: the trivial eigenvector of M (eigenvalue 1).</summary>
    public double[] TrivialEigenvector()
    {
        var u = new double[Size];
        double s = 0;
        for (int i = 0; i < Size; i++) { u[i] = Math.Sqrt(_degree[i]); s += _degree[i]; }
        double inv = 1 / Math.Sqrt(s);
        for (int i = 0; i < Size; i++) u[i] *= inv;
        return u;
    }

    /// <summary>y = A·x (the affinity itself, not normalised).</summary>
    public void MultiplyAffinity(ReadOnlySpan<double> x, Span<double> y)
    {
        if (x.Length != Size || y.Length != Size) throw new ArgumentException($"vectors must have length {Size}");
        x.CopyTo(_scaled);
        Array.Clear(_scaled, Size, _scaled.Length - Size);
        RunRows(_product);
        _product.AsSpan().CopyTo(y);
    }

    /// <summary>y = D^(-½)·A·D^(-½)·x.</summary>
    public void Apply(ReadOnlySpan<double> x, Span<double> y)
    {
        if (x.Length != Size || y.Length != Size) throw new ArgumentException($"vectors must have length {Size}");
        for (int i = 0; i < Size; i++) _scaled[i] = x[i] * _invSqrtDegree[i];
        RunRows(_product);
        for (int i = 0; i < Size; i++) y[i] = _product[i] * _invSqrtDegree[i];
    }

    /// <summary>Dense I − D^(-½)·A·D^(-½) (float64, row-major), for the small-graph dense solver and tests.</summary>
    public double[] DenseNormalizedLaplacian()
    {
        int n = Size;
        var l = new double[(long)n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                l[(long)i * n + j] = (i == j ? 1.0 : 0.0) - Weight(i, j) * _invSqrtDegree[i] * _invSqrtDegree[j];
        return l;
    }

    private void RunRows(double[] output)
    {
        // Σ_j A_ij z_j = ε·Σz + (1 − ε)·Σ_{j: B_ij} z_j
        double total = 0;
        for (int j = 0; j < Size; j++) total += _scaled[j];
        CpuParallel.For(_cpu, Size, RowGrain, new RowKernel(this, output, Eps * total, 1 - Eps));
    }

    /// <summary>Rows per thread below which a mat-vec is not split (a row is N/64 words).</summary>
    private int RowGrain => Math.Max(1, (1 << 14) / _words);

    private readonly struct RowKernel(AffinityGraph g, double[] output, double weak, double strong) : IRangeKernel
    {
        public void Execute(int start, int count)
        {
            for (int i = start; i < start + count; i++)
                output[i] = weak + strong * MaskedRowSum(g._bits.AsSpan(i * g._words, g._words), g._scaled);
        }
    }

    /// <summary>Σ of z_j over the set bits of one row; 4 doubles per nibble with a mask table (Vector256).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static double MaskedRowSum(ReadOnlySpan<ulong> row, double[] z)
    {
        ref double zb = ref MemoryMarshal.GetArrayDataReference(z);
        var masks = NibbleMasks;
        if (!Vector256.IsHardwareAccelerated)
        {
            double s = 0;
            for (int w = 0; w < row.Length; w++)
            {
                ulong bits = row[w];
                while (bits != 0)
                {
                    int b = BitOperations.TrailingZeroCount(bits);
                    s += Unsafe.Add(ref zb, w * 64 + b);
                    bits &= bits - 1;
                }
            }
            return s;
        }
        Vector256<double> acc0 = Vector256<double>.Zero, acc1 = Vector256<double>.Zero;
        for (int w = 0; w < row.Length; w++)
        {
            ulong bits = row[w];
            if (bits == 0) continue;
            nuint baseIndex = (nuint)(w * 64);
            if (bits == ulong.MaxValue)
            {
                for (nuint k = 0; k < 64; k += 8)
                {
                    acc0 += Vector256.LoadUnsafe(ref zb, baseIndex + k);
                    acc1 += Vector256.LoadUnsafe(ref zb, baseIndex + k + 4);
                }
                continue;
            }
            for (int nib = 0; nib < 16; nib += 2)
            {
                var m0 = masks[(int)(bits >> (4 * nib)) & 15];
                var m1 = masks[(int)(bits >> (4 * nib + 4)) & 15];
                acc0 += Vector256.LoadUnsafe(ref zb, baseIndex + (nuint)(nib * 4)) & m0;
                acc1 += Vector256.LoadUnsafe(ref zb, baseIndex + (nuint)(nib * 4 + 4)) & m1;
            }
        }
        return Vector256.Sum(acc0 + acc1);
    }

    private static readonly Vector256<double>[] NibbleMasks = BuildNibbleMasks();

    private static Vector256<double>[] BuildNibbleMasks()
    {
        var m = new Vector256<double>[16];
        for (int k = 0; k < 16; k++)
        {
            var lanes = new long[4];
            for (int b = 0; b < 4; b++) lanes[b] = (k >> b & 1) != 0 ? -1L : 0L;
            m[k] = Vector256.Create(lanes[0], lanes[1], lanes[2], lanes[3]).AsDouble();
        }
        return m;
    }
}
