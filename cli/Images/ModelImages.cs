using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;
using CrateIL.Crate.Data;
using CrateIL.Crate.Models;
using CrateIL.Segmentation.Imaging;

namespace CrateIL.Cli.Images;

/// <summary>A rectangle of a photo in its own pixel coordinates.</summary>
internal readonly record struct PixelRegion(int X, int Y, int Width, int Height);

/// <summary>One photo as decoded, and where in it the model's input came from.</summary>
internal sealed class ModelImage
{
    public ModelImage(string path, string stem, RgbImage photo, PixelRegion region)
    {
        Path = path;
        Stem = stem;
        Photo = photo;
        Region = region;
    }

    /// <summary>The image file (full path).</summary>
    public string Path { get; }

    /// <summary>The name outputs about this image are given (the file stem, made unique within one run).</summary>
    public string Stem { get; }

    /// <summary>The decoded photo at its own resolution.</summary>
    public RgbImage Photo { get; }

    /// <summary>
    /// The part of <see cref="Photo"/> the model sees: the whole photo for a plain resize, the centre square for
    /// resize + centre crop. Patch-grid maps cover exactly this region.
    /// </summary>
    public PixelRegion Region { get; }

    /// <summary>The photo cut to <see cref="Region"/> at the photo's resolution: what overlays of patch-grid maps are drawn on.</summary>
    public RgbImage Visible()
    {
        var r = Region;
        if (r.X == 0 && r.Y == 0 && r.Width == Photo.Width && r.Height == Photo.Height) return Photo;
        var cut = new RgbImage(r.Width, r.Height);
        for (int y = 0; y < r.Height; y++)
            Photo.Data.AsSpan(((r.Y + y) * Photo.Width + r.X) * 3, r.Width * 3).CopyTo(cut.Data.AsSpan(y * r.Width * 3, r.Width * 3));
        return cut;
    }
}

/// <summary>
/// Photos prepared as one model input batch: host pixels [B, C, H, W] (normalised float32) and the decoded photos kept
/// for drawing on. Upload to the model's device with <see cref="Upload"/>.
/// </summary>
internal sealed class ModelImageBatch
{
    public ModelImageBatch(IReadOnlyList<ModelImage> images, float[] pixels, int channels, int height, int width)
    {
        Images = images;
        Pixels = pixels;
        Channels = channels;
        Height = height;
        Width = width;
    }

    public IReadOnlyList<ModelImage> Images { get; }
    public int Count => Images.Count;
    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }

    /// <summary>Normalised pixels [B, C, H, W], row-major.</summary>
    public float[] Pixels { get; }

    /// <summary>A new tensor [B, C, H, W] on <paramref name="device"/> holding <see cref="Pixels"/> (the caller disposes it).</summary>
    public Tensor Upload(Device device) => Upload(device, 0, Count);

    /// <summary>Images [<paramref name="first"/>, <paramref name="first"/> + <paramref name="count"/>) as a new tensor on <paramref name="device"/>.</summary>
    public Tensor Upload(Device device, int first, int count)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (first < 0 || count < 1 || first + count > Count)
            throw new ArgumentOutOfRangeException(nameof(count), $"images [{first}, {first + count}) of a batch of {Count}");
        int per = Channels * Height * Width;
        var t = device.Allocate(count, Channels, Height, Width);
        t.CopyFrom(Pixels.AsSpan(first * per, count * per));
        return t;
    }
}

