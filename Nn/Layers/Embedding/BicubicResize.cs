using System.Runtime.CompilerServices;
using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;

namespace CrateIL.Nn.Layers;

/// <summary>
/// Bicubic resampling of a channels-last grid [rows·cols, C] (e.g. a positional-embedding table, token-major) with
/// PyTorch's <c>F.interpolate(mode='bicubic', align_corners=False)</c> semantics: cubic convolution with
/// A = −0.75, taps clamped to the border, no antialiasing. Destination index d maps to the source coordinate
/// s = scale·(d + 0.5) − 0.5, where scale = in/out when a size is given and 1/s_f when a scale factor s_f is given
/// (PyTorch uses the factor itself, not in/out, when <c>recompute_scale_factor=False</c>). Coordinates and weights are
/// computed in float32 as PyTorch does for float tensors. Forward only.
/// </summary>
public static class BicubicResize
{
    /// <summary>The cubic-convolution coefficient PyTorch uses.</summary>
    public const float A = -0.75f;

    /// <summary><c>F.interpolate(size=(outRows, outCols))</c>.</summary>
    public static void ToSize(Tensor src, int inRows, int inCols, Tensor dst, int outRows, int outCols)
    {
        if (outRows < 1 || outCols < 1) throw new ArgumentOutOfRangeException(nameof(outRows), $"BicubicResize: output grid {outRows}×{outCols} must be positive");
        Run(src, inRows, inCols, dst, outRows, outCols, (float)inRows / outRows, (float)inCols / outCols);
    }

    /// <summary>Output grid of <c>F.interpolate(scale_factor=(scaleRows, scaleCols))</c>: floor(in·s) per axis.</summary>
    public static (int Rows, int Cols) ScaledSize(int inRows, int inCols, double scaleRows, double scaleCols)
    {
        if (!(scaleRows > 0) || !(scaleCols > 0) || !double.IsFinite(scaleRows) || !double.IsFinite(scaleCols))
            throw new ArgumentOutOfRangeException(nameof(scaleRows), $"BicubicResize: scale factors ({scaleRows}, {scaleCols}) must be positive and finite");
        return ((int)Math.Floor(inRows * scaleRows), (int)Math.Floor(inCols * scaleCols));
    }

    /// <summary>
    /// <c>F.interpolate(scale_factor=(scaleRows, scaleCols), recompute_scale_factor=False)</c>; the output grid is
    /// <see cref="ScaledSize"/>.
    /// </summary>
    public static void ByScaleFactor(Tensor src, int inRows, int inCols, Tensor dst, double scaleRows, double scaleCols)
    {
        var (outRows, outCols) = ScaledSize(inRows, inCols, scaleRows, scaleCols);
        if (outRows < 1 || outCols < 1) throw new ArgumentException($"BicubicResize: scale factors ({scaleRows}, {scaleCols}) shrink the {inRows}×{inCols} grid to nothing");
        Run(src, inRows, inCols, dst, outRows, outCols, (float)(1.0 / scaleRows), (float)(1.0 / scaleCols));
    }

    private static void Run(Tensor src, int inRows, int inCols, Tensor dst, int outRows, int outCols, float scaleRows, float scaleCols)
    {
        ArgumentNullException.ThrowIfNull(src);
        ArgumentNullException.ThrowIfNull(dst);
        if (inRows < 1 || inCols < 1) throw new ArgumentOutOfRangeException(nameof(inRows), $"BicubicResize: input grid {inRows}×{inCols} must be positive");
        int channels = src.Shape.LastDim;
        if (src.Rank < 2 || src.Length != (long)inRows * inCols * channels)
            throw new ArgumentException($"BicubicResize: src{src.Shape} must be [{inRows}·{inCols}, C] (channels last)");
        if (dst.Shape.LastDim != channels || dst.Length != (long)outRows * outCols * channels)
            throw new ArgumentException($"BicubicResize: dst{dst.Shape} must be [{outRows}·{outCols}, {channels}]");
        if (!ReferenceEquals(src.Device, dst.Device))
            throw new ArgumentException($"BicubicResize: src lives on {src.Device.Spec} but dst on {dst.Device.Spec}");
        if (dst.Length > int.MaxValue) throw new ArgumentException($"BicubicResize: dst{dst.Shape} has more than {int.MaxValue} elements");
        var args = new BicubicArgs(inRows, inCols, outRows, outCols, channels, scaleRows, scaleCols);
        switch (src.Device)
        {
            case CpuDevice cpu: EmbeddingCpu.Bicubic(cpu, src, dst, args); break;
            case IlgpuDevice gpu: EmbeddingIlgpu.Bicubic(gpu, src, dst, args); break;
            default: throw new NotSupportedException($"BicubicResize has no implementation for device {src.Device.Spec}");
        }
    }
}

/// <summary>Geometry of one resize: grids, channels and the dst→src coordinate scale per axis.</summary>
internal readonly struct BicubicArgs(int inRows, int inCols, int outRows, int outCols, int channels, float scaleRows, float scaleCols)
{
    public readonly int InRows = inRows;
    public readonly int InCols = inCols;
    public readonly int OutRows = outRows;
    public readonly int OutCols = outCols;
    public readonly int Channels = channels;
    public readonly float ScaleRows = scaleRows;
    public readonly float ScaleCols = scaleCols;
}

/// <summary>The four clamped source indices and cubic weights of one destination index along one axis.</summary>
internal readonly struct CubicTaps(int i0, int i1, int i2, int i3, float w0, float w1, float w2, float w3)
{
    public readonly int I0 = i0, I1 = i1, I2 = i2, I3 = i3;
    public readonly float W0 = w0, W1 = w1, W2 = w2, W3 = w3;

    /// <summary>Taps of destination index <paramref name="dst"/>; plain float/int arithmetic, usable in kernels.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static CubicTaps Of(float scale, int dst, int inSize)
    {
        float real = scale * (dst + 0.5f) - 0.5f;
        int i = (int)real;
        if (real < i) i--;                                   // floor, also for the negative coordinates at the border
        float t = real - i;
        const float a = BicubicResize.A;
        float x1 = t + 1f, x2 = 1f - t, x3 = 2f - t;
        // cubic_convolution2 for 1 ≤ |x| < 2, cubic_convolution1 for |x| ≤ 1 (Keys' kernel with A = −0.75)
        float w0 = ((a * x1 - 5f * a) * x1 + 8f * a) * x1 - 4f * a;
        float w1 = ((a + 2f) * t - (a + 3f)) * t * t + 1f;
        float w2 = ((a + 2f) * x2 - (a + 3f)) * x2 * x2 + 1f;
        float w3 = ((a * x3 - 5f * a) * x3 + 8f * a) * x3 - 4f * a;
        int last = inSize - 1;
        return new CubicTaps(Clamp(i - 1, last), Clamp(i, last), Clamp(i + 1, last), Clamp(i + 2, last), w0, w1, w2, w3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Clamp(int i, int last) => i < 0 ? 0 : i > last ? last : i;
}
