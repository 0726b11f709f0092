using CrateIL.Compute.Devices;
using CrateIL.Imaging;
using CrateIL.Segmentation.MaskCut;

namespace CrateIL.Segmentation.Pca;

/// <summary>Which side of the first component is foreground.</summary>
public enum ForegroundSign
{
    /// <summary>Choose per run: the side whose masks touch fewer border patches over all images (ties: smaller area, then Positive).</summary>
    Auto,
    /// <summary>Normalised first component &gt; threshold (CRATE's default).</summary>
    Positive,
    /// <summary>Normalised first component &lt; threshold (CRATE's <c>inv</c> flag).</summary>
    Negative,
}

public sealed record PcaFeatureMapOptions
{
    /// <summary>Threshold on the per-image min–max normalised first component (CRATE code: 0.5).</summary>
    public double Threshold { get; init; } = 0.5;

    public ForegroundSign Sign { get; init; } = ForegroundSign.Auto;

    /// <summary>binary_fill_holes on the foreground mask (CRATE code: yes).</summary>
    public bool FillHoles { get; init; } = true;
}

/// <summary>Per-image output: first component (normalised to [0, 1]), foreground mask, RGB components.</summary>
public sealed record PcaImageMap(float[] FirstComponent, BinaryMask Foreground, float[] Components, byte[] Rgb);

public sealed record PcaFeatureMapResult(IReadOnlyList<PcaImageMap> Images, ForegroundSign SignUsed,
    PrincipalComponents Stage1, PrincipalComponents? Stage2);

