using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;
using CrateIL.Crate.Data;
using CrateIL.Crate.Models;
using CrateIL.Crate.Training;
using CrateIL.Imaging;
using CrateIL.Segmentation.Attention;
using CrateIL.Segmentation.MaskCut;
using CrateIL.Segmentation.Pca;

namespace CrateIL.Cli.Emerge;

/// <summary>A held-out image kept for the report's pictures, with what one model made of it.</summary>
internal sealed record SampleImage(int Index, int Label, int Predicted, byte[] Rgb, BinaryMask Mask, AttentionMaps[] LayerMaps,
    byte[] PcaRgb, IReadOnlyList<BinaryMask> MaskCutMasks);

/// <summary>
/// Everything measured of one model on the held-out images: predictions, every layer's CLS→patch attention (Eq. 10,
/// straight from <see cref="CrateModel.ClsAttention(int, Tensor)"/>), the exact masks, MaskCut's masks from the last
/// layer's key features, the white-box probes and the pictures' samples. Scoring happens in <see cref="EmergeScoring"/>.
/// </summary>
internal sealed record EvaluatedModel(int Images, int Correct, AttentionMaps[][] Maps, BinaryMask[] TrueMasks,
    IReadOnlyList<IReadOnlyList<BinaryMask>> MaskCutMasks, LayerProbe[] Probes, SampleImage[] Samples, int GridRows, int GridCols, int ImageSize)
{
    public double Top1 => (double)Correct / Images;
}

internal static class EmergeEvaluation
{
    public const int EvalBatch = 64;

    /// <summary>
    /// Runs <paramref name="model"/> in evaluation mode over the first <paramref name="count"/> held-out images;
    /// the first <paramref name="samples"/> are kept with their PCA maps for the pictures.
    /// </summary>
    public static EvaluatedModel Run(CrateModel model, IEmergeData data, int count, int samples, int maskCutObjects)
    {
        bool training = model.Training;
        model.Training = false;
        using var frozen = model.Parameters.FreezeTemporarily();
        try
        {
            var c = model.Config;
            var heldOut = data.HeldOut;
            count = Math.Min(count, heldOut.Count);
            int side = data.ImageSize, length = heldOut.SampleLength, depth = c.Depth, gh = c.GridRows, gw = c.GridCols;
            int n = gh * gw, inner = c.Inner, tokens = n + 1;
            var maps = new AttentionMaps[depth][];
            for (int l = 0; l < depth; l++) maps[l] = new AttentionMaps[count];
            var trueMasks = new BinaryMask[count];
            var rgbs = new byte[Math.Min(samples, count)][];
            var predicted = new int[count];
            var labels = new int[count];
            var maskCut = new IReadOnlyList<BinaryMask>[count];
            var sampleFeatures = new List<float[]>();
            int correct = 0;
            var host = new float[EvalBatch * length];
            var keyHost = new float[EvalBatch * tokens * inner];
            var cutOptions = new MaskCutOptions { Objects = maskCutObjects };
            for (int first = 0; first < count; first += EvalBatch)
            {
                int b = Math.Min(EvalBatch, count - first);
                for (int i = 0; i < b; i++)
                {
                    var random = SampleRandom.For(0, -1, first + i);
                    labels[first + i] = heldOut.Load(first + i, host.AsSpan(i * length, length), ref random);
                    var rgb = new byte[side * side * 3];
                    var mask = new BinaryMask(side, side);
                    data.RenderHeldOut(first + i, rgb, mask);
                    trueMasks[first + i] = mask;
                    if (first + i < rgbs.Length) rgbs[first + i] = rgb;
                }
                using var input = model.Device.FromHost(host.AsSpan(0, b * length), b, heldOut.Channels, heldOut.Height, heldOut.Width);
                var logits = model.Forward(input).ToArray();
                for (int i = 0; i < b; i++)
                {
                    int best = 0;
                    for (int k = 1; k < c.Classes; k++) if (logits[i * c.Classes + k] > logits[i * c.Classes + best]) best = k;
                    predicted[first + i] = best;
                    if (best == labels[first + i]) correct++;
                }
                using var attention = model.Device.Allocate(b, c.Heads, gh, gw);
                for (int l = 0; l < depth; l++)
                {
                    model.ClsAttention(l, attention);
                    var perImage = AttentionMaps.FromBatch(attention);
                    for (int i = 0; i < b; i++) maps[l][first + i] = perImage[i];
                }
                using var keys = model.Device.Allocate(b, tokens, inner);
                model.Keys(depth - 1, keys);
                keys.CopyTo(keyHost.AsSpan(0, b * tokens * inner));
                for (int i = 0; i < b; i++)
                {
                    // Patch tokens only (row 0 is CLS): CutLER's feats, one row per patch.
                    var features = keyHost.AsSpan((i * tokens + 1) * inner, n * inner).ToArray();
                    var cut = MaskCutter.Run(features, inner, gh, gw, cutOptions, model.Device as CpuDevice);
                    var masks = new List<BinaryMask>();
                    for (int o = 0; o < cut.Objects.Count; o++)
                        if (!cut.Objects[o].IsEmpty) masks.Add(cut.PixelMask(o, side, side));
                    maskCut[first + i] = masks;
                    if (first + i < rgbs.Length) sampleFeatures.Add(features);
                }
            }
            var pca = PcaFeatureMaps.Compute(sampleFeatures, gh, gw, inner, cpu: model.Device as CpuDevice);
            var sampleList = new SampleImage[rgbs.Length];
            for (int i = 0; i < rgbs.Length; i++)
                sampleList[i] = new SampleImage(i, labels[i], predicted[i], rgbs[i], trueMasks[i],
                    Enumerable.Range(0, depth).Select(l => maps[l][i]).ToArray(), pca.Images[i].Rgb, maskCut[i]);
            var probes = Probes(model, heldOut, Math.Min(32, count));
            return new EvaluatedModel(count, correct, maps, trueMasks, maskCut, probes, sampleList, gh, gw, side);
        }
        finally
        {
            model.Training = training;
        }
    }

    /// <summary>Coding rate per head and ISTA sparsity per layer on the first held-out images.</summary>
    private static LayerProbe[] Probes(CrateModel model, IDataset heldOut, int count)
    {
        int length = heldOut.SampleLength;
        var host = new float[count * length];
        for (int i = 0; i < count; i++)
        {
            var random = SampleRandom.For(0, -1, i);
            heldOut.Load(i, host.AsSpan(i * length, length), ref random);
        }
        using var images = model.Device.FromHost(host, count, heldOut.Channels, heldOut.Height, heldOut.Width);
        return WhiteBoxProbes.Measure(model, images);
    }
}