/// <summary>
/// Turns photo files into a model's input exactly as the model was evaluated in training: decoded with
/// <see cref="ImageFile"/> (Skia; Pillow-identical JPEG), then the checkpoint's <see cref="ModelInput.Pipeline"/>
/// (plain resize, or resize + centre crop, and its normalisation) in one pass. A caller may ask for another input size
/// (attention, PCA and MaskCut often look at a larger grid than training; the model resamples its position table
/// bicubically for it); the resize rule and normalisation stay the checkpoint's. RGB photos given to a one-channel
/// model are converted to luminance first (PIL's <c>convert("L")</c> weights).
/// </summary>
internal static class ModelImages
{
    /// <summary>
    /// Decodes and prepares <paramref name="files"/> (named <paramref name="stems"/>, or their file stems) for
    /// <paramref name="model"/> at <paramref name="size"/> (height, width; default the trained size). A size that is
    /// not a positive multiple of the patch, or a non-square size for a centre-crop checkpoint, is an
    /// <see cref="ArgumentException"/>; an undecodable file an <see cref="ImageFormatException"/> naming it.
    /// </summary>
    public static ModelImageBatch Prepare(IReadOnlyList<string> files, CheckpointModel model, (int Height, int Width)? size = null,
        IReadOnlyList<string>? stems = null)
    {
        ArgumentNullException.ThrowIfNull(files);
        ArgumentNullException.ThrowIfNull(model);
        if (files.Count == 0) throw new ArgumentException("no images to prepare", nameof(files));
        if (stems is not null && stems.Count != files.Count) throw new ArgumentException($"{stems.Count} stems for {files.Count} files", nameof(stems));
        stems ??= ImageInputs.UniqueStems(files);
        var config = InputConfig(model, size);
        var pipeline = model.Input.Pipeline(config);
        int channels = config.Channels, h = config.ImageHeight, w = config.ImageWidth;
        int per = channels * h * w;
        var pixels = new float[(long)files.Count * per];
        var images = new ModelImage[files.Count];
        for (int i = 0; i < files.Count; i++)
        {
            var photo = ImageFile.LoadRgb(files[i]);
            images[i] = new ModelImage(files[i], stems[i], photo, Run(pipeline, photo, channels, pixels.AsSpan(i * per, per)));
        }
        return new ModelImageBatch(images, pixels, channels, h, w);
    }

    /// <summary>
    /// Prepares one decoded photo into <paramref name="destination"/> (C·H·W floats) and returns the region of the photo
    /// the input shows.
    /// </summary>
    public static PixelRegion Run(ImagePipeline pipeline, RgbImage photo, int channels, Span<float> destination)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentNullException.ThrowIfNull(photo);
        var random = new SampleRandom(0); // evaluation transforms draw nothing
        var plan = pipeline.Transform.Plan(photo.Width, photo.Height, ref random);
        var (w, h) = pipeline.OutputSize(photo.Width, photo.Height);
        if (channels == 1)
        {
            var grey = Luminance(photo);
            pipeline.Run(ImageView.Interleaved(grey, photo.Width, photo.Height, 1), destination, ref random);
        }
        else pipeline.Run(ImageView.Interleaved(photo.Data, photo.Width, photo.Height, 3), destination, ref random);
        // The output window of the scaled box, mapped back to photo pixels.
        double sx = (double)plan.BoxWidth / plan.ScaledWidth, sy = (double)plan.BoxHeight / plan.ScaledHeight;
        int x0 = Math.Clamp((int)Math.Round(plan.BoxX + plan.WindowX * sx), 0, photo.Width - 1);
        int y0 = Math.Clamp((int)Math.Round(plan.BoxY + plan.WindowY * sy), 0, photo.Height - 1);
        int x1 = Math.Clamp((int)Math.Round(plan.BoxX + (plan.WindowX + w) * sx), x0 + 1, photo.Width);
        int y1 = Math.Clamp((int)Math.Round(plan.BoxY + (plan.WindowY + h) * sy), y0 + 1, photo.Height);
        return new PixelRegion(x0, y0, x1 - x0, y1 - y0);
    }

    /// <summary>The model's configuration with the input size a batch will have (the trained size when <paramref name="size"/> is null).</summary>
    public static CrateConfig InputConfig(CheckpointModel model, (int Height, int Width)? size)
    {
        var config = model.Config;
        if (size is not { } s) return config;
        int p = config.PatchSize;
        if (s.Height < p || s.Width < p || s.Height % p != 0 || s.Width % p != 0)
            throw new ArgumentException($"--size {s.Height}x{s.Width} is not a positive multiple of the model's patch size {p}");
        if (model.Input.Resize == InputResize.ResizeCenterCrop && s.Height != s.Width)
            throw new ArgumentException($"--size {s.Height}x{s.Width}: this checkpoint centre-crops squares; give one number");
        return config with { ImageHeight = s.Height, ImageWidth = s.Width };
    }

    /// <summary>Grey levels with PIL's ITU-R 601-2 luma transform (L = (19595·R + 38470·G + 7471·B + 2¹⁵) ≫ 16).</summary>
    private static byte[] Luminance(RgbImage photo)
    {
        var grey = new byte[photo.Width * photo.Height];
        var d = photo.Data;
        for (int i = 0; i < grey.Length; i++)
            grey[i] = (byte)((19595 * d[3 * i] + 38470 * d[3 * i + 1] + 7471 * d[3 * i + 2] + 0x8000) >> 16);
        return grey;
    }
}