/// <summary>
/// The two-stage PCA visualisation of the CRATE emergence paper (Appendix B.2) with the semantics of CRATE's
/// vis_utils/pca_visualization.py (crate-reference §3), over a set of images' patch features [N, D] each:
/// 1. PCA(1) on the tokens of all images together; per image the component is min–max normalised over the
///    grid and thresholded (&gt; 0.5; side chosen by <see cref="ForegroundSign"/>, since the component's sign is
///    arbitrary), then holes are filled (4-connectivity). (The paper states a hard threshold σ_λ on the raw
///    projection; the released code's normalised threshold is what we follow.)
/// 2. PCA(3) on the foreground tokens of all images only; per image the projections are scattered back,
///    background entries set to (image minimum, 0 included when background exists) − 1, and each channel
///    min–max normalised to [0, 1] → RGB8 (truncating ×255, numpy astype(uint8)); background becomes black.
/// </summary>
public static class PcaFeatureMaps
{
    /// <param name="cpu">Threads for the covariance products; null runs on the calling thread.</param>
    public static PcaFeatureMapResult Compute(IReadOnlyList<float[]> images, int gridHeight, int gridWidth, int dim, PcaFeatureMapOptions? options = null, CpuDevice? cpu = null)
    {
        options ??= new PcaFeatureMapOptions();
        int n = gridHeight * gridWidth;
        if (images.Count == 0) throw new ArgumentException("no images", nameof(images));
        for (int j = 0; j < images.Count; j++)
            if (images[j].Length != (long)n * dim)
                throw new ArgumentException($"image {j} has {images[j].Length} feature values, {gridHeight}×{gridWidth} patches × {dim} expected", nameof(images));
        var all = new float[(long)images.Count * n * dim];
        for (int j = 0; j < images.Count; j++) images[j].CopyTo(all, (long)j * n * dim);
        var stage1 = PrincipalComponents.Fit(all, images.Count * n, dim, 1, cpu);
        var first = stage1.Transform(all, images.Count * n);

        var normalized = new float[images.Count][];
        for (int j = 0; j < images.Count; j++)
        {
            var s = first.AsSpan(j * n, n);
            double lo = double.PositiveInfinity, hi = double.NegativeInfinity;
            foreach (double x in s) { lo = Math.Min(lo, x); hi = Math.Max(hi, x); }
            var m = new float[n];
            double range = hi - lo;
            for (int i = 0; i < n; i++) m[i] = range > 0 ? (float)((s[i] - lo) / range) : 0f;
            normalized[j] = m;
        }
        var sign = options.Sign;
        if (sign == ForegroundSign.Auto)
        {
            var (bp, ap) = BorderAndArea(normalized, ForegroundSign.Positive, options, gridHeight, gridWidth);
            var (bn, an) = BorderAndArea(normalized, ForegroundSign.Negative, options, gridHeight, gridWidth);
            sign = bn < bp || (bn == bp && an < ap) ? ForegroundSign.Negative : ForegroundSign.Positive;
        }
        var fg = new BinaryMask[images.Count];
        for (int j = 0; j < images.Count; j++) fg[j] = ForegroundMask(normalized[j], sign, options, gridHeight, gridWidth);

        int fgCount = 0;
        foreach (var m in fg) fgCount += (int)m.Area;
        PrincipalComponents? stage2 = null;
        double[]? proj = null;
        float[]? fgRows = null;
        if (fgCount >= 2)
        {
            fgRows = new float[(long)fgCount * dim];
            int r = 0;
            for (int j = 0; j < images.Count; j++)
                for (int i = 0; i < n; i++)
                    if (fg[j].Pixels[i] != 0) images[j].AsSpan(i * dim, dim).CopyTo(fgRows.AsSpan(r++ * dim, dim));
            int comps = Math.Min(3, dim);
            stage2 = PrincipalComponents.Fit(fgRows, fgCount, dim, comps, cpu);
            proj = stage2.Transform(fgRows, fgCount);
        }

        var result = new List<PcaImageMap>(images.Count);
        int at = 0;
        for (int j = 0; j < images.Count; j++)
        {
            var comps = new float[n * 3];
            var rgb = new byte[n * 3];
            if (proj is not null)
            {
                int channels = stage2!.Count;
                bool anyBackground = false;
                double min = double.PositiveInfinity;
                for (int i = 0; i < n; i++)
                {
                    if (fg[j].Pixels[i] == 0) { anyBackground = true; continue; }
                    for (int c = 0; c < channels; c++)
                    {
                        double v = proj[(long)at * channels + c];
                        comps[i * 3 + c] = (float)v;
                        min = Math.Min(min, v);
                    }
                    at++;
                }
                if (anyBackground) min = Math.Min(min, 0);
                if (double.IsFinite(min))
                {
                    for (int i = 0; i < n; i++)
                        if (fg[j].Pixels[i] == 0) for (int c = 0; c < 3; c++) comps[i * 3 + c] = (float)(min - 1);
                    for (int c = 0; c < channels; c++)
                    {
                        float lo = float.PositiveInfinity, hi = float.NegativeInfinity;
                        for (int i = 0; i < n; i++) { lo = Math.Min(lo, comps[i * 3 + c]); hi = Math.Max(hi, comps[i * 3 + c]); }
                        float range = hi - lo;
                        for (int i = 0; i < n; i++)
                            rgb[i * 3 + c] = range > 0 ? (byte)Math.Clamp((int)((comps[i * 3 + c] - lo) / range * 255f), 0, 255) : (byte)0;
                    }
                }
            }
            result.Add(new PcaImageMap(normalized[j], fg[j], comps, rgb));
        }
        return new PcaFeatureMapResult(result, sign, stage1, stage2);
    }

    private static BinaryMask ForegroundMask(float[] normalized, ForegroundSign sign, PcaFeatureMapOptions o, int h, int w)
    {
        var mask = new BinaryMask(h, w);
        var m = mask.Pixels;
        for (int i = 0; i < m.Length; i++)
            m[i] = (sign == ForegroundSign.Negative ? normalized[i] < o.Threshold : normalized[i] > o.Threshold) ? (byte)1 : (byte)0;
        return o.FillHoles ? BinaryMasks.FillHoles(mask) : mask;
    }

    private static (long Border, long Area) BorderAndArea(float[][] normalized, ForegroundSign sign, PcaFeatureMapOptions o, int h, int w)
    {
        long border = 0, area = 0;
        foreach (var img in normalized)
        {
            var m = ForegroundMask(img, sign, o, h, w);
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                {
                    if (!m[y, x]) continue;
                    area++;
                    if (y == 0 || x == 0 || y == h - 1 || x == w - 1) border++;
                }
        }
        return (border, area);
    }
}
