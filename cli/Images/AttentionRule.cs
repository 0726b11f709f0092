using System.Globalization;
using CrateIL.Segmentation.Attention;

namespace CrateIL.Cli.Images;

/// <summary>
/// How attention maps become masks, as <c>--threshold</c> spells it: <c>dino:T</c> keeps the most-attended patches
/// until they hold mass T (DINO's rule, T = 0.6 by default), <c>top:P</c> keeps the fraction P of patches with the
/// highest attention (the CRATE paper's App. B.3 rule).
/// </summary>
internal sealed record AttentionRule(string Kind, double Value)
{
    public static AttentionRule Default { get; } = new("dino", AttentionThreshold.DinoMass);

    public static AttentionRule Parse(string text, string option = "--threshold")
    {
        ArgumentNullException.ThrowIfNull(text);
        var parts = text.Split(':');
        string kind = parts[0].Trim().ToLowerInvariant();
        if (parts.Length > 2 || kind is not ("dino" or "top"))
            throw new ArgumentException($"{option} '{text}' is not dino:T or top:P (e.g. dino:0.6)");
        double value = kind == "dino" ? AttentionThreshold.DinoMass : AttentionThreshold.PaperTopFraction;
        if (parts.Length == 2 && !(double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out value) && value > 0 && value <= 1))
            throw new ArgumentException($"{option} '{text}': the value must be a number in (0, 1]");
        return new AttentionRule(kind, value);
    }

    /// <summary>One mask per head of <paramref name="maps"/> (patch grid, row-major).</summary>
    public bool[][] Masks(AttentionMaps maps) => Kind == "dino" ? maps.MassMasks(Value) : maps.TopFractionMasks(Value);

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Kind}:{Value:0.###}");

    /// <summary>Words for figure footnotes.</summary>
    public string Describe() => Kind == "dino"
        ? string.Create(CultureInfo.InvariantCulture, $"most-attended patches holding {Value * 100:0.#}% of the attention (DINO)")
        : string.Create(CultureInfo.InvariantCulture, $"top {Value * 100:0.#}% of patches (CRATE App. B.3)");
}
