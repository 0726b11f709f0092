using CrateIL.Compute.Ops;

namespace CrateIL.Nn.Layers;

/// <summary>Float64 reference of <see cref="Patchify"/> and <see cref="PatchEmbedding"/>.</summary>
public static class PatchEmbeddingReference
{
    /// <summary>[B, C, H, W] → [B, N, P·P·C], channel innermost (einops 'b c (h p1) (w p2) -> b (h w) (p1 p2 c)').</summary>
    public static double[] Patchify(double[] image, int batch, int channels, int height, int width, int patch)
    {
        int rows = height / patch, cols = width / patch, pd = patch * patch * channels;
        var patches = new double[image.Length];
        for (int b = 0; b < batch; b++)
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++)
                    for (int p1 = 0; p1 < patch; p1++)
                        for (int p2 = 0; p2 < patch; p2++)
                            for (int ch = 0; ch < channels; ch++)
                                patches[((b * rows + r) * cols + c) * pd + (p1 * patch + p2) * channels + ch] =
                                    image[((b * channels + ch) * height + r * patch + p1) * width + c * patch + p2];
        return patches;
    }

    /// <summary>The inverse permutation of <see cref="Patchify"/>.</summary>
    public static double[] Unpatchify(double[] patches, int batch, int channels, int height, int width, int patch)
    {
        int rows = height / patch, cols = width / patch, pd = patch * patch * channels;
        var image = new double[patches.Length];
        for (int b = 0; b < batch; b++)
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++)
                    for (int p1 = 0; p1 < patch; p1++)
                        for (int p2 = 0; p2 < patch; p2++)
                            for (int ch = 0; ch < channels; ch++)
                                image[((b * channels + ch) * height + r * patch + p1) * width + c * patch + p2] =
                                    patches[((b * rows + r) * cols + c) * pd + (p1 * patch + p2) * channels + ch];
        return image;
    }

    /// <summary>Parameters under their roles: LN₁ (γ₁, β₁), Linear₂ (W [dim, pd], b), LN₃ (γ₃, β₃).</summary>
    public sealed record Params(double[] Gamma1, double[] Beta1, double[] W, double[] B, double[] Gamma3, double[] Beta3);

    public sealed record Saved(double[] Patches, double[] Mean1, double[] Rstd1, double[] Normed, double[] Projected, double[] Mean3, double[] Rstd3);

    public sealed record Grads(double[] DImage, double[] DGamma1, double[] DBeta1, double[] DW, double[] DB, double[] DGamma3, double[] DBeta3);

    public static (double[] Tokens, Saved Saved) Forward(double[] image, Params p, int batch, int channels, int height, int width, int patch, int dim)
    {
        int pd = patch * patch * channels, rows = batch * (height / patch) * (width / patch);
        var patches = Patchify(image, batch, channels, height, width, patch);
        var (normed, m1, r1) = LayerNormReference.Forward(patches, p.Gamma1, p.Beta1, rows, pd);
        var projected = LinearReference.Forward(normed, p.W, p.B, rows, pd, dim);
        var (tokens, m3, r3) = LayerNormReference.Forward(projected, p.Gamma3, p.Beta3, rows, dim);
        return (tokens, new Saved(patches, m1, r1, normed, projected, m3, r3));
    }

    public static Grads Backward(double[] dTokens, Params p, Saved s, int batch, int channels, int height, int width, int patch, int dim)
    {
        int pd = patch * patch * channels, rows = batch * (height / patch) * (width / patch);
        var (dProjected, dg3, db3) = LayerNormReference.Backward(dTokens, s.Projected, p.Gamma3, s.Mean3, s.Rstd3, rows, dim);
        var (dNormed, dw, db) = LinearReference.Backward(s.Normed, p.W, dProjected, rows, pd, dim);
        var (dPatches, dg1, db1) = LayerNormReference.Backward(dNormed, s.Patches, p.Gamma1, s.Mean1, s.Rstd1, rows, pd);
        return new Grads(Unpatchify(dPatches, batch, channels, height, width, patch), dg1, db1, dw, db, dg3, db3);
    }
}

