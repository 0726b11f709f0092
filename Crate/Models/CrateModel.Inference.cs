using CrateIL.Compute.Tensors;

namespace CrateIL.Crate.Models;

public sealed partial class CrateModel
{
    /// <summary>
    /// Logits [count, classes] (row-major, on the host) for <paramref name="count"/> normalised host images
    /// [count, C, H, W], evaluated in chunks of at most <paramref name="maxBatch"/> images so that memory stays
    /// bounded. Uses evaluation mode (no dropout) and restores the previous mode afterwards.
    /// </summary>
    public float[] Predict(ReadOnlySpan<float> images, int count, int height, int width, int maxBatch = 32)
    {
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, $"{What}: count must be positive");
        if (maxBatch < 1) throw new ArgumentOutOfRangeException(nameof(maxBatch), maxBatch, $"{What}: maxBatch must be positive");
        long perImage = (long)Config.Channels * height * width;
        if (height < 1 || width < 1 || images.Length != count * perImage)
            throw new ArgumentException($"{What}: {images.Length} values are not {count} images of [{Config.Channels}, {height}, {width}]", nameof(images));
        int classes = Config.Classes;
        var logits = new float[(long)count * classes];
        bool training = Training;
        Training = false;
        using var frozen = Parameters.FreezeTemporarily();
        try
        {
            Tensor? input = null;
            try
            {
                for (int first = 0; first < count; first += maxBatch)
                {
                    int batch = Math.Min(maxBatch, count - first);
                    if (input is null || input.Shape[0] != batch)
                    {
                        input?.Dispose();
                        input = Device.Allocate(batch, Config.Channels, height, width);
                    }
                    input.CopyFrom(images.Slice((int)(first * perImage), (int)(batch * perImage)));
                    var output = Forward(input);
                    output.CopyTo(logits.AsSpan(first * classes, batch * classes));
                }
            }
            finally
            {
                input?.Dispose();
            }
        }
        finally
        {
            Training = training;
        }
        return logits;
    }
}
