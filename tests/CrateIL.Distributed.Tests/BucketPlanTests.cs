using CrateIL.Compute.Devices;
using CrateIL.Crate.Models;
using CrateIL.Distributed;
using Xunit;

namespace CrateIL.Distributed.Tests;

public class BucketPlanTests
{
    [Fact]
    public void Buckets_are_unions_of_backward_parts_from_the_end_and_cover_the_buffer_once()
    {
        // Parts reported by a backward pass over a 1000-float buffer: [900,1000), [700,900), [650,700), [100,650), [0,100).
        long[] parts = [900, 700, 650, 100, 0];
        var buckets = GradientAllreduce.PlanBuckets(1000, parts, bucketElements: 250);
        Assert.Equal([new GradientBucket(700, 300), new GradientBucket(100, 600), new GradientBucket(0, 100)], buckets);
        // Every part its own bucket when the minimum is one float; one bucket when it exceeds the buffer.
        Assert.Equal(5, GradientAllreduce.PlanBuckets(1000, parts, 1).Length);
        Assert.Equal([new GradientBucket(0, 1000)], GradientAllreduce.PlanBuckets(1000, parts, 5000));
    }

    [Fact]
    public void Bad_part_lists_are_rejected()
    {
        Assert.Throws<ArgumentException>(() => GradientAllreduce.PlanBuckets(100, [50, 10], 8));
        Assert.Throws<ArgumentException>(() => GradientAllreduce.PlanBuckets(100, [50, 60, 0], 8));
        Assert.Throws<ArgumentOutOfRangeException>(() => GradientAllreduce.PlanBuckets(100, [0], 0));
    }

    [Fact]
    public void CrateModel_reports_each_finished_part_in_backward_order_and_the_ranges_are_final()
    {
        var config = CrateConfig.Tiny(classes: 5, patch: 4, imageSize: 12) with { Dim = 16, Heads = 2, DimHead = 8, Depth = 3 };
        using var device = DeviceRegistry.Open("cpu", 1);
        using var model = new CrateModel(config, device, seed: 2);
        var parts = model.BackwardPartStarts;
        Assert.Equal(config.Depth + 3, parts.Count);
        Assert.Equal(0, parts[^1]);
        for (int i = 1; i < parts.Count; i++) Assert.True(parts[i] < parts[i - 1], $"part {i} at {parts[i]} does not descend from {parts[i - 1]}");
        Assert.Equal(model.Parameters.Parameters.First(p => p.Name.StartsWith("transformer.layers.2.", StringComparison.Ordinal)).Offset, parts[1]);
        Assert.Equal(model.Parameters.Parameters.First(p => p.Name.StartsWith("mlp_head.", StringComparison.Ordinal)).Offset, parts[0]);

        var rng = new Random(4);
        var pixels = new float[2 * 3 * 12 * 12];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = (float)rng.NextDouble();
        using var images = device.FromHost(pixels, 2, 3, 12, 12);
        using var dLogits = device.Allocate(2, 5);
        dLogits.CopyFrom([0.1f, -0.2f, 0.3f, 0.05f, -0.25f, -0.1f, 0.2f, 0.1f, -0.3f, 0.1f]);
        // Reference: the full gradient of one backward pass.
        model.Parameters.ZeroGrads();
        model.Forward(images);
        model.Backward(dLogits);
        var full = model.Parameters.Grads.ToArray();
        // Each report: the suffix it names already equals the full gradient.
        var reported = new List<long>();
        model.Parameters.ZeroGrads();
        model.Forward(images);
        model.GradientsFinal = offset =>
        {
            reported.Add(offset);
            var now = model.Parameters.Grads.ToArray();
            for (long j = offset; j < now.Length; j++)
                if (now[j] != full[j]) Assert.Fail($"gradient {j} changed after its part at {offset} was reported final");
        };
        model.Backward(dLogits);
        Assert.Equal(parts, reported);
    }
}