/// <summary>Float64 reference of <see cref="PositionalEmbedding"/> and <see cref="BicubicResize"/>.</summary>
public static class PositionalEmbeddingReference
{
    /// <summary>X⁰[b] = concat(cls, e[b]) + table, table [N + 1, dim].</summary>
    public static double[] Forward(double[] e, double[] cls, double[] table, int batch, int tokens, int dim)
    {
        var x0 = new double[batch * (tokens + 1) * dim];
        for (int b = 0; b < batch; b++)
            for (int n = 0; n <= tokens; n++)
                for (int j = 0; j < dim; j++)
                    x0[(b * (tokens + 1) + n) * dim + j] = table[n * dim + j] + (n == 0 ? cls[j] : e[(b * tokens + n - 1) * dim + j]);
        return x0;
    }

    /// <summary>de (assigned), dcls and dpos (fresh sums over the batch).</summary>
    public static (double[] De, double[] DCls, double[] DPos) Backward(double[] dx0, int batch, int tokens, int dim)
    {
        var de = new double[batch * tokens * dim];
        var dcls = new double[dim];
        var dpos = new double[(tokens + 1) * dim];
        for (int b = 0; b < batch; b++)
            for (int n = 0; n <= tokens; n++)
                for (int j = 0; j < dim; j++)
                {
                    double g = dx0[(b * (tokens + 1) + n) * dim + j];
                    dpos[n * dim + j] += g;
                    if (n == 0) dcls[j] += g;
                    else de[(b * tokens + n - 1) * dim + j] = g;
                }
        return (de, dcls, dpos);
    }

    /// <summary>
    /// Bicubic resampling of a channels-last grid in float64 (A = −0.75, border-clamped taps, align_corners=False):
    /// source coordinate = scale·(dst + 0.5) − 0.5 with <paramref name="scaleRows"/>/<paramref name="scaleCols"/> the
    /// dst→src factors (in/out for a size, 1/s for a scale factor s).
    /// </summary>
    public static double[] Bicubic(double[] src, int inRows, int inCols, int channels, int outRows, int outCols, double scaleRows, double scaleCols)
    {
        var dst = new double[outRows * outCols * channels];
        for (int oy = 0; oy < outRows; oy++)
        {
            var (iy, wy) = Taps(scaleRows, oy, inRows);
            for (int ox = 0; ox < outCols; ox++)
            {
                var (ix, wx) = Taps(scaleCols, ox, inCols);
                for (int ch = 0; ch < channels; ch++)
                {
                    double v = 0;
                    for (int a = 0; a < 4; a++)
                    {
                        double row = 0;
                        for (int c = 0; c < 4; c++) row += wx[c] * src[(iy[a] * inCols + ix[c]) * channels + ch];
                        v += wy[a] * row;
                    }
                    dst[(oy * outCols + ox) * channels + ch] = v;
                }
            }
        }
        return dst;
    }

    /// <summary>Keys' cubic convolution kernel with A = −0.75 (PyTorch's bicubic).</summary>
    public static double Cubic(double x)
    {
        const double a = -0.75;
        x = Math.Abs(x);
        if (x <= 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
        if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
        return 0;
    }

    private static (int[] Index, double[] Weight) Taps(double scale, int dst, int inSize)
    {
        double real = scale * (dst + 0.5) - 0.5;
        int i = (int)Math.Floor(real);
        double t = real - i;
        var index = new int[4];
        var weight = new double[4];
        for (int k = 0; k < 4; k++)
        {
            index[k] = Math.Clamp(i - 1 + k, 0, inSize - 1);
            weight[k] = Cubic(t - (k - 1));
        }
        return (index, weight);
    }
}
