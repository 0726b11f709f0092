using CrateIL.Compute.Ops;
using CrateIL.Compute.Tensors;

namespace CrateIL.Crate.Models;

public sealed partial class CrateModel
{
    private Tensor? _probeNormed, _probeQuery, _probeKey;

    /// <summary>
    /// The attention probabilities S = softmax(q_h·k_hᵀ·d^(−½)) [B, N + 1, N + 1] of head <paramref name="head"/> in
    /// layer <paramref name="layer"/> after the last forward pass, CLS row and column included (the notebook's
    /// <c>get_last_selfattention</c>, post-softmax, pre-dropout). For MSSA q = k = U·LN(X^l). The fused attention
    /// does not keep its probabilities, so they are recomputed here from the layer's saved input X^l with one
    /// LayerNorm, one projection and one batched score GEMM; any device.
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
        var (query, queryOffset, key, keyOffset, ld) = Project(layer);
        long stride = (long)t * ld;
        Gemm.Batched(_batch, t, t, d, 1f,
            new MatrixOperand(query, queryOffset + (long)head * d, ld, stride), false,
            new MatrixOperand(key, keyOffset + (long)head * d, ld, stride), true,
            0f, new MatrixOperand(output, 0, t, (long)t * t));
        Softmax.Forward(output, output, 1f / MathF.Sqrt(d));
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

    /// <summary>The query and key projections of layer l as (tensor, column offset) pairs sharing a row stride.</summary>
    private (Tensor Query, long QueryOffset, Tensor Key, long KeyOffset, int Ld) Project(int layer)
    {
        var y = NormedInput(layer);
        int rows = _batch * Tokens, inner = Config.Inner;
        var l = _layers[layer];
        if (l.Mssa is not null)
        {
            _probeQuery = EnsureProbe(_probeQuery, rows, inner);
            Gemm.MatMul(y, l.Mssa.Attention.Qkv.Value, _probeQuery, transB: true);
            return (_probeQuery, 0, _probeQuery, 0, inner);
        }
        var attention = l.Mhsa!.Attention;
        _probeKey = EnsureProbe(_probeKey, rows, 3 * inner);
        Gemm.MatMul(y, attention.QkvWeight.Value, _probeKey, transB: true);
        BiasAdd.Forward(_probeKey, attention.QkvBias.Value, _probeKey);
        return (_probeKey, 0, _probeKey, inner, 3 * inner);
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
        _probeNormed?.Dispose(); _probeQuery?.Dispose(); _probeKey?.Dispose();
        _probeNormed = _probeQuery = _probeKey = null;
    }
}
