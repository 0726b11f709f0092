using CrateIL.Compute.Ops;
using CrateIL.Compute.Tensors;
using CrateIL.Nn.Layers;

namespace CrateIL.Crate.Models;

public sealed partial class CrateModel
{
    private Tensor? _probeNormed;

    /// <summary>Tests: picks the CPU attention path (<see cref="AttentionCore.FusedSymmetric"/>) of every MSSA layer whose core exists (after a forward pass).</summary>
    internal void UseFusedSymmetricAttention(bool fused)
    {
        foreach (var l in _layers) if (l.Mssa?.Attention.Core is { } core) core.FusedSymmetric = fused;
    }

    /// <summary>
    /// Every head's CLS→patch attention of layer <paramref name="layer"/> for the whole batch of the last forward pass,
    /// as the paper's Eq. 10 defines it: A_k,i = softmax_i over the N patch tokens of ⟨q_k(CLS), k_k(i)⟩·dh^−½ (the
    /// layer's own scale), written to <paramref name="output"/> [B, heads, gridRows, gridCols] (row-major patch grid,
    /// each head's map sums to 1). For MSSA q = k = U·LN(z); for MHSA the layer's query and key projections.
    /// <para>
    /// It reads the projections the forward pass saved (no second LayerNorm or projection, no N×N matrix): one
    /// batched 1×N score GEMM per head and one row softmax over the patches, on the model's device. Because the
    /// softmax runs over the scores themselves, peaked, tied and all-equal rows are all valid — unlike renormalising
    /// the CLS row of the full softmax, whose patch part can underflow to 0 when the CLS token attends to itself.
    /// </para>
    /// </summary>
    public void ClsAttention(int layer, Tensor output)
    {
        RequireForward();
        CheckLayer(layer);
        ArgumentNullException.ThrowIfNull(output);
        int heads = Config.Heads, d = Config.DimHead, t = Tokens, n = t - 1;
        if (output.Rank != 4 || output.Shape[0] != _batch || output.Shape[1] != heads || output.Shape[2] != _gridRows || output.Shape[3] != _gridCols)
            throw new ArgumentException($"{What}: output{output.Shape} must be [{_batch}, {heads}, {_gridRows}, {_gridCols}]", nameof(output));
        if (!ReferenceEquals(output.Device, Device))
            throw new ArgumentException($"{What}: output lives on {output.Device.Spec} but the model on {Device.Spec}", nameof(output));
        var (query, key) = SavedQueryKey(layer);
        long queryStride = (long)t * query.Ld, keyStride = (long)t * key.Ld;
        for (int h = 0; h < heads; h++)
            Gemm.Batched(_batch, 1, n, d, 1f,
                new MatrixOperand(query.Tensor, query.Offset + (long)h * d, query.Ld, queryStride), false,
                new MatrixOperand(key.Tensor, key.Ld + key.Offset + (long)h * d, key.Ld, keyStride), true,
                0f, new MatrixOperand(output, (long)h * n, n, (long)heads * n));
        using var rows = output.Reshape(_batch * heads, n);
        Softmax.Forward(rows, rows, 1f / MathF.Sqrt(d));
    }

