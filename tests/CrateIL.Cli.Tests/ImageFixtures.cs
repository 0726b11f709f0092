using CrateIL.Compute.Devices;
using CrateIL.Crate.Models;
using CrateIL.Segmentation.Imaging;

namespace CrateIL.Cli.Tests;

/// <summary>
/// Small inputs for the image commands: a temporary folder with an untrained tiny CRATE (and ViT) checkpoint that names
/// its classes, and synthetic photos of odd sizes with a bright square on a dark background.
/// </summary>
internal sealed class ImageFixtures : IDisposable
{
    public static readonly string[] ClassNames = ["circle", "square", "triangle"];

    public ImageFixtures()
    {
        Root = Path.Combine(Path.GetTempPath(), "crateil-images-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Root);
        Directory.CreateDirectory(Combine("photos"));
        Crate = SaveModel("crate.safetensors", CrateVariant.Crate, InputResize.Resize);
        Vit = SaveModel("vit.safetensors", CrateVariant.Vit, InputResize.ResizeCenterCrop);
        SavePhoto(Combine("photos", "wide.png"), 61, 37, 20, 8);
        SavePhoto(Combine("photos", "tall.jpg"), 30, 50, 5, 25);
        File.WriteAllText(Combine("photos", "notes.txt"), "not an image");
    }

    public string Root { get; }

    /// <summary>CRATE, 32×32, patch 8 (4×4 grid), 2 heads, 3 named classes, evaluated with a plain resize.</summary>
    public string Crate { get; }

    /// <summary>ViT of the same shape, evaluated with resize + centre crop.</summary>
    public string Vit { get; }

    public string Photos => Combine("photos");

    public string Combine(params string[] parts) => Path.Combine([Root, .. parts]);

    public static CrateConfig Config(CrateVariant variant) => new()
    {
        ImageHeight = 32, ImageWidth = 32, PatchSize = 8, Channels = 3, Classes = ClassNames.Length,
        Dim = 16, Depth = 2, Heads = 2, Variant = variant,
    };

    private string SaveModel(string name, CrateVariant variant, InputResize resize)
    {
        string path = Combine(name);
        using var cpu = DeviceRegistry.Open("cpu", 1);
        using var model = new CrateModel(Config(variant), cpu, seed: 3);
        CrateCheckpoint.Save(model, path, new ModelInput { Resize = resize, ClassNames = ClassNames, Dataset = "test" });
        return path;
    }

    /// <summary>A dark <paramref name="width"/>×<paramref name="height"/> photo with a bright square at (x, y).</summary>
    public static RgbImage Photo(int width, int height, int x, int y, int side = 12)
    {
        var img = new RgbImage(width, height);
        for (int j = 0; j < height; j++)
            for (int i = 0; i < width; i++)
            {
                bool inside = i >= x && i < x + side && j >= y && j < y + side;
                int o = (j * width + i) * 3;
                img.Data[o] = inside ? (byte)240 : (byte)(20 + i % 7);
                img.Data[o + 1] = inside ? (byte)200 : (byte)(30 + j % 5);
                img.Data[o + 2] = inside ? (byte)40 : (byte)60;
            }
        return img;
    }

    public static void SavePhoto(string path, int width, int height, int x, int y)
    {
        var img = Photo(width, height, x, y);
        if (path.EndsWith(".jpg", StringComparison.Ordinal)) ImageFile.SaveJpeg(path, img, 95);
        else ImageFile.SavePng(path, img);
    }

    /// <summary>The labelme-examples photos, or null (the caller skips visibly) when the package is not installed.</summary>
    public static string? LabelmePhotos()
    {
        string root = Environment.GetEnvironmentVariable("CRATEIL_LABELME_DIR") is { Length: > 0 } d ? d : "/usr/share/doc/labelme-examples/examples";
        string photos = Path.Combine(root, "instance_segmentation", "data_annotated");
        bool present = File.Exists(Path.Combine(photos, "2011_000003.jpg"));
        if (!present && Environment.GetEnvironmentVariable("CI") == "true")
            throw new InvalidOperationException($"labelme-examples not found under {root}; test.sh installs it under CI");
        return present ? photos : null;
    }

    public void Dispose()
    {
        if (Directory.Exists(Root)) Directory.Delete(Root, recursive: true);
    }
}
