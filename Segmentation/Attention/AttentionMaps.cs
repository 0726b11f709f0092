using CrateIL.Compute.Tensors;
using CrateIL.Imaging;

namespace CrateIL.Segmentation.Attention;

/// <summary>How per-head maps are combined.</summary>
public enum HeadAggregation
{
    /// <summary>Keep every head.</summary>
    PerHead,
    /// <summary>Mean over heads (DINO video_generation.py: Σ_k a_k / K).</summary>
    Mean,
    /// <summary>Element-wise maximum over heads.</summary>
    Max,
}

/// <summary>
/// CLS→patch attention maps [heads, h, w] (row-major patch grid, token t = r·w + c), float32.
/// Built from a layer's post-softmax attention [heads, N+1, N+1] (CLS at index 0) or from its CLS rows.
/// With <c>renormalize: true</c> (default) each head's row is rescaled to sum to 1 over the N patches, which is
/// exactly the paper's Eq. 10 (a softmax over patches only); <c>false</c> keeps DINO's raw A[k, 0, 1:] values.
/// </summary>
public sealed class AttentionMaps
{
    private readonly float[] _values;

    public AttentionMaps(float[] values, int heads, int height, int width)
    {
        if (heads < 1 || height < 1 || width < 1) throw new ArgumentOutOfRangeException(nameof(heads), $"maps {heads}×{height}×{width} must be non-empty");
        if (values.Length != (long)heads * height * width) throw new ArgumentException($"{values.Length} values do not make {heads}×{height}×{width} maps", nameof(values));
        _values = values;
        Heads = heads; Height = height; Width = width;
    }

    public int Heads { get; }
    public int Height { get; }
    public int Width { get; }
    public int Tokens => Height * Width;

    /// <summary>All maps, head-major [heads, h·w].</summary>
    public ReadOnlySpan<float> Values => _values;

    public ReadOnlySpan<float> Head(int k)
    {
        if ((uint)k >= (uint)Heads) throw new ArgumentOutOfRangeException(nameof(k), k, $"head must be in 0..{Heads - 1}");
        return _values.AsSpan(k * Tokens, Tokens);
    }

    /// <summary>From post-softmax attention [heads, N+1, N+1] (CLS token at index 0): row 0, columns 1..N.</summary>
    public static AttentionMaps FromAttention(ReadOnlySpan<float> attention, int heads, int gridHeight, int gridWidth, bool renormalize = true)
    {
        if (heads < 1 || gridHeight < 1 || gridWidth < 1) throw new ArgumentOutOfRangeException(nameof(heads), "heads and grid must be positive");
        int n = gridHeight * gridWidth, t = n + 1;
        if (attention.Length != (long)heads * t * t)
            throw new ArgumentException($"attention has {attention.Length} values, {heads} heads × {t}×{t} (CLS + {gridHeight}×{gridWidth} patches) expected", nameof(attention));
        var v = new float[heads * n];
        for (int k = 0; k < heads; k++)
            attention.Slice(k * t * t + 1, n).CopyTo(v.AsSpan(k * n, n));
        return Finish(v, heads, gridHeight, gridWidth, renormalize);
    }

    /// <summary>From a Tensor [heads, N+1, N+1] or [1, heads, N+1, N+1] (copied to the host).</summary>
    public static AttentionMaps FromAttention(Tensor attention, int gridHeight, int gridWidth, bool renormalize = true)
    {
        int rank = attention.Rank;
        if (rank is < 3 or > 4 || (rank == 4 && attention.Shape[0] != 1))
            throw new ArgumentException($"attention must be [heads, N+1, N+1] or [1, heads, N+1, N+1], got {attention.Shape}", nameof(attention));
        return FromAttention(attention.ToArray(), attention.Shape[-3], gridHeight, gridWidth, renormalize);
    }

    /// <summary>
    /// One <see cref="AttentionMaps"/> per image from a batch of CLS→patch maps [B, heads, gridRows, gridCols] — the
    /// tensor a model's <c>ClsAttention(layer)</c> returns (each head already a softmax over the patches, Eq. 10), read
    /// to the host once. The values are taken as they are (no renormalisation).
    /// </summary>
    public static AttentionMaps[] FromBatch(Tensor maps)
    {
        ArgumentNullException.ThrowIfNull(maps);
        if (maps.Rank != 4) throw new ArgumentException($"CLS attention maps must be [batch, heads, gridRows, gridCols], got {maps.Shape}", nameof(maps));
        int batch = maps.Shape[0], heads = maps.Shape[1], h = maps.Shape[2], w = maps.Shape[3];
        var host = maps.ToArray();
        int per = heads * h * w;
        var result = new AttentionMaps[batch];
        for (int b = 0; b < batch; b++)
            result[b] = Finish(host.AsSpan(b * per, per).ToArray(), heads, h, w, renormalize: false);
        return result;
    }

