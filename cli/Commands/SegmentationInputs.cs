using System.Globalization;
using CrateIL.Crate.IO;
using CrateIL.Imaging;
using CrateIL.Segmentation.Voc;

namespace CrateIL.Cli.Commands;

/// <summary>Reading masks and photos and writing mask PNGs for the segmentation commands (crf, maskcut, segeval).</summary>
internal static class SegmentationInputs
{
    private static ReadOnlySpan<byte> PngSignature => [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>A photo decoded to RGB; a missing or undecodable file is an <see cref="IOException"/> naming <paramref name="option"/>.</summary>
    public static RgbImage LoadPhoto(string path, string option)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{option} {path}: no such file");
        return ImageFile.LoadRgb(path);
    }

    /// <summary>
    /// A foreground probability in [0, 1], row-major [H, W]: a float .npy [H, W] (or [1, H, W]); an 8-bit greyscale PNG
    /// (value/255; a greyscale image whose values are all 0 or 1 is read as binary 0/1); a palette PNG (VOC style:
    /// index ∉ {0, 255} is foreground, 255 being VOC's "void"); any other image: its brightest channel/255.
    /// </summary>
    public static (float[] Mask, int Height, int Width) LoadSoftMask(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"--mask {path}: no such file");
        if (path.EndsWith(".npy", StringComparison.OrdinalIgnoreCase))
        {
            var npy = Npy.Read(path);
            var shape = npy.Shape;
            if (!(shape.Length == 2 || (shape.Length == 3 && shape[0] == 1)) || shape[^1] < 1 || shape[^2] < 1)
                throw new NpyFormatException(path, $"mask has shape [{string.Join(", ", shape)}]; expected [H, W] or [1, H, W]");
            for (int i = 0; i < npy.Data.Length; i++)
                if (!(npy.Data[i] >= 0 && npy.Data[i] <= 1))
                    throw new NpyFormatException(path, string.Create(CultureInfo.InvariantCulture,
                        $"mask value {npy.Data[i]} at pixel ({i % shape[^1]}, {i / shape[^1]}) is not a probability in [0, 1]"));
            return (npy.Data, shape[^2], shape[^1]);
        }
        byte[] bytes = File.ReadAllBytes(path);
        if (bytes.AsSpan().StartsWith(PngSignature))
        {
            IndexedImage? indexed = null;
            try
            {
                indexed = Png.DecodeIndexed(bytes, path);
            }
            catch (ImageFormatException)
            {
                // RGB(A), grey+alpha or 16-bit: decoded below as a colour image.
            }
            if (indexed is not null)
            {
                var m = new float[indexed.Pixels.Length];
                if (indexed.Palette is not null)
                {
                    for (int i = 0; i < m.Length; i++) m[i] = indexed.Pixels[i] is 0 or 255 ? 0f : 1f;
                }
                else
                {
                    float scale = indexed.Pixels.AsSpan().IndexOfAnyExcept((byte)0, (byte)1) < 0 ? 1f : 255f;
                    for (int i = 0; i < m.Length; i++) m[i] = indexed.Pixels[i] / scale;
                }
                return (m, indexed.Height, indexed.Width);
            }
        }
        var rgb = ImageFile.DecodeRgb(bytes, path);
        var soft = new float[rgb.Width * rgb.Height];
        for (int i = 0; i < soft.Length; i++)
            soft[i] = Math.Max(rgb.Data[3 * i], Math.Max(rgb.Data[3 * i + 1], rgb.Data[3 * i + 2])) / 255f;
        return (soft, rgb.Height, rgb.Width);
    }

    /// <summary>Writes a binary mask as an 8-bit greyscale PNG (0 / 255), creating the directory.</summary>
    public static void WriteMaskPng(string path, BinaryMask mask)
    {
        var pixels = new byte[mask.Height * mask.Width];
        var bits = mask.Pixels;
        for (int i = 0; i < pixels.Length; i++) pixels[i] = bits[i] != 0 ? (byte)255 : (byte)0;
        CreateDirectoryFor(path);
        Png.WriteIndexed(path, new IndexedImage(mask.Width, mask.Height, pixels, null));
    }

    public static void SavePng(string path, RgbImage image)
    {
        CreateDirectoryFor(path);
        ImageFile.SavePng(path, image);
    }

    private static void CreateDirectoryFor(string path)
    {
        string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
    }
}

/// <summary>
/// The label-file errors <see cref="CliErrors.Run"/> does not know (<see cref="ImageFormatException"/>,
/// <see cref="VocFormatException"/>) as the <see cref="IOException"/> it reports in one line with exit code 2.
/// </summary>
internal static class SegmentationErrors
{
    public static int Run(Func<int> action)
    {
        try
        {
            return action();
        }
        catch (Exception e) when (e is ImageFormatException or VocFormatException)
        {
            throw new IOException(e.Message, e);
        }
    }
}
