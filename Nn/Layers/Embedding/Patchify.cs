using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;

namespace CrateIL.Nn.Layers;

/// <summary>
/// einops <c>Rearrange('b c (h p1) (w p2) -> b (h w) (p1 p2 c)')</c>: an NCHW image [B, C, H, W] becomes patch rows
/// [B, N, P·P·C] with N = (H/P)·(W/P). Token t = r·(W/P) + c (row-major over the patch grid); feature
/// f = (p1·P + p2)·C + ch holds img[ch, r·P + p1, c·P + p2]. The channel is innermost: this is not the Conv2d
/// weight layout (c, p1, p2). H and W need not be equal, but both must be multiples of P.
/// </summary>
public static class Patchify
{
    /// <summary>Patch-grid rows and columns of an H×W image.</summary>
    public static (int Rows, int Cols) Grid(int height, int width, int patch)
    {
        if (patch < 1) throw new ArgumentOutOfRangeException(nameof(patch), patch, "Patchify: patch size must be positive");
        if (height < patch || width < patch || height % patch != 0 || width % patch != 0)
            throw new ArgumentException($"Patchify: image {height}×{width} is not a positive multiple of the patch size {patch} in both dimensions");
        return (height / patch, width / patch);
    }

    /// <summary>patches = patchify(image). <paramref name="patches"/>: [B, N, P·P·C] (any shape of that length ending in P·P·C).</summary>
    public static void Forward(Tensor image, int patch, Tensor patches)
    {
        var a = Check("Patchify.Forward", image, patch, nameof(patches), patches);
        if (a.Batch == 0) return;
        switch (image.Device)
        {
            case CpuDevice cpu: EmbeddingCpu.Patchify(cpu, image, patches, a); break;
            case IlgpuDevice gpu: EmbeddingIlgpu.Patchify(gpu, image, patches, a); break;
            default: throw new NotSupportedException($"Patchify has no implementation for device {image.Device.Spec}");
        }
    }

    /// <summary>
    /// The exact inverse (a permutation, so also the backward pass): dImage[b, ch, y, x] = dPatches[b, t, f]
    /// (assigned). <paramref name="dImage"/> has the image's shape [B, C, H, W].
    /// </summary>
    public static void Backward(Tensor dPatches, int patch, Tensor dImage)
    {
        var a = Check("Patchify.Backward", dImage, patch, nameof(dPatches), dPatches);
        if (a.Batch == 0) return;
        switch (dImage.Device)
        {
            case CpuDevice cpu: EmbeddingCpu.Unpatchify(cpu, dPatches, dImage, a); break;
            case IlgpuDevice gpu: EmbeddingIlgpu.Unpatchify(gpu, dPatches, dImage, a); break;
            default: throw new NotSupportedException($"Patchify has no implementation for device {dImage.Device.Spec}");
        }
    }

    internal static PatchArgs Check(string op, Tensor image, int patch, string patchesName, Tensor patches)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(patches, patchesName);
        if (image.Rank != 4) throw new ArgumentException($"{op}: the image must be [B, C, H, W], got {image.Shape}");
        int b = image.Shape[0], c = image.Shape[1], h = image.Shape[2], w = image.Shape[3];
        if (c < 1) throw new ArgumentException($"{op}: image {image.Shape} has no channels");
        var (rows, cols) = Grid(h, w, patch);
        var a = new PatchArgs(b, c, h, w, patch, rows, cols);
        if (patches.Length != image.Length || patches.Shape.LastDim != a.PatchDim)
            throw new ArgumentException($"{op}: {patchesName}{patches.Shape} must be [{b}, {a.Tokens}, {a.PatchDim}] for image {image.Shape} and patch {patch}");
        if (!ReferenceEquals(image.Device, patches.Device))
            throw new ArgumentException($"{op}: the image lives on {image.Device.Spec} but {patchesName} on {patches.Device.Spec}");
        if (image.Length > int.MaxValue) throw new ArgumentException($"{op}: image {image.Shape} has more than {int.MaxValue} elements");
        return a;
    }
}

/// <summary>Geometry of one patchify call (one struct parameter for the kernels).</summary>
internal readonly struct PatchArgs(int batch, int channels, int height, int width, int patch, int gridRows, int gridCols)
{
    public readonly int Batch = batch;
    public readonly int Channels = channels;
    public readonly int Height = height;
    public readonly int Width = width;
    public readonly int Patch = patch;
    public readonly int GridRows = gridRows;
    public readonly int GridCols = gridCols;
    public readonly int Tokens = gridRows * gridCols;
    public readonly int PatchDim = patch * patch * channels;

    public int Length => Batch * Channels * Height * Width;
}
