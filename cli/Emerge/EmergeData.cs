using CrateIL.Crate.Data;
using CrateIL.Crate.Models;
using CrateIL.Crate.Training;
using CrateIL.Imaging;

namespace CrateIL.Cli.Emerge;

/// <summary>
/// The data of an emergence run: a training stream and a disjoint held-out set whose images come with exact foreground
/// masks (rendered by index, so the evaluation sees the same pixels the model was given).
/// </summary>
internal interface IEmergeData
{
    string Name { get; }
    IDataset Train { get; }
    IDataset HeldOut { get; }
    int ImageSize { get; }

    /// <summary>Held-out image <paramref name="index"/> as interleaved RGB bytes (side²·3) and its exact foreground mask (side²).</summary>
    void RenderHeldOut(int index, Span<byte> rgb, BinaryMask mask);
}

/// <summary>The recipe of one budget: data, the shared model shape, the trainer options and how many held-out images are evaluated.</summary>
internal sealed record EmergeRecipeChoice(string Budget, IEmergeData Data, CrateConfig BaseConfig, TrainerOptions Options, int EvalImages)
{
    /// <summary>The same width, depth, heads, patch and pooling for every variant; only the blocks differ.</summary>
    public CrateConfig ConfigFor(CrateVariant variant) => BaseConfig with { Variant = variant };
}
