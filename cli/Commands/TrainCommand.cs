using System.CommandLine;
using System.Globalization;
using CrateIL.Compute.Devices;
using CrateIL.Crate.Data;
using CrateIL.Crate.Models;
using CrateIL.Crate.Training;

namespace CrateIL.Cli.Commands;

/// <summary><c>crate train</c>: supervised training with per-epoch evaluation, probes, metrics and checkpoints.</summary>
internal static class TrainCommand
{
    /// <summary>The CI-sized default for <c>--data shapes</c>: 32×32, patch 4, dim 192, depth 6, heads 3, 10 classes.</summary>
    public const string CiModel = "ci";

    public static CrateConfig CiConfig(int imageSize = 32) => new()
    {
        ImageHeight = imageSize, ImageWidth = imageSize, PatchSize = 4, Channels = 3, Classes = ShapesInClutter.ShapeCount,
        Dim = 192, Depth = 6, Heads = 3,
    };

    public static Command Create()
    {
        var data = new Option<string>("--data") { Description = "shapes | imagefolder:<dir> (with train/ and val/ class folders) | fashion-mnist[:<dir>]", DefaultValueFactory = _ => "shapes" };
        var model = new Option<string>("--model") { Description = $"'{CiModel}' (32×32, patch 4, dim 192, depth 6, heads 3), a preset ({string.Join(", ", CrateConfig.PresetNames)}) or a config.json", DefaultValueFactory = _ => CiModel };
        var models = new ModelOptions();
        var epochs = new Option<int>("--epochs") { DefaultValueFactory = _ => 10 };
        var batch = new Option<int>("--batch") { Description = "Images per optimizer step", DefaultValueFactory = _ => 64 };
        var accumulate = new Option<int>("--accumulate") { Description = "Micro-batches per optimizer step", DefaultValueFactory = _ => 1 };
        var lr = new Option<double>("--lr") { Description = "Peak learning rate", DefaultValueFactory = _ => 1e-4 };
        var wd = new Option<double>("--wd") { Description = "Weight decay", DefaultValueFactory = _ => 0.05 };
        var warmup = new Option<int>("--warmup-steps") { DefaultValueFactory = _ => 0 };
        var smoothing = new Option<float>("--label-smoothing") { DefaultValueFactory = _ => 0.1f };
        var clip = new Option<float?>("--clip") { Description = "Global gradient-norm clip (off unless given)" };
        var optimizer = new Option<string>("--optimizer") { DefaultValueFactory = _ => "lion" };
        optimizer.AcceptOnlyFromAmong("lion", "adamw");
        var output = new Option<DirectoryInfo>("--out") { Description = "Output directory for metrics and checkpoints", Required = true };
        var resume = new Option<FileInfo?>("--resume") { Description = "Continue from a training checkpoint (epoch-NNNN.safetensors)" };
        var device = new Option<string?>("--device") { Description = "cpu, cuda, opencl or ilgpu-cpu[:index] (default: the best available)" };
        var threads = new Option<int?>("--threads") { Description = "CPU worker threads (cpu device)" };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 0 };
        var trainSize = new Option<int>("--train-size") { Description = "shapes: training images", DefaultValueFactory = _ => 2048 };
        var valSize = new Option<int>("--val-size") { Description = "shapes: validation images", DefaultValueFactory = _ => 512 };
        var workers = new Option<int>("--workers") { Description = "Data loader threads (0: on the training thread)", DefaultValueFactory = _ => 1 };
        var cmd = new Command("train", "Train a CRATE classifier, printing one line per epoch")
        {
            data, model, epochs, batch, accumulate, lr, wd, warmup, smoothing, clip, optimizer, output, resume, device, threads,
            seed, trainSize, valSize, workers,
        };
        models.AddTo(cmd);
        cmd.SetAction(parse => CliErrors.Run(() =>
        {
            string spec = parse.GetValue(model)!;
            var config = spec == CiModel ? CiConfig() : models.Resolve(parse, spec);
            if (spec == CiModel) config = models.Resolve(parse, WriteTemporaryConfig(config));
            var options = new TrainerOptions
            {
                Optimizer = parse.GetValue(optimizer) == "adamw" ? OptimizerKind.AdamW : OptimizerKind.Lion,
                LearningRate = parse.GetValue(lr),
                WeightDecay = parse.GetValue(wd),
                Beta2 = parse.GetValue(optimizer) == "adamw" ? 0.999 : 0.99,
                WarmupSteps = parse.GetValue(warmup),
                LabelSmoothing = parse.GetValue(smoothing),
                AccumulationSteps = parse.GetValue(accumulate),
                ClipNorm = parse.GetValue(clip),
                Epochs = parse.GetValue(epochs),
                BatchSize = parse.GetValue(batch),
                Seed = parse.GetValue(seed),
                Workers = parse.GetValue(workers),
                OutputDirectory = parse.GetValue(output)!.FullName,
            };
            string? resumePath = parse.GetValue(resume)?.FullName;
            if (resumePath is not null) config = CrateCheckpoint.ReadConfig(resumePath);
            var (train, validation) = OpenData(parse.GetValue(data)!, config, options.Seed, parse.GetValue(trainSize), parse.GetValue(valSize));
            if (config.Classes < train.ClassCount) config = config with { Classes = train.ClassCount };
            using var dev = DeviceRegistry.Open(parse.GetValue(device), parse.GetValue(threads));
            using var trainer = resumePath is null
                ? new Trainer(config, train, validation, options, dev)
                : Trainer.Resume(resumePath, train, validation, options, dev);
            Console.WriteLine($"model: {config}");
            Console.WriteLine($"device: {dev.Spec}; {train.Count} training / {validation.Count} validation images; {trainer.StepsPerEpoch} steps per epoch; output {options.OutputDirectory}");
            trainer.EpochCompleted = m => Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"epoch {m.Epoch,3}  step {m.Step,6}  lr {m.LearningRate:E2}  train {m.TrainLoss:F4}  val {m.ValLoss:F4}  top1 {m.Top1 * 100:F1}%  top5 {m.Top5 * 100:F1}%  {m.ImagesPerSecond:F1} img/s  |g| {m.GradNorm:F3}  Rc {string.Join("/", m.Probes.Select(p => p.CodingRate.ToString("F1", CultureInfo.InvariantCulture)))}  sparsity {string.Join("/", m.Probes.Select(p => p.Sparsity.ToString("F2", CultureInfo.InvariantCulture)))}"));
            try
            {
                trainer.Run();
            }
            catch (TrainingDivergedException e)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                return 3;
            }
            return 0;
        }));
        return cmd;
    }

    /// <summary>The CI config goes through the same override path as a config.json (ModelOptions.Resolve).</summary>
    private static string WriteTemporaryConfig(CrateConfig config)
    {
        string path = Path.Combine(Path.GetTempPath(), $"crate-ci-{Environment.ProcessId}.json");
        File.WriteAllText(path, config.ToJson(indented: true));
        return path;
    }

    private static (IDataset Train, IDataset Validation) OpenData(string spec, CrateConfig c, int seed, int trainSize, int valSize)
    {
        if (spec == "shapes")
        {
            if (c.ImageHeight != c.ImageWidth) throw new ArgumentException($"--data shapes renders square images; the model wants {c.ImageHeight}×{c.ImageWidth}");
            return (new ShapesInClutter(trainSize, seed * 2L + 1, c.ImageHeight, c.PatchSize),
                    new ShapesInClutter(valSize, seed * 2L + 2, c.ImageHeight, c.PatchSize));
        }
        var trainPipeline = new ImagePipeline(new RandomResizedCrop(c.ImageWidth, c.ImageHeight), Norm(c.Channels));
        var evalPipeline = new ImagePipeline(new Resize(c.ImageWidth, c.ImageHeight), Norm(c.Channels));
        if (spec.StartsWith("imagefolder:", StringComparison.Ordinal))
        {
            string root = spec["imagefolder:".Length..];
            string trainDir = Path.Combine(root, "train"), valDir = Path.Combine(root, "val");
            if (!Directory.Exists(trainDir)) trainDir = valDir = root;
            return (new ImageFolderDataset(trainDir, trainPipeline), new ImageFolderDataset(valDir, evalPipeline));
        }
        if (spec == "fashion-mnist" || spec.StartsWith("fashion-mnist:", StringComparison.Ordinal))
        {
            string dir = spec.Contains(':') ? spec[(spec.IndexOf(':') + 1)..] : IdxDataset.DebianFashionMnistDirectory;
            return (IdxDataset.FashionMnist(dir, true, trainPipeline), IdxDataset.FashionMnist(dir, false, evalPipeline));
        }
        throw new ArgumentException($"--data '{spec}' is not shapes, imagefolder:<dir> or fashion-mnist[:<dir>]");
    }

    private static Normalization Norm(int channels) => channels switch
    {
        1 => Normalization.ImageNetGrey,
        3 => Normalization.ImageNet,
        _ => throw new ArgumentException($"no default normalisation for {channels} channels"),
    };
}