    /// <summary>
    /// <see cref="ClsAttention(int, Tensor)"/> into a new tensor [B, heads, gridRows, gridCols] on the model's device
    /// (the caller disposes it). This is the one attention result the Segmentation layer consumes
    /// (<c>AttentionMaps.FromBatch</c>).
    /// </summary>
    public Tensor ClsAttention(int layer)
    {
        RequireForward();
        CheckLayer(layer);
        var output = Device.Allocate(_batch, Config.Heads, _gridRows, _gridCols);
        try
        {
            ClsAttention(layer, output);
            return output;
        }
        catch
        {
            output.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The full attention probabilities S = softmax(q_h·k_hᵀ·d^(−½)) [B, N + 1, N + 1] of head <paramref name="head"/> in
    /// layer <paramref name="layer"/> after the last forward pass, CLS row and column included (the notebook's
    /// <c>get_last_selfattention</c>, post-softmax, pre-dropout), for users who want whole rows (PCA, MaskCut
    /// affinities). For MSSA q = k = U·LN(X^l). The fused attention does not keep its probabilities, so they are
    /// formed here from the projections the forward pass saved with one batched score GEMM and a row softmax.
    /// For CLS→patch maps use <see cref="ClsAttention(int, Tensor)"/>.
    /// </summary>
    public void AttentionProbabilities(int layer, int head, Tensor output)
    {
        RequireForward();
        CheckLayer(layer);
        if (head < 0 || head >= Config.Heads)
            throw new ArgumentOutOfRangeException(nameof(head), head, $"{What}: head must be in [0, {Config.Heads - 1}]");
        ArgumentNullException.ThrowIfNull(output);
        int t = Tokens, d = Config.DimHead;
        CheckOutput(output, nameof(output), _batch, t, t);
        var (query, key) = SavedQueryKey(layer);
        Gemm.Batched(_batch, t, t, d, 1f,
            new MatrixOperand(query.Tensor, query.Offset + (long)head * d, query.Ld, (long)t * query.Ld), false,
            new MatrixOperand(key.Tensor, key.Offset + (long)head * d, key.Ld, (long)t * key.Ld), true,
            0f, new MatrixOperand(output, 0, t, (long)t * t));
        Softmax.Forward(output, output, 1f / MathF.Sqrt(d));
    }

    /// <summary>The query and key columns layer <paramref name="layer"/> saved in the last forward pass (MSSA: both are w).</summary>
    private (HeadColumns Query, HeadColumns Key) SavedQueryKey(int layer)
    {
        var l = _layers[layer];
        if (l.Mssa is not null)
        {
            var w = l.Mssa.Attention.Projection ?? throw new InvalidOperationException($"{What}: layer {layer} has no saved projection");
            return (w, w);
        }
        var mhsa = l.Mhsa!.Attention;
        return (mhsa.Queries ?? throw new InvalidOperationException($"{What}: layer {layer} has no saved projection"), mhsa.Keys!.Value);
    }

    /// <summary>
    /// The "key" features [B, N + 1, inner] of layer <paramref name="layer"/> after the last forward pass: the qkv
    /// output U·LN(X^l) for MSSA (the notebook's <c>get_last_key</c>; CLS at row 0), the key projection for MHSA.
    /// </summary>
    public void Keys(int layer, Tensor output)
    {
        RequireForward();
        CheckLayer(layer);
        ArgumentNullException.ThrowIfNull(output);
        int t = Tokens, inner = Config.Inner;
        CheckOutput(output, nameof(output), _batch, t, inner);
        var y = NormedInput(layer);
        var l = _layers[layer];
        using var rows = output.Reshape(_batch * t, inner);
        if (l.Mssa is not null)
        {
            Gemm.MatMul(y, l.Mssa.Attention.Qkv.Value, rows, transB: true);
            return;
        }
        var attention = l.Mhsa!.Attention;
        using var weight = attention.QkvWeight.Value.Slice((long)inner * Config.Dim, inner, Config.Dim);
        using var bias = attention.QkvBias.Value.Slice(inner, inner);
        Gemm.MatMul(y, weight, rows, transB: true);
        BiasAdd.Forward(rows, bias, rows);
    }

    /// <summary>LN(X^l) with the attention half's norm, into a reused [B·(N + 1), dim] buffer.</summary>
    private Tensor NormedInput(int layer)
    {
        int rows = _batch * Tokens, dim = Config.Dim;
        _probeNormed = EnsureProbe(_probeNormed, rows, dim);
        using var x = _x[layer].Reshape(rows, dim);
        var l = _layers[layer];
        LayerNorm.Forward(x, l.NormWeight.Value, l.NormBias.Value, _probeNormed);
        return _probeNormed;
    }

    private Tensor EnsureProbe(Tensor? buffer, int rows, int cols)
    {
        if (buffer is not null && buffer.Shape[0] == rows && buffer.Shape[1] == cols) return buffer;
        buffer?.Dispose();
        return Device.Allocate(rows, cols);
    }

    private void CheckOutput(Tensor output, string name, int d0, int d1, int d2)
    {
        if (output.Rank != 3 || output.Shape[0] != d0 || output.Shape[1] != d1 || output.Shape[2] != d2)
            throw new ArgumentException($"{What}: {name}{output.Shape} must be [{d0}, {d1}, {d2}]", name);
        if (!ReferenceEquals(output.Device, Device))
            throw new ArgumentException($"{What}: {name} lives on {output.Device.Spec} but the model on {Device.Spec}", name);
    }

    private void ReleaseProbeBuffers()
    {
        _probeNormed?.Dispose();
        _probeNormed = null;
    }
}
