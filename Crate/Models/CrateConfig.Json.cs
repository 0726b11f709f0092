using System.Text;
using System.Text.Json;
using CrateIL.Nn.Layers;

namespace CrateIL.Crate.Models;

/// <summary>A model configuration file (or checkpoint metadata) is malformed or inconsistent.</summary>
public sealed class CrateConfigException(string file, string problem, Exception? inner = null)
    : Exception($"{file}: {problem}", inner)
{
    public string File { get; } = file;
    public string Problem { get; } = problem;
}

public sealed partial record CrateConfig
{
    private static readonly string[] JsonKeys =
        ["image_size", "patch_size", "num_classes", "dim", "depth", "heads", "dim_head", "pool", "channels",
         "dropout", "emb_dropout", "ista", "lambd", "variant"];

    /// <summary>
    /// The configuration as JSON with the reference constructor's argument names: <c>image_size</c> (an int when
    /// square, else [h, w]), <c>patch_size</c>, <c>num_classes</c>, <c>dim</c>, <c>depth</c>, <c>heads</c>,
    /// <c>dim_head</c>, <c>pool</c>, <c>channels</c>, <c>dropout</c>, <c>emb_dropout</c>, <c>ista</c> (η),
    /// plus <c>lambd</c> (λ) and <c>variant</c>.
    /// </summary>
    public string ToJson(bool indented = true)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = indented }))
        {
            w.WriteStartObject();
            if (ImageHeight == ImageWidth) w.WriteNumber("image_size", ImageHeight);
            else
            {
                w.WriteStartArray("image_size");
                w.WriteNumberValue(ImageHeight);
                w.WriteNumberValue(ImageWidth);
                w.WriteEndArray();
            }
            w.WriteNumber("patch_size", PatchSize);
            w.WriteNumber("num_classes", Classes);
            w.WriteNumber("dim", Dim);
            w.WriteNumber("depth", Depth);
            w.WriteNumber("heads", Heads);
            w.WriteNumber("dim_head", DimHead);
            w.WriteString("pool", Pool == Pooling.Mean ? "mean" : "cls");
            w.WriteNumber("channels", Channels);
            w.WriteNumber("dropout", Dropout);
            w.WriteNumber("emb_dropout", EmbDropout);
            w.WriteNumber("ista", Eta);
            w.WriteNumber("lambd", Lambda);
            w.WriteString("variant", VariantName(Variant));
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>Writes <see cref="ToJson"/> to <paramref name="path"/>.</summary>
    public void Save(string path) => File.WriteAllText(path, ToJson() + "\n");

    /// <summary>Reads a configuration file; malformed or inconsistent content throws <see cref="CrateConfigException"/>.</summary>
    public static CrateConfig Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CrateConfigException(path, $"cannot read the configuration: {e.Message}", e);
        }
        return FromJson(text, path);
    }

    /// <summary>
    /// Parses a configuration. Required: <c>image_size</c>, <c>patch_size</c>, <c>num_classes</c>, <c>dim</c>,
    /// <c>depth</c>, <c>heads</c>; the rest default as in the presets. Unknown keys are errors (they are typos more
    /// often than not). <paramref name="file"/> names the source in errors.
    /// </summary>
    public static CrateConfig FromJson(string json, string file = "<json>")
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw new CrateConfigException(file, $"not valid JSON: {e.Message}", e);
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new CrateConfigException(file, $"the configuration must be a JSON object, not {root.ValueKind}");
            foreach (var property in root.EnumerateObject())
                if (Array.IndexOf(JsonKeys, property.Name) < 0)
                    throw new CrateConfigException(file, $"unknown key '{property.Name}' (known: {string.Join(", ", JsonKeys)})");

            var (height, width) = ImageSize(root, file);
            var config = new CrateConfig
            {
                ImageHeight = height,
                ImageWidth = width,
                PatchSize = Int(root, "patch_size", file),
                Classes = Int(root, "num_classes", file),
                Dim = Int(root, "dim", file),
                Depth = Int(root, "depth", file),
                Heads = Int(root, "heads", file),
                Channels = Int(root, "channels", file, 3),
                Pool = String(root, "pool", file, "cls") switch
                {
                    "cls" => Pooling.Cls,
                    "mean" => Pooling.Mean,
                    var other => throw new CrateConfigException(file, $"pool must be \"cls\" or \"mean\", not \"{other}\""),
                },
                Eta = Float(root, "ista", file, 0.1f),
                Lambda = Float(root, "lambd", file, 0.1f),
                Dropout = Float(root, "dropout", file, 0f),
                EmbDropout = Float(root, "emb_dropout", file, 0f),
                Variant = ParseVariant(String(root, "variant", file, "crate"), file),
            };
            if (root.TryGetProperty("dim_head", out _)) config = config with { DimHead = Int(root, "dim_head", file) };
            try
            {
                return config.Validate();
            }
            catch (ArgumentException e)
            {
                throw new CrateConfigException(file, e.Message, e);
            }
        }
    }

    /// <summary>The JSON name of a variant (<c>crate</c>, <c>vit</c>, <c>crate-mlp</c>, <c>crate-mhsa</c>, <c>crate-sth</c>).</summary>
    public static string VariantName(CrateVariant variant) => variant switch
    {
        CrateVariant.Crate => "crate",
        CrateVariant.Vit => "vit",
        CrateVariant.CrateMlp => "crate-mlp",
        CrateVariant.CrateMhsa => "crate-mhsa",
        CrateVariant.CrateSth => "crate-sth",
        _ => throw new ArgumentOutOfRangeException(nameof(variant), variant, "unknown CRATE variant"),
    };

    private static CrateVariant ParseVariant(string name, string file)
    {
        foreach (var v in Enum.GetValues<CrateVariant>())
            if (string.Equals(VariantName(v), name, StringComparison.OrdinalIgnoreCase)) return v;
        throw new CrateConfigException(file, $"unknown variant \"{name}\" (known: crate, vit, crate-mlp, crate-mhsa, crate-sth)");
    }

    private static (int Height, int Width) ImageSize(JsonElement root, string file)
    {
        if (!root.TryGetProperty("image_size", out var e)) throw new CrateConfigException(file, "missing required key 'image_size'");
        if (e.ValueKind == JsonValueKind.Number)
        {
            int s = IntValue(e, "image_size", file);
            return (s, s);
        }
        if (e.ValueKind == JsonValueKind.Array && e.GetArrayLength() == 2)
            return (IntValue(e[0], "image_size[0]", file), IntValue(e[1], "image_size[1]", file));
        throw new CrateConfigException(file, $"image_size must be an integer or [height, width], not {e.GetRawText()}");
    }

    private static int Int(JsonElement root, string key, string file, int? fallback = null)
    {
        if (root.TryGetProperty(key, out var e)) return IntValue(e, key, file);
        return fallback ?? throw new CrateConfigException(file, $"missing required key '{key}'");
    }

    private static int IntValue(JsonElement e, string key, string file)
    {
        if (e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int v)) return v;
        throw new CrateConfigException(file, $"'{key}' must be an integer, not {e.GetRawText()}");
    }

    private static float Float(JsonElement root, string key, string file, float fallback)
    {
        if (!root.TryGetProperty(key, out var e)) return fallback;
        if (e.ValueKind == JsonValueKind.Number && e.TryGetDouble(out double v)) return (float)v;
        throw new CrateConfigException(file, $"'{key}' must be a number, not {e.GetRawText()}");
    }

    private static string String(JsonElement root, string key, string file, string fallback)
    {
        if (!root.TryGetProperty(key, out var e)) return fallback;
        if (e.ValueKind == JsonValueKind.String) return e.GetString()!;
        throw new CrateConfigException(file, $"'{key}' must be a string, not {e.GetRawText()}");
    }

}
