using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;

namespace CrateIL.Nn.Layers;

/// <summary>
/// Per-head columns of a token-row matrix: token t of batch entry b is row b·n + t of <see cref="Tensor"/> (row stride
/// <see cref="Ld"/>), and head h occupies columns <see cref="Offset"/> + h·dh … + dh − 1. MSSA's projection w [rows, heads·dh]
/// is (w, 0, heads·dh); timm's fused qkv [rows, 3·inner] gives q, k and v as (qkv, 0 | inner | 2·inner, 3·inner).
/// </summary>
public readonly record struct HeadColumns(Tensor Tensor, int Offset, int Ld);

/// <summary>
/// Multi-head scaled dot-product attention over column slices, forward and backward, on every backend:
/// per batch entry b and head h, O_h = softmax(Q_h·K_hᵀ·scale)·V_h with scale = dh^−½. This is the core shared by
/// MSSA (Q = K = V = w: pass the same columns three times and use <see cref="BackwardShared"/>, which returns the one
/// gradient dw = dQ + dK + dV) and the ViT baseline's MHSA (separate q, k, v).
/// <para>
/// The object owns what the backward pass needs from the forward pass, sized on the first call for a given
/// (batch, n) and reused afterwards. CPU: per-head score/probability buffers and SGEMM over column slices (the
/// probabilities are kept for backward when they fit <see cref="SavedProbabilityBudget"/>, else recomputed).
/// ILGPU: flash-style fused kernels (scores tile by tile with an online softmax; the per-row log-sum-exp is the only
/// thing saved; backward recomputes probabilities from it), no N×N buffer at any size.
/// </para>
/// </summary>
public sealed class AttentionCore : IDisposable
{
    /// <summary>Bytes of probabilities the CPU path keeps between forward and backward (above this it recomputes them).</summary>
    public const long DefaultSavedProbabilityBudget = 256L << 20;

    private readonly AttentionCpu? _cpu;
    private readonly AttentionIlgpu? _ilgpu;
    private int _batch = -1, _n = -1;
    private long _rows;
    private bool _forwardDone;

