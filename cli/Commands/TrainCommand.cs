using System.CommandLine;
using System.Globalization;
using CrateIL.Cli.Distributed;
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
        var data = new Option<string>("--data")
        {
            Description = "shapes | emerge-shapes (4 classes, large objects, mild clutter) | fashion-clutter[:<dir>] (Fashion-MNIST items on clutter) | imagefolder:<dir> (with train/ and val/ class folders) | fashion-mnist[:<dir>]",
            DefaultValueFactory = _ => "shapes",
        };
        var stream = new Option<bool>("--stream") { Description = "shapes, emerge-shapes, fashion-clutter: a fresh image for every sample of every epoch (--train-size images per epoch)" };
        var augment = new Option<string>("--augment") { Description = "shapes, emerge-shapes, fashion-clutter: none | flip | crop (random resized crop, scale 0.5–1, and flip)", DefaultValueFactory = _ => "none" };
        augment.AcceptOnlyFromAmong("none", "flip", "crop");
        var variant = new Option<string?>("--variant") { Description = "Override the model's layer variant: crate, vit, crate-mlp, crate-mhsa, crate-sth" };
        var dim = new Option<int?>("--dim") { Description = "Override the model width" };
        var depth = new Option<int?>("--depth") { Description = "Override the model depth" };
        var heads = new Option<int?>("--heads") { Description = "Override the head count (dim_head becomes dim/heads)" };
        var dataRate = new Option<bool>("--data-rate") { Description = "Before training, measure how many training samples per second the data yields on 1 and 2 threads" };
        var recipe = new Option<string?>("--recipe")
        {
            Description = "tiny | default | long: train with the emerge recipe (Crate/Training/EmergeRecipe.cs: model shape, optimizer, schedule, steps, streamed data); --data emerge-shapes (default) or fashion-clutter[:<dir>], --variant crate|vit, --seed, --threads, --out apply, the other training options are ignored",
        };
        recipe.AcceptOnlyFromAmong("tiny", "default", "long");
        var grid = new Option<FileInfo?>("--save-grid") { Description = "generated data: write the first 32 held-out images and masks as a PNG grid" };
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
        var resume = new Option<FileInfo?>("--resume") { Description = "Continue from a training checkpoint (last.safetensors, best.safetensors or epoch-NNNN.safetensors; one written on Ctrl-C continues at the step it stopped)" };
        var keep = new Option<int>("--keep") { Description = "Per-epoch checkpoints (epoch-NNNN.safetensors) to keep, the newest; 0: none. last.safetensors and best.safetensors (best validation top-1) are always written", DefaultValueFactory = _ => 3 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object per line (start, steps every --log-every, epochs, done or interrupted) and nothing else on stdout" };
        var logEvery = new Option<int?>("--log-every") { Description = "Steps between reads of the training loss and gradient norm from the device: a step line (redirected output or --json) and the divergence check each time (default: a tenth of an epoch)" };
        var device = new Option<string?>("--device") { Description = "cpu, cuda, opencl or ilgpu-cpu[:index] (default: the best available)" };
        var threads = new Option<int?>("--threads") { Description = "CPU worker threads (cpu device)" };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 0 };
        var trainSize = new Option<int>("--train-size") { Description = "shapes: training images", DefaultValueFactory = _ => 2048 };
        var valSize = new Option<int>("--val-size") { Description = "shapes: validation images", DefaultValueFactory = _ => 512 };
        var workers = new Option<int>("--workers") { Description = "Data loader threads (0: on the training thread)", DefaultValueFactory = _ => 1 };
        var cmd = new Command("train", "Train a CRATE classifier: a progress bar per epoch (plain lines when redirected, --json for scripts), last/best/epoch checkpoints, metrics and curves.png; Ctrl-C writes a resumable checkpoint")
        {
            data, model, epochs, batch, accumulate, lr, wd, warmup, smoothing, clip, optimizer, output, resume, keep, json, logEvery,
            device, threads, seed, trainSize, valSize, workers, stream, augment, variant, dim, depth, heads, dataRate, grid, recipe,
        };
        models.AddTo(cmd);
        var distributed = new DistributedOptions();
        distributed.AddTo(cmd);
        // CliErrors turns data errors (e.g. Fashion-MNIST not installed) into one line and exit 2, divergence into exit 3.
        // Under mpirun (or --distributed) every rank runs the same body; DistributedRun aborts the job if one fails.
        cmd.SetAction(parse => DistributedRun.Run(parse.GetValue(distributed.Distributed), world => CliErrors.Run(() => Train(parse, world))));
        return cmd;

        int Train(ParseResult parse, CrateIL.Distributed.MpiWorld? world)
        {
            bool jsonLines = parse.GetValue(json);
            // With --json, stdout carries only the JSON objects; the human-readable lines go to stderr.
            Action<string> info = jsonLines ? Console.Error.WriteLine : Console.WriteLine;
            if (parse.GetValue(keep) < 0) throw new ArgumentException($"--keep {parse.GetValue(keep)} must be 0 or more");
            if (parse.GetValue(logEvery) is < 1) throw new ArgumentException($"--log-every {parse.GetValue(logEvery)} must be at least 1");
            string spec = parse.GetValue(model)!;
            var config = spec == CiModel ? CiConfig() : models.Resolve(parse, spec);
            if (spec == CiModel) config = models.Resolve(parse, WriteTemporaryConfig(config));
            config = Override(config, parse.GetValue(variant), parse.GetValue(dim), parse.GetValue(depth), parse.GetValue(heads));
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
                KeepEpochCheckpoints = parse.GetValue(keep),
                LogEvery = parse.GetValue(logEvery),
                OutputDirectory = parse.GetValue(output)!.FullName,
            };
            string? resumePath = parse.GetValue(resume)?.FullName;
            if (resumePath is not null) config = CrateCheckpoint.ReadConfig(resumePath);
            string dataSpec = parse.GetValue(data)!;
            IDataset train, validation;
            if (parse.GetValue(recipe) is string budgetName)
            {
                var emerge = EmergeRecipe.For(Enum.Parse<EmergeBudget>(budgetName, ignoreCase: true));
                var which = dataSpec.StartsWith("fashion-clutter", StringComparison.Ordinal) ? EmergeDataset.FashionClutter
                    : dataSpec is "emerge-shapes" or "shapes" ? EmergeDataset.Shapes
                    : throw new ArgumentException($"--recipe trains on emerge-shapes or fashion-clutter[:<dir>], not '{dataSpec}'");
                string? fashionDir = dataSpec.Contains(':') ? dataSpec[(dataSpec.IndexOf(':') + 1)..] : null;
                (train, var heldOut) = emerge.Data(which, options.Seed, fashionDir);
                validation = heldOut;
                config = emerge.Config(parse.GetValue(variant) is string v ? Override(config, v, null, null, null).Variant : CrateVariant.Crate, train.ClassCount);
                options = emerge.Training with { Seed = options.Seed, OutputDirectory = options.OutputDirectory, KeepEpochCheckpoints = options.KeepEpochCheckpoints, LogEvery = options.LogEvery };
                info(string.Create(CultureInfo.InvariantCulture,
                    $"recipe {budgetName}: {emerge.TotalSteps} steps × {options.BatchSize} = {emerge.TotalImages} fresh images, {options.Optimizer} lr {options.LearningRate:G3}, warm-up {options.WarmupSteps}, {emerge.HeldOutImages} held-out images"));
            }
            else
            {
                (train, validation) = OpenProcedural(dataSpec, config, options.Seed, parse.GetValue(trainSize), parse.GetValue(valSize),
                    parse.GetValue(stream), parse.GetValue(augment)!) ?? OpenData(dataSpec, config, options.Seed, parse.GetValue(trainSize), parse.GetValue(valSize));
                if (config.Classes < train.ClassCount || (resumePath is null && dataSpec != "shapes" && IsProcedural(dataSpec)))
                    config = config with { Classes = train.ClassCount };
            }
            // Every checkpoint records how photos must be prepared for this model (the validation pipeline: a plain resize
            // to the model's size, this normalisation) and the class names, for infer/attention/pca/maskcut/segeval.
            options = options with { Input = ModelInput.For(train, Norm(config.Channels), InputResize.Resize, dataSpec) };
            if (parse.GetValue(grid) is { } gridFile && validation is IMaskedDataset masked)
                MaskedGrid.Save(masked, gridFile.FullName, 32, 8);
            if (parse.GetValue(dataRate)) MeasureDataRate(train, info);
            using var dev = world is null ? CliErrors.OpenDevice(parse.GetValue(device), parse.GetValue(threads)) : DistributedRun.OpenDevice(parse.GetValue(device), parse.GetValue(threads));
            using var parallel = distributed.Create(parse, world);
            options = options with { DataParallel = parallel };
            using var trainer = resumePath is null
                ? new Trainer(config, train, validation, options, dev)
                : Trainer.Resume(resumePath, train, validation, options, dev);
            if (parallel is not null) info(parallel.Describe(dev));
            return TrainRun.Execute(trainer, config, dev.Spec, train.Count, validation.Count, jsonLines,
                () => ResumeCommand(parse, trainer.LastCheckpoint!));
        }
    }

    /// <summary>The command line that continues this run from <paramref name="checkpoint"/>: the same arguments, --resume replaced.</summary>
    private static string ResumeCommand(ParseResult parse, string checkpoint)
    {
        var args = new List<string>();
        bool afterCommand = false, skipValue = false;
        foreach (var token in parse.Tokens)
        {
            if (!afterCommand)
            {
                afterCommand = token.Type == System.CommandLine.Parsing.TokenType.Command && token.Value == "train";
                continue;
            }
            if (skipValue)
            {
                skipValue = false;
                continue;
            }
            if (token.Value == "--resume")
            {
                skipValue = true;
                continue;
            }
            if (token.Value.StartsWith("--resume=", StringComparison.Ordinal)) continue;
            args.Add(token.Value);
        }
        args.Add("--resume");
        args.Add(checkpoint);
        return "crate train " + string.Join(' ', args.Select(Quote));
    }

    private static string Quote(string arg) =>
        arg.Length > 0 && arg.All(c => char.IsAsciiLetterOrDigit(c) || "-_./:=,+@%".Contains(c)) ? arg : "'" + arg.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    /// <summary>The CI config goes through the same override path as a config.json (ModelOptions.Resolve).</summary>
    private static string WriteTemporaryConfig(CrateConfig config)
    {
        string path = Path.Combine(Path.GetTempPath(), $"crate-ci-{Environment.ProcessId}.json");
        File.WriteAllText(path, config.ToJson(indented: true));
        return path;
    }

    /// <summary>Samples per second that <see cref="IDataset.Load"/> yields (render + transform) on 1 and 2 threads.</summary>
    private static void MeasureDataRate(IDataset data, Action<string> info)
    {
        // Warm up first so the JIT's compile of the renderer is not counted against the one-thread figure.
        var warm = new float[data.SampleLength];
        for (int i = 0; i < 100; i++)
        {
            var random = SampleRandom.For(98, 0, i);
            data.Load(i % data.Count, warm, ref random);
        }
        foreach (int threads in new[] { 1, 2 })
        {
            int perThread = 1500;
            var clock = System.Diagnostics.Stopwatch.StartNew();
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
            {
                var buffer = new float[data.SampleLength];
                for (int i = 0; i < perThread; i++)
                {
                    var random = SampleRandom.For(99, t, i);
                    data.Load(i % data.Count, buffer, ref random);
                }
            });
            info(string.Create(CultureInfo.InvariantCulture,
                $"data: {threads} thread(s) yield {threads * perThread / clock.Elapsed.TotalSeconds:F0} samples/s"));
        }
    }

    private static CrateConfig Override(CrateConfig config, string? variant, int? dim, int? depth, int? heads)
    {
        if (variant is not null)
        {
            var parsed = Enum.GetValues<CrateVariant>().Where(v => string.Equals(CrateConfig.VariantName(v), variant, StringComparison.OrdinalIgnoreCase)).ToArray();
            if (parsed.Length == 0) throw new ArgumentException($"--variant '{variant}' is not crate, vit, crate-mlp, crate-mhsa or crate-sth");
            config = config with { Variant = parsed[0] };
        }
        if (dim is int d) config = config with { Dim = d, DimHead = d / config.Heads };
        if (depth is int l) config = config with { Depth = l };
        if (heads is int h) config = config with { Heads = h, DimHead = config.Dim / h };
        return config.Validate();
    }

    private static bool IsProcedural(string spec) =>
        spec is "shapes" or "emerge-shapes" || spec == "fashion-clutter" || spec.StartsWith("fashion-clutter:", StringComparison.Ordinal);

    /// <summary>
    /// The generated sets: a streamed or fixed training set (seed·2 + 1) with the chosen augmentation, and a fixed
    /// held-out set (seed·2 + 2) without it. Null for a spec that is not generated.
    /// </summary>
    internal static (IDataset Train, IDataset Validation)? OpenProcedural(string spec, CrateConfig c, int seed, int trainSize, int valSize,
        bool stream, string augment)
    {
        if (!IsProcedural(spec)) return null;
        if (c.ImageHeight != c.ImageWidth) throw new ArgumentException($"--data {spec} renders square images; the model wants {c.ImageHeight}×{c.ImageWidth}");
        int side = c.ImageHeight;
        ImageTransform transform = augment switch
        {
            "flip" => new KeepSize(0.5),
            "crop" => new RandomResizedCrop(side, side, minScale: 0.5),
            _ => ImageTransform.None,
        };
        var trainPipeline = new ImagePipeline(transform);
        long trainSeed = seed * 2L + 1, heldOutSeed = seed * 2L + 2;
        if (spec.StartsWith("fashion-clutter", StringComparison.Ordinal))
        {
            string dir = spec.Contains(':') ? spec[(spec.IndexOf(':') + 1)..] : IdxDataset.DebianFashionMnistDirectory;
            var items = FashionItems.Load(dir);
            return (stream ? FashionClutter.Stream(items, trainSize, trainSeed, side, c.PatchSize, pipeline: trainPipeline)
                           : new FashionClutter(items, trainSize, trainSeed, side, c.PatchSize, pipeline: trainPipeline),
                    new FashionClutter(items, valSize, heldOutSeed, side, c.PatchSize, heldOut: true));
        }
        var settings = spec == "emerge-shapes" ? ShapesInClutterSettings.Emerge : ShapesInClutterSettings.Default;
        return (stream ? ShapesInClutter.Stream(trainSize, trainSeed, side, c.PatchSize, trainPipeline, settings)
                       : new ShapesInClutter(trainSize, trainSeed, side, c.PatchSize, trainPipeline, settings),
                new ShapesInClutter(valSize, heldOutSeed, side, c.PatchSize, settings: settings));
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
