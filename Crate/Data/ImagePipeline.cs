using CrateIL.Imaging;

namespace CrateIL.Crate.Data;

/// <summary>
/// How a dataset turns 8-bit pixels into a float32 CHW sample: the geometric transform (crop/resize/flip), the output
/// channel count (a grey source is replicated to 3 channels, or kept as 1) and ToTensor + Normalize, in one fused pass.
/// </summary>
public sealed class ImagePipeline
{
    private readonly float[] _scale;
    private readonly float[] _offset;

    public ImagePipeline(ImageTransform transform, Normalization normalization)
    {
        ArgumentNullException.ThrowIfNull(transform);
        ArgumentNullException.ThrowIfNull(normalization);
        if (normalization.Channels is not (1 or 3))
            throw new ArgumentException($"normalization has {normalization.Channels} channels; samples have 1 or 3", nameof(normalization));
        Transform = transform;
        Normalization = normalization;
        Channels = normalization.Channels;
        _scale = new float[Channels];
        _offset = new float[Channels];
        for (int c = 0; c < Channels; c++) normalization.Coefficients(c, out _scale[c], out _offset[c]);
    }

    /// <summary>The transform with ImageNet normalisation and 3 output channels.</summary>
    public ImagePipeline(ImageTransform transform) : this(transform, Normalization.ImageNet) { }

    /// <summary>Source size kept, ImageNet normalisation, 3 channels.</summary>
    public static ImagePipeline Default { get; } = new(ImageTransform.None);

    public ImageTransform Transform { get; }
    public Normalization Normalization { get; }

    /// <summary>Output channels (the normalisation's channel count): 3, or 1 for grey kept as grey.</summary>
    public int Channels { get; }

    public (int Width, int Height) OutputSize(int sourceWidth, int sourceHeight) => Transform.OutputSize(sourceWidth, sourceHeight);

    /// <summary>
    /// Transforms one image into <paramref name="destination"/> (Channels × H × W floats). A 3-channel source needs 3 output
    /// channels; a grey source fills every output channel.
    /// </summary>
    public void Run(in ImageView source, Span<float> destination, ref SampleRandom random)
    {
        if (source.Channels == 3 && Channels == 1)
            throw new ArgumentException("an RGB image cannot be written as one channel; use a 3-channel normalisation");
        var (w, h) = Transform.OutputSize(source.Width, source.Height);
        var plan = Transform.Plan(source.Width, source.Height, ref random);
        Resampler.Run(source, plan, w, h, Channels, _scale, _offset, destination);
    }
}
