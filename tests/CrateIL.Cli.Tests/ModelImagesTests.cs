using CrateIL.Cli.Images;
using CrateIL.Compute.Devices;
using CrateIL.Crate.Data;
using CrateIL.Crate.Models;
using CrateIL.Segmentation.Imaging;
using Xunit;

namespace CrateIL.Cli.Tests;

/// <summary>The shared photo layer of the image commands: naming inputs, opening checkpoints, preparing batches.</summary>
public sealed class ModelImagesTests : IDisposable
{
    private readonly ImageFixtures _fx = new();

    public void Dispose() => _fx.Dispose();

    [Fact]
    public void Expand_FileDirectoryAndGlob_SortedImagesOnly()
    {
        string wide = _fx.Combine("photos", "wide.png"), tall = _fx.Combine("photos", "tall.jpg");
        Assert.Equal([wide], ImageInputs.Expand(wide));
        Assert.Equal([tall, wide], ImageInputs.Expand(_fx.Photos)); // notes.txt is not an image
        Assert.Equal([wide], ImageInputs.Expand(_fx.Combine("photos", "*.png")));
        Assert.Equal([tall, wide], ImageInputs.Expand(_fx.Combine("photos", "*")).Where(ImageInputs.IsImageName));
    }

    [Theory]
    [InlineData("missing.png", "no such file or directory")]
    [InlineData("*.gif", "no files match")]
    [InlineData("nowhere/*.png", "does not exist")]
    public void Expand_NothingMatches_NamesThePattern(string relative, string problem)
    {
        string spec = _fx.Combine("photos", relative);
        var e = Assert.Throws<ArgumentException>(() => ImageInputs.Expand(spec, "--images"));
        Assert.Contains($"--images '{spec}'", e.Message, StringComparison.Ordinal);
        Assert.Contains(problem, e.Message, StringComparison.Ordinal);
        Directory.CreateDirectory(_fx.Combine("empty"));
        Assert.Contains("no image files", Assert.Throws<ArgumentException>(() => ImageInputs.Expand(_fx.Combine("empty"))).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UniqueStems_RepeatedStemsGetSuffixes()
    {
        Assert.Equal(["x", "y", "x-2", "x-3"], ImageInputs.UniqueStems(["/a/x.jpg", "/a/y.png", "/b/x.png", "/c/x.jpeg"]));
    }

    [Fact]
    public void Open_ReadsModelAndInput()
    {
        using var cpu = DeviceRegistry.Open("cpu", 1);
        using var m = CheckpointModel.Open(_fx.Crate, cpu);
        Assert.Equal(ImageFixtures.Config(CrateVariant.Crate), m.Config);
        Assert.Equal(ImageFixtures.ClassNames, m.Input.ClassNames);
        Assert.Equal(InputResize.Resize, m.Input.Resize);
        Assert.False(m.Model.Training);
        Assert.Throws<FileNotFoundException>(() => CheckpointModel.Open(_fx.Combine("none.safetensors"), cpu));
    }

    [Fact]
    public void Prepare_UniformPhoto_IsTheNormalisedColour()
    {
        // A uniform photo stays uniform under any resampling, so every input value is exactly (byte/255 − mean)/std.
        var photo = new RgbImage(45, 27);
        for (int i = 0; i < photo.Data.Length; i += 3) (photo.Data[i], photo.Data[i + 1], photo.Data[i + 2]) = (200, 100, 50);
        string path = _fx.Combine("uniform.png");
        ImageFile.SavePng(path, photo);
        using var cpu = DeviceRegistry.Open("cpu", 1);
        using var m = CheckpointModel.Open(_fx.Crate, cpu);
        var batch = ModelImages.Prepare([path, path], m, (16, 40));
        Assert.Equal((2, 3, 16, 40), (batch.Count, batch.Channels, batch.Height, batch.Width));
        Assert.Equal(["uniform", "uniform-2"], batch.Images.Select(i => i.Stem));
        byte[] colour = [200, 100, 50];
        for (int c = 0; c < 3; c++)
        {
            float expected = (colour[c] / 255f - m.Input.Mean[c]) / m.Input.Std[c];
            for (int b = 0; b < 2; b++)
                for (int p = 0; p < 16 * 40; p++)
                    Assert.Equal(expected, batch.Pixels[(b * 3 + c) * 640 + p], 4);
        }
        Assert.Equal(new PixelRegion(0, 0, 45, 27), batch.Images[0].Region); // a plain resize sees the whole photo
        using var t = batch.Upload(cpu);
        Assert.Equal(batch.Pixels, t.ToArray());
    }

    [Fact]
    public void Prepare_MatchesTheCheckpointPipeline_AndCentreCropRegion()
    {
        string wide = _fx.Combine("photos", "wide.png");
        using var cpu = DeviceRegistry.Open("cpu", 1);
        using var m = CheckpointModel.Open(_fx.Vit, cpu);
        var batch = ModelImages.Prepare([wide], m);
        // The same bytes through the data layer's own decoder and the checkpoint's pipeline give the same tensor.
        byte[] rgba = [];
        var view = ImageCodec.DecodeFile(wide, ref rgba);
        var expected = new float[3 * 32 * 32];
        var random = new SampleRandom(0);
        m.Input.Pipeline(m.Config).Run(view, expected, ref random);
        Assert.Equal(expected, batch.Pixels);
        // 61×37, crop 0.875 at 32: shorter side → 36, longer → 59; the 32² window at (14, 2) is photo pixels [14, 48) × [2, 35).
        Assert.Equal(new PixelRegion(14, 2, 34, 33), batch.Images[0].Region);
        var visible = batch.Images[0].Visible();
        Assert.Equal((34, 33), (visible.Width, visible.Height));
        Assert.Equal(batch.Images[0].Photo.Data.AsSpan((2 * 61 + 14) * 3, 34 * 3).ToArray(), visible.Data.AsSpan(0, 34 * 3).ToArray());
    }

    [Fact]
    public void Prepare_BadSizeOrFile_OneLineErrors()
    {
        using var cpu = DeviceRegistry.Open("cpu", 1);
        using var vit = CheckpointModel.Open(_fx.Vit, cpu);
        string wide = _fx.Combine("photos", "wide.png");
        Assert.Contains("multiple of the model's patch size 8", Assert.Throws<ArgumentException>(() => ModelImages.Prepare([wide], vit, (30, 32))).Message, StringComparison.Ordinal);
        Assert.Contains("centre-crops squares", Assert.Throws<ArgumentException>(() => ModelImages.Prepare([wide], vit, (32, 64))).Message, StringComparison.Ordinal);
        var e = Assert.Throws<ImageFormatException>(() => ModelImages.Prepare([_fx.Combine("photos", "notes.txt")], vit));
        Assert.Equal(_fx.Combine("photos", "notes.txt"), e.File);
    }
}
