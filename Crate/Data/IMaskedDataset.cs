using CrateIL.Imaging;

namespace CrateIL.Crate.Data;

/// <summary>
/// A generated image set that knows each image's exact foreground mask, for measuring segmentation: sample i's RGB bytes
/// and mask are the image <see cref="IDataset.Load"/> normalises (before any augmentation) and the pixels of its object.
/// </summary>
public interface IMaskedDataset : IDataset
{
    /// <summary>Side of the square image in pixels (before the sample transform).</summary>
    int ImageSize { get; }

    /// <summary>Writes sample <paramref name="index"/>'s interleaved RGB bytes (side²·3) and foreground mask (side × side); returns its label.</summary>
    int RenderMasked(int index, Span<byte> rgb, BinaryMask mask);
}
