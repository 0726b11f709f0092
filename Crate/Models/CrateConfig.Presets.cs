namespace CrateIL.Crate.Models;

public sealed partial record CrateConfig
{
    /// <summary>The canonical preset names accepted by <see cref="Preset"/> (aliases: CRATE_tiny, crate-tiny, ...).</summary>
    public static IReadOnlyList<string> PresetNames { get; } =
        ["crate-t", "crate-s", "crate-b", "crate-l", "crate-demo", "vit-t", "vit-s", "vit-b", "vit-l"];

    /// <summary>CRATE-T: dim 384, depth 12, 6 heads × 64 (6,090,856 parameters at 224/16, 1000 classes).</summary>
    public static CrateConfig Tiny(int classes = 1000, int patch = 16, int imageSize = 224) => Make(384, 12, 6, classes, patch, imageSize);

    /// <summary>CRATE-S: dim 576, depth 12, 12 heads × 48.</summary>
    public static CrateConfig Small(int classes = 1000, int patch = 16, int imageSize = 224) => Make(576, 12, 12, classes, patch, imageSize);

    /// <summary>CRATE-B: dim 768, depth 12, 12 heads × 64.</summary>
    public static CrateConfig Base(int classes = 1000, int patch = 16, int imageSize = 224) => Make(768, 12, 12, classes, patch, imageSize);

    /// <summary>CRATE-L: dim 1024, depth 24, 16 heads × 64.</summary>
    public static CrateConfig Large(int classes = 1000, int patch = 16, int imageSize = 224) => Make(1024, 24, 16, classes, patch, imageSize);

    /// <summary>
    /// The emergence demo model (NB <c>CRATE_base_demo</c>, the public <c>crate-demo.pth</c>): dim 768, depth 12,
    /// 6 heads × 128, patch 8, 21842 (ImageNet-21k) classes.
    /// </summary>
    public static CrateConfig Demo(int classes = 21842, int patch = 8, int imageSize = 224) =>
        Make(768, 12, 6, classes, patch, imageSize) with { DimHead = 128 };

    /// <summary>
    /// A preset by name (case-insensitive; <c>crate-t</c>, <c>CRATE_tiny</c>, <c>vit-s</c>, ...). Classes default to 1000
    /// (21842 for the demo), the patch to 16 (8 for the demo).
    /// </summary>
    public static CrateConfig Preset(string name, int? classes = null, int? patch = null, int imageSize = 224)
    {
        ArgumentNullException.ThrowIfNull(name);
        string key = name.Trim().ToLowerInvariant().Replace('_', '-');
        return key switch
        {
            "crate-t" or "crate-tiny" => Tiny(classes ?? 1000, patch ?? 16, imageSize),
            "crate-s" or "crate-small" => Small(classes ?? 1000, patch ?? 16, imageSize),
            "crate-b" or "crate-base" => Base(classes ?? 1000, patch ?? 16, imageSize),
            "crate-l" or "crate-large" => Large(classes ?? 1000, patch ?? 16, imageSize),
            "crate-demo" or "crate-base-demo" => Demo(classes ?? 21842, patch ?? 8, imageSize),
            "vit-t" or "vit-tiny" => Vit(192, 12, 3, classes ?? 1000, patch ?? 16, imageSize),
            "vit-s" or "vit-small" => Vit(384, 12, 6, classes ?? 1000, patch ?? 16, imageSize),
            "vit-b" or "vit-base" => Vit(768, 12, 12, classes ?? 1000, patch ?? 16, imageSize),
            "vit-l" or "vit-large" => Vit(1024, 24, 16, classes ?? 1000, patch ?? 16, imageSize),
            _ => throw new ArgumentException($"Unknown model preset '{name}' (known: {string.Join(", ", PresetNames)})", nameof(name)),
        };
    }

    /// <summary>Whether <paramref name="name"/> is a preset name or alias.</summary>
    public static bool IsPreset(string name)
    {
        try
        {
            Preset(name);
            return true;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private static CrateConfig Make(int dim, int depth, int heads, int classes, int patch, int imageSize) => new()
    {
        ImageHeight = imageSize, ImageWidth = imageSize, PatchSize = patch, Classes = classes,
        Dim = dim, Depth = depth, Heads = heads, DimHead = dim / heads,
    };

    private static CrateConfig Vit(int dim, int depth, int heads, int classes, int patch, int imageSize) =>
        Make(dim, depth, heads, classes, patch, imageSize) with { Variant = CrateVariant.Vit };
}
