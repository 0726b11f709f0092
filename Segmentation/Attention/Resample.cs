namespace CrateIL.Segmentation.Attention;

/// <summary>
/// Grid resampling with torch.nn.functional.interpolate semantics (crate-reference §8), computed in float32
/// like PyTorch's CPU kernels for float tensors.
/// </summary>
public static class Resample
{
    /// <summary>
    /// Legacy 'nearest' for an output size: src = min(floor(dst·(in/out)), in − 1). For an integer upscale s
    /// this equals scale_factor=s (src = floor(dst/s)), i.e. each patch becomes an s×s block (DINO's upsampling).
    /// </summary>
    /// <remarks>The same rule as <see cref="Imaging.BinaryMask.ResizeNearest"/>, for maps.</remarks>
    public static float[] Nearest(ReadOnlySpan<float> src, int height, int width, int outHeight, int outWidth)
    {
        MaskCut.BinaryMasks.Check(src.Length, height, width, nameof(src));
        if (outHeight < 1 || outWidth < 1) throw new ArgumentOutOfRangeException(nameof(outHeight), $"output size {outHeight}×{outWidth} must be positive");
        var dst = new float[(long)outHeight * outWidth];
        float sy = (float)height / outHeight, sx = (float)width / outWidth;
        var xs = new int[outWidth];
        for (int x = 0; x < outWidth; x++) xs[x] = Math.Min((int)MathF.Floor(x * sx), width - 1);
        for (int y = 0; y < outHeight; y++)
        {
            int ys = Math.Min((int)MathF.Floor(y * sy), height - 1);
            var srow = src.Slice(ys * width, width);
            var drow = dst.AsSpan(y * outWidth, outWidth);
            for (int x = 0; x < outWidth; x++) drow[x] = srow[xs[x]];
        }
        return dst;
    }

    /// <summary>
    /// Bilinear. alignCorners = false (PyTorch default): src = (dst + 0.5)·(in/out) − 0.5, negative values clamped
    /// to 0; alignCorners = true: src = dst·(in − 1)/(out − 1) (0 when out = 1). Taps i0 = floor(src),
    /// i1 = min(i0 + 1, in − 1), weights (1 − λ, λ), λ = src − i0; no antialiasing.
    /// </summary>
    public static float[] Bilinear(ReadOnlySpan<float> src, int height, int width, int outHeight, int outWidth, bool alignCorners = false)
    {
        MaskCut.BinaryMasks.Check(src.Length, height, width, nameof(src));
        if (outHeight < 1 || outWidth < 1) throw new ArgumentOutOfRangeException(nameof(outHeight), $"output size {outHeight}×{outWidth} must be positive");
        var (y0, y1, ly) = Taps(height, outHeight, alignCorners);
        var (x0, x1, lx) = Taps(width, outWidth, alignCorners);
        var dst = new float[(long)outHeight * outWidth];
        for (int y = 0; y < outHeight; y++)
        {
            var r0 = src.Slice(y0[y] * width, width);
            var r1 = src.Slice(y1[y] * width, width);
            float wy1 = ly[y], wy0 = 1 - wy1;
            for (int x = 0; x < outWidth; x++)
            {
                float wx1 = lx[x], wx0 = 1 - wx1;
                dst[(long)y * outWidth + x] = wy0 * (wx0 * r0[x0[x]] + wx1 * r0[x1[x]]) + wy1 * (wx0 * r1[x0[x]] + wx1 * r1[x1[x]]);
            }
        }
        return dst;
    }

    private static (int[] I0, int[] I1, float[] Lambda) Taps(int input, int output, bool alignCorners)
    {
        var i0 = new int[output];
        var i1 = new int[output];
        var l = new float[output];
        float scale = alignCorners
            ? (output > 1 ? (float)(input - 1) / (output - 1) : 0f)
            : (float)input / output;
        for (int d = 0; d < output; d++)
        {
            float s = alignCorners ? scale * d : Math.Max(scale * (d + 0.5f) - 0.5f, 0f);
            int a = Math.Min((int)s, input - 1);
            i0[d] = a;
            i1[d] = a < input - 1 ? a + 1 : a;
            l[d] = s - a;
        }
        return (i0, i1, l);
    }
}
