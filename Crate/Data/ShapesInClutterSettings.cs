namespace CrateIL.Crate.Data;

/// <summary>
/// What a <see cref="ShapesInClutter"/> image holds: which shape classes, how large the object is, how much clutter
/// surrounds it and how far its colour must stand off the clutter under it. <see cref="Default"/> is the original
/// generator (ten classes, 25–60 % of the side, 1–3 blobs and 1–4 strokes, contrast ≥ 0.3); its samples are unchanged
/// byte for byte. <see cref="Emerge"/> is the easier setting the emergence demo trains on (benchmarks/RESULTS.md,
/// "Emerge recipe", says why).
/// </summary>
public sealed record ShapesInClutterSettings
{
    /// <summary>The original generator.</summary>
    public static ShapesInClutterSettings Default { get; } = new();

    /// <summary>
    /// The emergence demo's setting: four classes that differ in global outline (disk, triangle, cross, ring), objects
    /// 55–85 % of the side across (≈ 15–45 % of the image area), at most one blob and two strokes, and the object's
    /// mean colour at least 0.5 (RGB distance) from the clutter under it.
    /// </summary>
    public static ShapesInClutterSettings Emerge { get; } = new()
    {
        Classes = [ShapeKind.Disk, ShapeKind.Triangle, ShapeKind.Cross, ShapeKind.Ring],
        MinDiameter = 0.55, MaxDiameter = 0.85,
        MinBlobs = 0, MaxBlobs = 1, MinStrokes = 0, MaxStrokes = 2,
        MinContrast = 0.5, ContrastAttempts = 20,
    };

    /// <summary>The classes in label order (label k is Classes[k]); distinct, at least two.</summary>
    public IReadOnlyList<ShapeKind> Classes { get; init; } = Enum.GetValues<ShapeKind>();

    /// <summary>Smallest bounding-circle diameter as a fraction of the side.</summary>
    public double MinDiameter { get; init; } = 0.25;

    /// <summary>Largest bounding-circle diameter as a fraction of the side (the object stays fully inside).</summary>
    public double MaxDiameter { get; init; } = 0.60;

    /// <summary>Distractor blobs per image, uniform in [MinBlobs, MaxBlobs].</summary>
    public int MinBlobs { get; init; } = 1;

    public int MaxBlobs { get; init; } = 3;

    /// <summary>Distractor strokes per image, uniform in [MinStrokes, MaxStrokes].</summary>
    public int MinStrokes { get; init; } = 1;

    public int MaxStrokes { get; init; } = 4;

    /// <summary>
    /// The object's colours are redrawn (up to <see cref="ContrastAttempts"/> times) until its mean colour is at least this
    /// far (RGB distance, channels in [0, 1]) from the mean of the clutter under its bounding box.
    /// </summary>
    public double MinContrast { get; init; } = 0.3;

    public int ContrastAttempts { get; init; } = 10;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first inconsistent setting.</summary>
    public ShapesInClutterSettings Validate()
    {
        if (Classes is null || Classes.Count < 2) throw new ArgumentException("ShapesInClutter settings: at least two classes are needed");
        if (Classes.Distinct().Count() != Classes.Count) throw new ArgumentException("ShapesInClutter settings: classes repeat");
        foreach (var k in Classes)
            if (!Enum.IsDefined(k)) throw new ArgumentException($"ShapesInClutter settings: unknown shape {k}");
        if (!(MinDiameter > 0 && MinDiameter <= MaxDiameter && MaxDiameter <= 0.9))
            throw new ArgumentException($"ShapesInClutter settings: diameters {MinDiameter}–{MaxDiameter} must satisfy 0 < min ≤ max ≤ 0.9 of the side");
        if (MinBlobs < 0 || MaxBlobs < MinBlobs) throw new ArgumentException($"ShapesInClutter settings: blob count {MinBlobs}–{MaxBlobs} is not a range");
        if (MinStrokes < 0 || MaxStrokes < MinStrokes) throw new ArgumentException($"ShapesInClutter settings: stroke count {MinStrokes}–{MaxStrokes} is not a range");
        if (!(MinContrast >= 0 && MinContrast < 1.7)) throw new ArgumentException($"ShapesInClutter settings: contrast {MinContrast} must be in [0, 1.7)");
        if (ContrastAttempts < 1) throw new ArgumentException($"ShapesInClutter settings: contrast attempts {ContrastAttempts} must be positive");
        return this;
    }
}
