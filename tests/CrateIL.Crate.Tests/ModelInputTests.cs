using CrateIL.Compute.Devices;
using CrateIL.Crate.Checkpoints;
using CrateIL.Crate.Data;
using CrateIL.Crate.Models;
using Xunit;

namespace CrateIL.Crate.Tests;

public class ModelInputTests
{
    private static readonly CrateConfig Tiny = new()
    {
        ImageHeight = 16, ImageWidth = 16, PatchSize = 4, Channels = 3, Classes = 3, Dim = 8, Depth = 1, Heads = 2,
    };

    [Fact]
    public void A_checkpoint_keeps_class_names_and_normalisation()
    {
        using var dir = new CheckpointFixtures.TempDir();
        using var device = CpuDevice.Create(1);
        using var model = new CrateModel(Tiny, device);
        var input = new ModelInput
        {
            Resize = InputResize.Resize, Mean = [0.5f, 0.25f, 0.125f], Std = [2f, 3f, 4f], ClassNames = ["cat", "dog", "eel"], Dataset = "imagefolder:x",
        };
        string path = dir.File("m.safetensors");
        CrateCheckpoint.Save(model, path, input);

        var read = ModelInput.Read(path, Tiny);
        Assert.Equal(InputResize.Resize, read.Resize);
        Assert.Equal([0.5f, 0.25f, 0.125f], read.Mean);
        Assert.Equal([2f, 3f, 4f], read.Std);
        Assert.Equal(["cat", "dog", "eel"], read.ClassNames!);
        Assert.Equal("dog", read.ClassName(1));
        Assert.Equal("class 7", read.ClassName(7));
        // A head wider than the training data's classes: the extra labels have no name, and that is valid.
        var partial = new Dictionary<string, string> { [ModelInput.MetadataKey] = """{"class_names":["cat"]}""" };
        Assert.Equal("class 2", ModelInput.From(partial, Tiny, path).ClassName(2));
        Assert.Equal("imagefolder:x", read.Dataset);
        Assert.DoesNotContain("Normalization", Safetensors.ReadHeader(path).Metadata[ModelInput.MetadataKey]);
        var pipeline = read.Pipeline(Tiny);
        Assert.IsType<Resize>(pipeline.Transform);
        Assert.Equal((16, 16), pipeline.OutputSize(40, 30));
    }

    [Fact]
    public void A_checkpoint_without_it_gets_imagenet_and_a_centre_crop()
    {
        using var dir = new CheckpointFixtures.TempDir();
        using var device = CpuDevice.Create(1);
        using var model = new CrateModel(Tiny, device);
        string path = dir.File("m.safetensors");
        CrateCheckpoint.Save(model, path);
        var read = ModelInput.Read(path, Tiny);
        Assert.Equal(InputResize.ResizeCenterCrop, read.Resize);
        Assert.Equal([0.485f, 0.456f, 0.406f], read.Mean);
        Assert.Null(read.ClassNames);
        var crop = Assert.IsType<ResizeCenterCrop>(read.Pipeline(Tiny).Transform);
        Assert.Equal(18, crop.ResizeTo); // ⌊16 / 0.875⌋
    }

    [Theory]
    [InlineData("""{"mean":[0.5],"std":[1]}""", "normalises 1/1 channels; the model has 3")]
    [InlineData("""{"mean":[0,0,0],"std":[1,0,1]}""", "non-positive standard deviation")]
    [InlineData("""{"class_names":["a","b","c","d"]}""", "names 4 classes; the model has 3")]
    [InlineData("""{"crop_fraction":1.5}""", "crop fraction 1.5")]
    [InlineData("""{"resize":"Stretch"}""", "not valid JSON")]
    [InlineData("""[1,""", "not valid JSON")]
    public void Malformed_metadata_is_a_checkpoint_error_naming_the_file(string json, string problem)
    {
        var metadata = new Dictionary<string, string> { [ModelInput.MetadataKey] = json };
        var e = Assert.Throws<CheckpointFormatException>(() => ModelInput.From(metadata, Tiny, "/x/m.safetensors"));
        Assert.Contains("/x/m.safetensors", e.Message);
        Assert.Contains(problem, e.Message);
    }
}