    public AttentionCore(Device device, int heads, int headDim)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (heads < 1) throw new ArgumentOutOfRangeException(nameof(heads), heads, "Attention needs at least one head");
        if (headDim < 1) throw new ArgumentOutOfRangeException(nameof(headDim), headDim, "Attention head dimension must be positive");
        Device = device;
        Heads = heads;
        HeadDim = headDim;
        Scale = 1f / MathF.Sqrt(headDim);
        switch (device)
        {
            case CpuDevice cpu: _cpu = new AttentionCpu(cpu, heads, headDim, Scale); break;
            case IlgpuDevice gpu:
                if (headDim > AttentionIlgpu.MaxHeadDim)
                    throw new ArgumentOutOfRangeException(nameof(headDim), headDim, $"The ILGPU attention kernels support head dimensions up to {AttentionIlgpu.MaxHeadDim}");
                _ilgpu = new AttentionIlgpu(gpu, heads, headDim, Scale);
                break;
            default: throw new NotSupportedException($"Attention has no implementation for device {device.Spec}");
        }
    }

    public Device Device { get; }
    public int Heads { get; }
    public int HeadDim { get; }

    /// <summary>The softmax temperature dh^−½.</summary>
    public float Scale { get; }

    /// <summary>CPU only: bytes of probabilities kept from forward to backward (default 256 MiB); above it backward recomputes them.</summary>
    public long SavedProbabilityBudget
    {
        get => _cpu?.SavedBudget ?? 0;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            if (_cpu is not null) _cpu.SavedBudget = value;
        }
    }

    /// <summary>
    /// CPU only: run MSSA's Q = K = V attention through the fused symmetric kernels (default true; see
    /// <c>SymmetricAttentionCpu</c>): no N×N matrix, per-row state saved for backward. False takes the materialised
    /// path (score and probability matrices, kept within <see cref="SavedProbabilityBudget"/>) — for A/B benchmarks and tests.
    /// </summary>
    public bool FusedSymmetric
    {
        get => _cpu?.FusedSymmetric ?? false;
        set { if (_cpu is not null) _cpu.FusedSymmetric = value; }
    }

    /// <summary>CPU: whether the last forward pass took the fused symmetric path (false on ILGPU devices and after a fallback).</summary>
    public bool LastForwardFused => _cpu?.LastForwardFused ?? false;

    /// <summary>O = attention(Q, K, V) for <paramref name="batch"/> entries of <paramref name="n"/> tokens; saves what backward needs.</summary>
    public void Forward(int batch, int n, HeadColumns q, HeadColumns k, HeadColumns v, HeadColumns o)
    {
        CheckSizes(batch, n);
        Check(nameof(q), q, batch, n); Check(nameof(k), k, batch, n); Check(nameof(v), v, batch, n); Check(nameof(o), o, batch, n);
        CheckDisjoint(nameof(o), o, nameof(q), q); CheckDisjoint(nameof(o), o, nameof(k), k); CheckDisjoint(nameof(o), o, nameof(v), v);
        _batch = batch; _n = n;
        if (_cpu is not null) _cpu.Forward(batch, n, q, k, v, o);
        else _ilgpu!.Forward(batch, n, q, k, v, o);
        _forwardDone = true;
    }

    /// <summary>
    /// Gradients of the last <see cref="Forward"/> (same operands): dQ, dK, dV are assigned. The six output and
    /// input column sets must not overlap each other's storage where written (dQ, dK, dV may share one tensor
    /// at different column offsets, as timm's fused qkv gradient).
    /// </summary>
    public void Backward(int batch, int n, HeadColumns q, HeadColumns k, HeadColumns v, HeadColumns o, HeadColumns dO,
        HeadColumns dq, HeadColumns dk, HeadColumns dv)
    {
        CheckBackward(batch, n);
        Check(nameof(q), q, batch, n); Check(nameof(k), k, batch, n); Check(nameof(v), v, batch, n); Check(nameof(o), o, batch, n);
        Check(nameof(dO), dO, batch, n); Check(nameof(dq), dq, batch, n); Check(nameof(dk), dk, batch, n); Check(nameof(dv), dv, batch, n);
        CheckGradient(nameof(dq), dq, q, k, v, o, dO);
        CheckGradient(nameof(dk), dk, q, k, v, o, dO);
        CheckGradient(nameof(dv), dv, q, k, v, o, dO);
        CheckDisjoint(nameof(dq), dq, nameof(dk), dk); CheckDisjoint(nameof(dq), dq, nameof(dv), dv); CheckDisjoint(nameof(dk), dk, nameof(dv), dv);
        if (_cpu is not null) _cpu.Backward(batch, n, q, k, v, o, dO, dq, dk, dv);
        else _ilgpu!.Backward(batch, n, q, k, v, o, dO, dq, dk, dv);
    }

    /// <summary>
    /// Gradient of the last <see cref="Forward"/> called with Q = K = V = <paramref name="w"/> (MSSA): the single
    /// dw = dQ + dK + dV is assigned, without any atomics.
    /// </summary>
    public void BackwardShared(int batch, int n, HeadColumns w, HeadColumns o, HeadColumns dO, HeadColumns dw)
    {
        CheckBackward(batch, n);
        Check(nameof(w), w, batch, n); Check(nameof(o), o, batch, n); Check(nameof(dO), dO, batch, n); Check(nameof(dw), dw, batch, n);
        CheckDisjoint(nameof(dw), dw, nameof(w), w); CheckDisjoint(nameof(dw), dw, nameof(o), o); CheckDisjoint(nameof(dw), dw, nameof(dO), dO);
        if (_cpu is not null) _cpu.BackwardShared(batch, n, w, o, dO, dw);
        else _ilgpu!.BackwardShared(batch, n, w, o, dO, dw);
    }

    /// <summary>
    /// CPU only, for tests: the probabilities of (batch entry, head) from the last forward pass when they were kept
    /// (empty when they were not kept for that entry, or on an ILGPU device, which never forms them).
    /// </summary>
    internal ReadOnlySpan<float> SavedProbabilities(int b, int h) => _cpu is null ? default : _cpu.SavedProbabilities(b, h);

    private void CheckSizes(int batch, int n)
    {
        _rows = (long)Math.Max(0, batch) * Math.Max(0, n);
        if (batch < 1) throw new ArgumentOutOfRangeException(nameof(batch), batch, "Attention needs at least one batch entry");
        if (n < 1) throw new ArgumentOutOfRangeException(nameof(n), n, "Attention needs at least one token");
        if ((long)batch * Heads * n > int.MaxValue)
            throw new ArgumentException($"Attention: batch {batch} × heads {Heads} × tokens {n} exceeds {int.MaxValue} rows");
    }

    private void CheckBackward(int batch, int n)
    {
        CheckSizes(batch, n);
        if (!_forwardDone) throw new InvalidOperationException("Attention backward needs a forward pass first");
        if (batch != _batch || n != _n)
            throw new InvalidOperationException($"Attention backward for batch {batch}, n {n} but the last forward had batch {_batch}, n {_n}");
    }

    private void Check(string name, HeadColumns c, int batch, int n)
    {
        if (c.Tensor is null) throw new ArgumentNullException(name, $"Attention: {name} has no tensor");
        if (c.Tensor.IsDisposed) throw new ObjectDisposedException(name, $"Attention: {name} was disposed");
        if (!ReferenceEquals(c.Tensor.Device, Device))
            throw new ArgumentException($"Attention: {name} lives on {c.Tensor.Device.Spec}, the attention core on {Device.Spec}", name);
        int width = Heads * HeadDim;
        if (c.Offset < 0 || c.Ld < 1 || c.Offset + width > c.Ld)
            throw new ArgumentException($"Attention: {name} columns [{c.Offset}, {c.Offset + width}) do not fit its row stride {c.Ld}", name);
        long needed = ((long)batch * n - 1) * c.Ld + c.Offset + width;
        if (needed > c.Tensor.Length)
            throw new ArgumentException($"Attention: {name}{c.Tensor.Shape} holds {c.Tensor.Length} elements, {batch}×{n} token rows of stride {c.Ld} need {needed}", name);
        if (_ilgpu is not null && c.Tensor.Length > int.MaxValue)
            throw new ArgumentException($"Attention: {name}{c.Tensor.Shape} has more than {int.MaxValue} elements, beyond the ILGPU kernels' 32-bit indexing", name);
    }

    private void CheckGradient(string name, HeadColumns g, HeadColumns q, HeadColumns k, HeadColumns v, HeadColumns o, HeadColumns dO)
    {
        CheckDisjoint(name, g, nameof(q), q); CheckDisjoint(name, g, nameof(k), k); CheckDisjoint(name, g, nameof(v), v);
        CheckDisjoint(name, g, nameof(o), o); CheckDisjoint(name, g, nameof(dO), dO);
    }

    /// <summary>
    /// A written operand must not share storage with another operand unless their element ranges are disjoint or
    /// they are different column ranges of the same rows (q, k, v inside one fused qkv matrix).
    /// </summary>
    private void CheckDisjoint(string outName, HeadColumns output, string inName, HeadColumns input)
    {
        if (!ReferenceEquals(output.Tensor.Storage, input.Tensor.Storage)) return;
        int width = Heads * HeadDim;
        long rows = (long)Math.Max(1, _rows);
        long a0 = output.Tensor.Offset + output.Offset, b0 = input.Tensor.Offset + input.Offset;
        long a1 = a0 + (rows - 1) * output.Ld + width, b1 = b0 + (rows - 1) * input.Ld + width;
        if (a1 <= b0 || b1 <= a0) return;
        bool sameRows = output.Ld == input.Ld && a0 / output.Ld == b0 / input.Ld;
        long ca = a0 % output.Ld, cb = b0 % input.Ld;
        if (sameRows && (ca + width <= cb || cb + width <= ca) && Math.Max(ca, cb) + width <= output.Ld) return;
        throw new ArgumentException($"Attention: {outName} overlaps {inName} in storage; outputs must not alias inputs or each other", outName);
    }

    public void Dispose()
    {
        _cpu?.Dispose();
        _ilgpu?.Dispose();
    }
}
