using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using CrateIL.Imaging;

namespace CrateIL.Crate.Data;

/// <summary>
/// Separable antialiased bilinear resampling of 8-bit pixels into normalised float32 planes, fused with ToTensor and
/// Normalize. The filter follows PIL's BILINEAR resize: a triangle of support max(scale, 1) around each output pixel
/// centre (x + 0.5)·scale, clipped to the crop box, weights normalised to sum 1, so downscaling averages every covered
/// pixel instead of aliasing. Unlike PIL it keeps floats between the passes and at the end (no rounding to bytes), so it
/// differs from Pillow by at most about one grey level. A 1:1 plan reduces to single-tap copies and is exact.
/// The horizontal pass runs per source row over the taps; the vertical pass and the normalisation are float SIMD.
/// </summary>
internal static class Resampler
{
    private sealed class Workspace
    {
        public int[] XStart = [], XTaps = [], YStart = [], YTaps = [];
        public float[] XWeights = [], YWeights = [], Rows = [], Accumulator = [];

        public static void Grow<T>(ref T[] a, int n)
        {
            if (a.Length < n) a = new T[Math.Max(n, a.Length * 2)];
        }
    }

    [ThreadStatic] private static Workspace? t_workspace;

    /// <summary>Taps an axis of <paramref name="boxLength"/> source pixels resized to <paramref name="scaledLength"/> can need.</summary>
    private static int MaxTaps(int boxLength, int scaledLength) =>
        (int)Math.Ceiling(Math.Max((double)boxLength / scaledLength, 1.0)) * 2 + 2;

    /// <summary>
    /// Filter weights for <paramref name="count"/> outputs at scaled positions windowStart + i (mirrored when flip),
    /// as (first source index relative to the box, tap count, weights[i·stride ..]).
    /// </summary>
    private static void BuildAxis(int boxLength, int scaledLength, int windowStart, int count, bool flip,
        int[] start, int[] taps, float[] weights, int stride)
    {
        double scale = (double)boxLength / scaledLength;
        double filterScale = Math.Max(scale, 1.0);
        double support = filterScale;
        double inverse = 1.0 / filterScale;
        Span<double> w = stackalloc double[stride];
        for (int i = 0; i < count; i++)
        {
            int s = windowStart + (flip ? count - 1 - i : i);
            double center = (s + 0.5) * scale;
            int lo = Math.Max((int)(center - support + 0.5), 0);
            int hi = Math.Min((int)(center + support + 0.5), boxLength);
            double sum = 0;
            int n = hi - lo;
            for (int k = 0; k < n; k++)
            {
                double t = Math.Abs((k + lo - center + 0.5) * inverse);
                w[k] = t < 1.0 ? 1.0 - t : 0.0;
                sum += w[k];
            }
            // Zero-weight taps at either end cost time and change nothing.
            int first = 0, last = n - 1;
            while (first < last && w[first] == 0) first++;
            while (last > first && w[last] == 0) last--;
            start[i] = lo + first;
            taps[i] = last - first + 1;
            double norm = sum > 0 ? 1.0 / sum : 0.0;
            for (int k = first; k <= last; k++) weights[i * stride + k - first] = (float)(w[k] * norm);
        }
    }

    /// <summary>
    /// Writes <paramref name="outChannels"/> planes of outWidth × outHeight into <paramref name="destination"/>: plane c
    /// reads source channel c (or channel 0 for a grey source) and is normalised with scale[c], offset[c].
    /// </summary>
    public static void Run(in ImageView source, in ResamplePlan plan, int outWidth, int outHeight, int outChannels,
        ReadOnlySpan<float> scale, ReadOnlySpan<float> offset, Span<float> destination)
    {
        ValidatePlan(source, plan, outWidth, outHeight);
        if (source.Channels != 1 && source.Channels != outChannels)
            throw new ArgumentException($"a {source.Channels}-channel image cannot become {outChannels} channels");
        int planeSize = outWidth * outHeight;
        if (destination.Length < planeSize * outChannels)
            throw new ArgumentException($"destination holds {destination.Length} floats; {outChannels}×{outHeight}×{outWidth} are needed", nameof(destination));

        var ws = t_workspace ??= new Workspace();
        int xStride = MaxTaps(plan.BoxWidth, plan.ScaledWidth), yStride = MaxTaps(plan.BoxHeight, plan.ScaledHeight);
        Workspace.Grow(ref ws.XStart, outWidth);
        Workspace.Grow(ref ws.XTaps, outWidth);
        Workspace.Grow(ref ws.XWeights, outWidth * xStride);
        Workspace.Grow(ref ws.YStart, outHeight);
        Workspace.Grow(ref ws.YTaps, outHeight);
        Workspace.Grow(ref ws.YWeights, outHeight * yStride);
        BuildAxis(plan.BoxWidth, plan.ScaledWidth, plan.WindowX, outWidth, plan.Flip, ws.XStart, ws.XTaps, ws.XWeights, xStride);
        BuildAxis(plan.BoxHeight, plan.ScaledHeight, plan.WindowY, outHeight, false, ws.YStart, ws.YTaps, ws.YWeights, yStride);

        // Box rows that any output row reads (output rows go down monotonically, so first and last bound them).
        int rowLo = ws.YStart[0], rowHi = ws.YStart[outHeight - 1] + ws.YTaps[outHeight - 1];
        for (int y = 0; y < outHeight; y++)
        {
            rowLo = Math.Min(rowLo, ws.YStart[y]);
            rowHi = Math.Max(rowHi, ws.YStart[y] + ws.YTaps[y]);
        }
        int rows = rowHi - rowLo, srcC = source.Channels;
        Workspace.Grow(ref ws.Rows, srcC * rows * outWidth);
        Workspace.Grow(ref ws.Accumulator, outWidth);

        HorizontalPass(source, plan, rowLo, rows, outWidth, ws.XStart, ws.XTaps, ws.XWeights, xStride, ws.Rows);

        Span<float> acc = ws.Accumulator.AsSpan(0, outWidth);
        for (int y = 0; y < outHeight; y++)
        {
            int y0 = ws.YStart[y] - rowLo, n = ws.YTaps[y];
            ReadOnlySpan<float> wy = ws.YWeights.AsSpan(y * yStride, n);
            for (int c = 0; c < srcC; c++)
            {
                var plane = ws.Rows.AsSpan(c * rows * outWidth, rows * outWidth);
                TensorPrimitives.Multiply(plane.Slice(y0 * outWidth, outWidth), wy[0], acc);
                for (int k = 1; k < n; k++)
                    TensorPrimitives.MultiplyAdd(plane.Slice((y0 + k) * outWidth, outWidth), wy[k], acc, acc);
                if (srcC == 1)
                {
                    for (int oc = 0; oc < outChannels; oc++)
                        ScaleOffset(acc, scale[oc], offset[oc], destination.Slice(oc * planeSize + y * outWidth, outWidth));
                }
                else
                {
                    ScaleOffset(acc, scale[c], offset[c], destination.Slice(c * planeSize + y * outWidth, outWidth));
                }
            }
        }
    }

