using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using CrateIL.Crate.Checkpoints;
using CrateIL.Crate.Data;

namespace CrateIL.Crate.Models;

/// <summary>How a photo is turned into the model's input at evaluation time.</summary>
public enum InputResize
{
    /// <summary>Resize straight to the model's size (aspect ratio not kept): what <c>crate train</c> evaluates ImageFolder data with.</summary>
    Resize,

    /// <summary>Resize the shorter side to size / crop fraction, then centre-crop (torchvision's Resize(256) + CenterCrop(224)).</summary>
    ResizeCenterCrop,
}

/// <summary>
/// What a checkpoint's model expects of an image and what its outputs mean: the evaluation resize, the per-channel
/// normalisation it was trained with and the class names. Stored as JSON in the safetensors metadata under
/// <see cref="MetadataKey"/> by <c>crate train</c>, so <c>crate infer</c>, <c>attention</c>, <c>pca</c>, <c>maskcut</c> and
/// <c>segeval</c> prepare a user's photos exactly as the model saw its validation images. Checkpoints without it
/// (imported <c>.pth</c> files, older runs) get <see cref="Default"/>: ImageNet normalisation, the usual 0.875 centre crop
/// and no class names — what the official CRATE ImageNet checkpoints were evaluated with.
/// </summary>
public sealed record ModelInput
{
    /// <summary>The safetensors metadata key of the JSON.</summary>
    public const string MetadataKey = "crate_input";

    [JsonPropertyName("resize"), JsonConverter(typeof(JsonStringEnumConverter<InputResize>))]
    public InputResize Resize { get; init; } = InputResize.ResizeCenterCrop;

    /// <summary>Crop fraction of <see cref="InputResize.ResizeCenterCrop"/> (0.875 = 224/256).</summary>
    [JsonPropertyName("crop_fraction")] public double CropFraction { get; init; } = 224.0 / 256.0;

    /// <summary>Per-channel mean subtracted after scaling bytes to [0, 1].</summary>
    [JsonPropertyName("mean")] public float[] Mean { get; init; } = [.. Normalization.ImageNet.Mean];

    /// <summary>Per-channel standard deviation divided by after the mean.</summary>
    [JsonPropertyName("std")] public float[] Std { get; init; } = [.. Normalization.ImageNet.Std];

    /// <summary>Class names in label order, when the training data named them (at most the model's class count; labels past the end have none).</summary>
    [JsonPropertyName("class_names")] public string[]? ClassNames { get; init; }

    /// <summary>The <c>--data</c> the model was trained on, for the record (e.g. <c>imagefolder:/photos</c>).</summary>
    [JsonPropertyName("dataset")] public string? Dataset { get; init; }

    /// <summary>The input of a checkpoint that says nothing: ImageNet (or its grey mean) normalisation, 0.875 centre crop.</summary>
    public static ModelInput Default(int channels) => channels switch
    {
        1 => new ModelInput { Mean = [.. Normalization.ImageNetGrey.Mean], Std = [.. Normalization.ImageNetGrey.Std] },
        3 => new ModelInput(),
        _ => new ModelInput { Mean = Enumerable.Repeat(0f, channels).ToArray(), Std = Enumerable.Repeat(1f, channels).ToArray() },
    };

    /// <summary>The input of a model trained on <paramref name="training"/> with <paramref name="normalization"/>, evaluated with <paramref name="resize"/>.</summary>
    public static ModelInput For(IDataset training, Normalization normalization, InputResize resize, string? dataset = null) => new()
    {
        Resize = resize,
        Mean = [.. normalization.Mean],
        Std = [.. normalization.Std],
        ClassNames = training.ClassNames.Count > 0 ? [.. training.ClassNames] : null,
        Dataset = dataset,
    };

    /// <summary>The normalisation as the data pipeline's type (not stored: <see cref="Mean"/> and <see cref="Std"/> are).</summary>
    [JsonIgnore]
    public Normalization Normalization => new(Mean, Std);

    /// <summary>The evaluation pipeline for a model of <paramref name="config"/>'s input size: resize (and crop), then normalise.</summary>
    public ImagePipeline Pipeline(CrateConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        ImageTransform transform = Resize == InputResize.ResizeCenterCrop && config.ImageHeight == config.ImageWidth
            ? new ResizeCenterCrop(config.ImageHeight, CropFraction)
            : new Data.Resize(config.ImageWidth, config.ImageHeight);
        return new ImagePipeline(transform, Normalization);
    }

    /// <summary>The name of class <paramref name="label"/>, or <c>class {label}</c> when the checkpoint has none.</summary>
    public string ClassName(int label) =>
        ClassNames is { } names && label >= 0 && label < names.Length ? names[label] : string.Create(CultureInfo.InvariantCulture, $"class {label}");

    /// <summary>Stores this input in checkpoint metadata.</summary>
    public void WriteTo(IDictionary<string, string> metadata)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        metadata[MetadataKey] = JsonSerializer.Serialize(this);
    }

    /// <summary>
    /// The input stored in <paramref name="metadata"/>, or <see cref="Default"/> for <paramref name="config"/>'s channels when
    /// there is none; <see cref="CheckpointFormatException"/> naming <paramref name="path"/> when it is malformed or
    /// does not fit the model (channel count, class count).
    /// </summary>
    public static ModelInput From(IReadOnlyDictionary<string, string> metadata, CrateConfig config, string path)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        ArgumentNullException.ThrowIfNull(config);
        if (!metadata.TryGetValue(MetadataKey, out var json)) return Default(config.Channels);
        ModelInput? input;
        try
        {
            input = JsonSerializer.Deserialize<ModelInput>(json);
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException(path, $"metadata '{MetadataKey}' is not valid JSON: {e.Message}");
        }
        if (input is null) throw new CheckpointFormatException(path, $"metadata '{MetadataKey}' is null");
        if (input.Mean is null || input.Std is null || input.Mean.Length != config.Channels || input.Std.Length != config.Channels)
            throw new CheckpointFormatException(path, $"metadata '{MetadataKey}' normalises {input.Mean?.Length ?? 0}/{input.Std?.Length ?? 0} channels; the model has {config.Channels}");
        if (input.Std.Any(s => !(s > 0) || !float.IsFinite(s)) || input.Mean.Any(m => !float.IsFinite(m)))
            throw new CheckpointFormatException(path, $"metadata '{MetadataKey}' has a non-finite mean or a non-positive standard deviation");
        if (!(input.CropFraction is > 0 and <= 1))
            throw new CheckpointFormatException(path, string.Create(CultureInfo.InvariantCulture, $"metadata '{MetadataKey}' has crop fraction {input.CropFraction}; it must be in (0, 1]"));
        // Fewer names than outputs is legitimate: a 10-way head trained on a 2-class folder names labels 0 and 1 only.
        if (input.ClassNames is { } names && names.Length > config.Classes)
            throw new CheckpointFormatException(path, $"metadata '{MetadataKey}' names {names.Length} classes; the model has {config.Classes}");
        return input;
    }

    /// <summary>The input stored in a checkpoint file (reads only its header).</summary>
    public static ModelInput Read(string checkpointPath, CrateConfig config) =>
        From(Safetensors.ReadHeader(checkpointPath).Metadata, config, checkpointPath);
}