    /// <summary>From CLS rows [heads, N+1] (with the CLS column first) or [heads, N] (patch columns only).</summary>
    public static AttentionMaps FromClsRows(ReadOnlySpan<float> rows, int heads, int gridHeight, int gridWidth, bool includesClsColumn, bool renormalize = true)
    {
        int n = gridHeight * gridWidth, stride = includesClsColumn ? n + 1 : n;
        if (heads < 1 || n < 1) throw new ArgumentOutOfRangeException(nameof(heads), "heads and grid must be positive");
        if (rows.Length != (long)heads * stride) throw new ArgumentException($"CLS rows have {rows.Length} values, {heads}×{stride} expected", nameof(rows));
        var v = new float[heads * n];
        for (int k = 0; k < heads; k++)
            rows.Slice(k * stride + (includesClsColumn ? 1 : 0), n).CopyTo(v.AsSpan(k * n, n));
        return Finish(v, heads, gridHeight, gridWidth, renormalize);
    }

    private static AttentionMaps Finish(float[] v, int heads, int h, int w, bool renormalize)
    {
        int n = h * w;
        for (int i = 0; i < v.Length; i++)
            if (!float.IsFinite(v[i])) throw new ArgumentException($"attention value of head {i / n}, patch {i % n} is {v[i]}");
        if (renormalize)
            for (int k = 0; k < heads; k++)
            {
                var row = v.AsSpan(k * n, n);
                double s = 0;
                foreach (float x in row) s += x;
                if (s <= 0) throw new ArgumentException($"attention row of head {k} sums to {s}; cannot renormalise");
                float inv = (float)(1 / s);
                for (int i = 0; i < n; i++) row[i] *= inv;
            }
        return new AttentionMaps(v, heads, h, w);
    }

    /// <summary>Combines heads (<see cref="HeadAggregation.PerHead"/> returns this instance).</summary>
    public AttentionMaps Aggregate(HeadAggregation aggregation)
    {
        if (aggregation == HeadAggregation.PerHead) return this;
        int n = Tokens;
        var r = new float[n];
        if (aggregation == HeadAggregation.Max) Array.Fill(r, float.NegativeInfinity);
        for (int k = 0; k < Heads; k++)
        {
            var h = Head(k);
            for (int i = 0; i < n; i++)
                r[i] = aggregation == HeadAggregation.Mean ? r[i] + h[i] : Math.Max(r[i], h[i]);
        }
        if (aggregation == HeadAggregation.Mean)
            for (int i = 0; i < n; i++) r[i] /= Heads;
        return new AttentionMaps(r, 1, Height, Width);
    }

    /// <summary>Selects a subset of heads.</summary>
    public AttentionMaps SelectHeads(ReadOnlySpan<int> heads)
    {
        var r = new float[heads.Length * Tokens];
        for (int i = 0; i < heads.Length; i++) Head(heads[i]).CopyTo(r.AsSpan(i * Tokens, Tokens));
        return new AttentionMaps(r, heads.Length, Height, Width);
    }

    /// <summary>Per-head binary masks with the paper's top-P rule (Appendix B.3).</summary>
    public BinaryMask[] TopFractionMasks(double fraction = AttentionThreshold.PaperTopFraction)
    {
        var m = new BinaryMask[Heads];
        for (int k = 0; k < Heads; k++) m[k] = AttentionThreshold.TopFraction(Head(k), Height, Width, fraction);
        return m;
    }

    /// <summary>Per-head binary masks with DINO's cumulative-mass rule.</summary>
    public BinaryMask[] MassMasks(double mass = AttentionThreshold.DinoMass)
    {
        var m = new BinaryMask[Heads];
        for (int k = 0; k < Heads; k++) m[k] = AttentionThreshold.CumulativeMass(Head(k), Height, Width, mass);
        return m;
    }

    /// <summary>Every head upsampled to an image size (nearest or bilinear, PyTorch semantics; see <see cref="Resample"/>).</summary>
    public AttentionMaps Upsample(int outHeight, int outWidth, bool bilinear = false, bool alignCorners = false)
    {
        int outN = outHeight * outWidth;
        var r = new float[(long)Heads * outN];
        for (int k = 0; k < Heads; k++)
        {
            var up = bilinear
                ? Resample.Bilinear(Head(k), Height, Width, outHeight, outWidth, alignCorners)
                : Resample.Nearest(Head(k), Height, Width, outHeight, outWidth);
            up.CopyTo(r, (long)k * outN);
        }
        return new AttentionMaps(r, Heads, outHeight, outWidth);
    }
}