    private static void ValidatePlan(in ImageView source, in ResamplePlan p, int outWidth, int outHeight)
    {
        if (outWidth <= 0 || outHeight <= 0) throw new ArgumentOutOfRangeException(nameof(outWidth), $"output size {outWidth}×{outHeight} is empty");
        if (p.BoxWidth <= 0 || p.BoxHeight <= 0 || p.BoxX < 0 || p.BoxY < 0 ||
            p.BoxX + p.BoxWidth > source.Width || p.BoxY + p.BoxHeight > source.Height)
            throw new ArgumentException($"crop box ({p.BoxX}, {p.BoxY}, {p.BoxWidth}×{p.BoxHeight}) lies outside the {source.Width}×{source.Height} image");
        if (p.ScaledWidth <= 0 || p.ScaledHeight <= 0 || p.WindowX < 0 || p.WindowY < 0 ||
            p.WindowX + outWidth > p.ScaledWidth || p.WindowY + outHeight > p.ScaledHeight)
            throw new ArgumentException($"output window ({p.WindowX}, {p.WindowY}, {outWidth}×{outHeight}) lies outside the scaled {p.ScaledWidth}×{p.ScaledHeight} image");
    }

    private static void HorizontalPass(in ImageView source, in ResamplePlan plan, int rowLo, int rows, int outWidth,
        int[] xStart, int[] xTaps, float[] xWeights, int xStride, float[] output)
    {
        ReadOnlySpan<byte> data = source.Data;
        int ps = source.PixelStride, cs = source.ChannelStride, srcC = source.Channels;
        int planeSize = rows * outWidth;
        for (int r = 0; r < rows; r++)
        {
            int rowBase = (plan.BoxY + rowLo + r) * source.RowStride + plan.BoxX * ps;
            int outRow = r * outWidth;
            if (srcC == 3)
            {
                for (int x = 0; x < outWidth; x++)
                {
                    int p = rowBase + xStart[x] * ps, n = xTaps[x], wBase = x * xStride;
                    float a0 = 0, a1 = 0, a2 = 0;
                    for (int k = 0; k < n; k++, p += ps)
                    {
                        float w = xWeights[wBase + k];
                        a0 += w * data[p];
                        a1 += w * data[p + cs];
                        a2 += w * data[p + 2 * cs];
                    }
                    output[outRow + x] = a0;
                    output[planeSize + outRow + x] = a1;
                    output[2 * planeSize + outRow + x] = a2;
                }
            }
            else
            {
                for (int x = 0; x < outWidth; x++)
                {
                    int p = rowBase + xStart[x] * ps, n = xTaps[x], wBase = x * xStride;
                    float a0 = 0;
                    for (int k = 0; k < n; k++, p += ps) a0 += xWeights[wBase + k] * data[p];
                    output[outRow + x] = a0;
                }
            }
        }
    }

    /// <summary>destination = x·scale + offset, 8 floats at a time.</summary>
    private static void ScaleOffset(ReadOnlySpan<float> x, float scale, float offset, Span<float> destination)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated && x.Length >= Vector256<float>.Count)
        {
            var vs = Vector256.Create(scale);
            var vo = Vector256.Create(offset);
            ref float src = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
            ref float dst = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(destination);
            for (; i <= x.Length - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var v = Vector256.LoadUnsafe(ref src, (nuint)i);
                Vector256.FusedMultiplyAdd(v, vs, vo).StoreUnsafe(ref dst, (nuint)i);
            }
        }
        for (; i < x.Length; i++) destination[i] = MathF.FusedMultiplyAdd(x[i], scale, offset);
    }
}
