using System.Globalization;
using CrateIL.Compute.Devices;
using CrateIL.Compute.Verification;
using CrateIL.Crate.Models;
using CrateIL.Nn.Losses;
using static CrateIL.Compute.Verification.SampleData;

namespace CrateIL.Crate.Verification;

/// <summary>
/// The model part of <c>crate selftest</c>: one training step (forward, cross-entropy, backward) of CRATE-T and of
/// ViT-T on the run's device against the same step on the CPU SIMD path, from identical parameters and images.
/// On the CPU device the reference is a one-thread CPU run (so the check is of the threaded kernels' agreement).
/// </summary>
public static class ModelSelfTest
{
    public static void Run(SelfTestRun run)
    {
        foreach (var preset in new[] { "crate-t", "vit-t" })
        {
            var config = ConfigFor(run, preset);
            string shape = string.Create(CultureInfo.InvariantCulture,
                $"d{config.Dim} L{config.Depth} h{config.Heads} p{config.PatchSize} {config.ImageHeight}² b{Batch} c{config.Classes}");
            run.Case("model", $"{preset} train step", shape, c => Step(run.Device, config, c));
        }
    }

    private const int Batch = 2;

    /// <summary>
    /// The preset's width, depth and heads at a small image (few tokens keep the float32 CPU reference quick); on the
    /// ILGPU simulator a two-layer, 16-wide model.
    /// </summary>
    public static CrateConfig ConfigFor(SelfTestRun run, string preset)
    {
        var c = CrateConfig.Preset(preset, classes: 10, patch: 16, imageSize: run.Quick ? 32 : 64);
        if (run.Reduced) c = c with { Dim = 16, Heads = 2, DimHead = 8, Depth = 2, PatchSize = 8, ImageHeight = 16, ImageWidth = 16 };
        return c.Validate();
    }

    private static void Step(Device device, CrateConfig config, SelfTestCase c)
    {
        using var reference = device is CpuDevice ? CpuDevice.Create(1) : CpuDevice.Create();
        var images = Normal(91, (long)Batch * config.Channels * config.ImageHeight * config.ImageWidth);
        var labels = Labels(92, Batch, config.Classes);
        var cpu = StepOn(reference, config, images, labels, initial: null);
        var dev = StepOn(device, config, images, labels, initial: cpu.Initial);
        c.Compare("logits", dev.Logits, ToDouble(cpu.Logits), ModelTolerances.AgainstCpu(ToDouble(cpu.Logits), ModelTolerances.ActivationBound));
        c.Compare("loss", dev.Loss, cpu.Loss, ModelTolerances.AgainstCpu([cpu.Loss], ModelTolerances.ActivationBound));
        c.CompareEach("parameter grads", cpu.Grads.Select(g =>
        {
            var expected = ToDouble(g.Value);
            return (g.Key, dev.Grads[g.Key], expected, ModelTolerances.AgainstCpu(expected, ModelTolerances.GradientBound));
        }));
    }

    private sealed record StepResult(float[] Logits, float Loss, Dictionary<string, float[]> Grads, Dictionary<string, float[]> Initial);

    private static StepResult StepOn(Device device, CrateConfig config, float[] pixels, int[] labels, Dictionary<string, float[]>? initial)
    {
        using var model = new CrateModel(config, device, seed: 5);
        if (initial is not null)
            foreach (var p in model.Parameters.Parameters) p.Value.CopyFrom(initial[p.Name]);
        var values = model.Parameters.Parameters.ToDictionary(p => p.Name, p => p.Value.ToArray());
        model.Training = true;
        using var images = device.FromHost(pixels, Batch, config.Channels, config.ImageHeight, config.ImageWidth);
        using var dLogits = device.Allocate(Batch, config.Classes);
        var logits = model.Forward(images);
        var logitsHost = logits.ToArray();
        model.Parameters.ZeroGrads();
        using var criterion = new SoftmaxCrossEntropyLoss();
        float loss = criterion.ForwardBackward(logits, labels, dLogits);
        model.Backward(dLogits);
        device.Synchronize();
        return new StepResult(logitsHost, loss, model.Parameters.Parameters.ToDictionary(p => p.Name, p => p.Grad.ToArray()), values);
    }
}
