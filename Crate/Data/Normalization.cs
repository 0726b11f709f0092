namespace CrateIL.Crate.Data;

/// <summary>
/// ToTensor + Normalize: a byte v of channel c becomes (v / 255 − mean[c]) / std[c]. It is applied as one multiply-add,
/// v·(1 / (255·std)) + (−mean / std), in the same pass that resamples the image; that differs from torchvision's two float32
/// steps by a few units in the last place.
/// </summary>
public sealed class Normalization
{
    private readonly float[] _mean;
    private readonly float[] _std;

    public Normalization(IReadOnlyList<float> mean, IReadOnlyList<float> std)
    {
        ArgumentNullException.ThrowIfNull(mean);
        ArgumentNullException.ThrowIfNull(std);
        if (mean.Count == 0 || mean.Count != std.Count)
            throw new ArgumentException($"mean has {mean.Count} values and std {std.Count}: give one pair per channel", nameof(std));
        for (int c = 0; c < std.Count; c++)
        {
            if (!(std[c] > 0) || !float.IsFinite(std[c]))
                throw new ArgumentOutOfRangeException(nameof(std), $"std[{c}] = {std[c]} must be a positive finite number");
            if (!float.IsFinite(mean[c])) throw new ArgumentOutOfRangeException(nameof(mean), $"mean[{c}] = {mean[c]} is not finite");
        }
        _mean = [.. mean];
        _std = [.. std];
    }

    /// <summary>The ImageNet statistics torchvision models use: mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225).</summary>
    public static Normalization ImageNet { get; } = new([0.485f, 0.456f, 0.406f], [0.229f, 0.224f, 0.225f]);

    /// <summary>ImageNet statistics for grey images kept as one channel: the mean of the three means and of the three stds.</summary>
    public static Normalization ImageNetGrey { get; } = new([0.449f], [0.226f]);

    /// <summary>ToTensor only: values in [0, 1] for <paramref name="channels"/> channels.</summary>
    public static Normalization UnitRange(int channels) =>
        new(Enumerable.Repeat(0f, channels).ToArray(), Enumerable.Repeat(1f, channels).ToArray());

    public int Channels => _mean.Length;
    public IReadOnlyList<float> Mean => _mean;
    public IReadOnlyList<float> Std => _std;

    /// <summary>The multiply-add coefficients for channel c: out = byte·scale + offset.</summary>
    internal void Coefficients(int channel, out float scale, out float offset)
    {
        scale = (float)(1.0 / (255.0 * _std[channel]));
        offset = (float)(-(double)_mean[channel] / _std[channel]);
    }
}
