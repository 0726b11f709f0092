using SkiaSharp;

namespace CrateIL.Segmentation.Rendering;

/// <summary>
/// The typeface for figure text (image grids here, training curves in the cli): DejaVu Sans when the system has it,
/// asked for by family name and then at its usual Debian/Fedora paths (a Skia build without fontconfig may not resolve
/// names), otherwise Skia's default typeface, so text degrades to another font instead of failing.
/// </summary>
public static class FigureFonts
{
    public const string Family = "DejaVu Sans";
    private static readonly string[] RegularFiles = ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/dejavu/DejaVuSans.ttf"];
    private static readonly string[] BoldFiles = ["/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf"];
    private static readonly Lazy<SKTypeface> Regular = new(() => Resolve(SKFontStyle.Normal, RegularFiles));
    private static readonly Lazy<SKTypeface> Bold = new(() => Resolve(SKFontStyle.Bold, BoldFiles));

    /// <summary>The DejaVu Sans font file at a known path, or null: for libraries that register fonts by file.</summary>
    public static string? FontFile(bool bold) => (bold ? BoldFiles : RegularFiles).FirstOrDefault(File.Exists);

    /// <summary>DejaVu Sans (regular or bold) if found, else Skia's default typeface. Shared; do not dispose.</summary>
    public static SKTypeface Typeface(bool bold) => bold ? Bold.Value : Regular.Value;

    /// <summary>An antialiased font of <paramref name="size"/> pixels; the caller disposes it.</summary>
    public static SKFont Font(float size, bool bold) =>
        new(Typeface(bold), size) { Edging = SKFontEdging.Antialias, Subpixel = true };

    private static SKTypeface Resolve(SKFontStyle style, string[] files)
    {
        var named = SKTypeface.FromFamilyName(Family, style);
        if (named is not null && named.FamilyName == Family && named.GlyphCount > 0) return named;
        foreach (var file in files)
            if (File.Exists(file) && SKTypeface.FromFile(file) is { GlyphCount: > 0 } fromFile) return fromFile;
        return named ?? SKTypeface.Default;
    }
}
