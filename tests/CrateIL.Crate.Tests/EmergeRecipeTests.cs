using CrateIL.Crate.Data;
using CrateIL.Imaging;
using CrateIL.Crate.Models;
using CrateIL.Crate.Training;
using CrateIL.Nn.Layers;
using Xunit;

namespace CrateIL.Crate.Tests;

public class EmergeRecipeTests
{
    [Theory]
    [InlineData(EmergeBudget.Tiny, 300)]
    [InlineData(EmergeBudget.Default, 2000)]
    [InlineData(EmergeBudget.Long, 7000)]
    public void Both_models_share_one_shape_and_one_schedule(EmergeBudget budget, long steps)
    {
        var recipe = EmergeRecipe.For(budget);
        Assert.Equal(steps, recipe.TotalSteps);
        Assert.Equal(steps * 32, recipe.TotalImages);
        var crate = recipe.Config(CrateVariant.Crate, 4);
        var vit = recipe.Config(CrateVariant.Vit, 4);
        Assert.Equal(crate with { Variant = CrateVariant.Vit }, vit);
        Assert.Equal((32, 4, 96, 4, 4, 24), (crate.ImageHeight, crate.PatchSize, crate.Dim, crate.Depth, crate.Heads, crate.DimHead));
        Assert.Equal(Pooling.Cls, crate.Pool);
        var t = recipe.Training.Validate();
        Assert.Equal((OptimizerKind.AdamW, 2e-3, 0.05, 0.1f), (t.Optimizer, t.LearningRate, t.WeightDecay, t.LabelSmoothing));
        Assert.InRange(t.WarmupSteps, 1, steps / 10);
    }

    [Fact]
    public void Data_is_a_fresh_stream_and_an_indexed_held_out_set_with_masks()
    {
        var recipe = EmergeRecipe.For(EmergeBudget.Default);
        var (train, heldOut) = recipe.Data(EmergeDataset.Shapes, seed: 3);
        var stream = Assert.IsType<ShapesInClutter>(train);
        Assert.True(stream.IsStreamed);
        Assert.Equal(recipe.StepsPerEpoch * recipe.Training.BatchSize, train.Count);
        Assert.Equal(recipe.HeldOutImages, heldOut.Count);
        Assert.Equal(4, heldOut.ClassCount);
        Assert.Equal(32, heldOut.ImageSize);
        var rgb = new byte[32 * 32 * 3];
        var mask = new BinaryMask(32, 32);
        int label = heldOut.RenderMasked(0, rgb, mask);
        Assert.Equal(heldOut.GetLabel(0), label);
        Assert.InRange(mask.Area, 1, 32 * 32 - 1); // both object and background
    }

    [Fact]
    public void Fashion_clutter_without_the_package_says_which_package()
    {
        var recipe = EmergeRecipe.For(EmergeBudget.Tiny);
        var e = Assert.Throws<DatasetException>(() => recipe.Data(EmergeDataset.FashionClutter, 0, "/nonexistent/fashion-mnist"));
        Assert.Contains("dataset-fashion-mnist", e.Message);
    }
}
