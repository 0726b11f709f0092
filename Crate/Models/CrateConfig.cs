using CrateIL.Nn.Layers;

namespace CrateIL.Crate.Models;

/// <summary>
/// The hyper-parameters of a CRATE model (the arguments of the reference constructor
/// <c>CRATE(image_size, patch_size, num_classes, dim, depth, heads, pool, channels, dim_head, dropout, emb_dropout, ista)</c>)
/// plus λ and the layer variant. <see cref="DimHead"/> defaults to dim/heads (the presets' choice; the reference
/// constructor's own default of 64 is never used by a preset). Call <see cref="Validate"/> (the model does) before use.
/// </summary>
public sealed partial record CrateConfig
{
    private readonly int? _dimHead;

    public int ImageHeight { get; init; } = 224;
    public int ImageWidth { get; init; } = 224;
    public int PatchSize { get; init; } = 16;
    public int Channels { get; init; } = 3;
    public int Classes { get; init; } = 1000;
    public int Dim { get; init; } = 384;
    public int Depth { get; init; } = 12;
    public int Heads { get; init; } = 6;

    /// <summary>Width of one attention head; dim/heads unless set.</summary>
    public int DimHead
    {
        get => _dimHead ?? (Heads > 0 ? Dim / Heads : 0);
        init => _dimHead = value;
    }

    public Pooling Pool { get; init; } = Pooling.Cls;

    /// <summary>ISTA step size η (the reference's <c>ista</c> argument).</summary>
    public float Eta { get; init; } = 0.1f;

    /// <summary>ISTA sparsity weight λ (hard-coded 0.1 in the reference).</summary>
    public float Lambda { get; init; } = 0.1f;

    /// <summary>Dropout inside the attention and output projection (0 in every preset).</summary>
    public float Dropout { get; init; }

    /// <summary>Dropout after the positional embedding (0 in every preset).</summary>
    public float EmbDropout { get; init; }

    public CrateVariant Variant { get; init; } = CrateVariant.Crate;

    /// <summary>Patch-grid rows H/P.</summary>
    public int GridRows => PatchSize > 0 ? ImageHeight / PatchSize : 0;

    /// <summary>Patch-grid columns W/P.</summary>
    public int GridCols => PatchSize > 0 ? ImageWidth / PatchSize : 0;

    /// <summary>Patch tokens N (the CLS token makes N + 1 rows per image).</summary>
    public int Patches => GridRows * GridCols;

    /// <summary>heads·dim_head, the width of the attention projection.</summary>
    public int Inner => Heads * DimHead;

    /// <summary>Whether the attention has an output projection (<c>to_out</c>); MSSA drops it iff heads = 1 and dim_head = dim.</summary>
    public bool ProjectsOut => !(Heads == 1 && DimHead == Dim) || UsesMhsa;

    internal bool UsesMhsa => Variant is CrateVariant.Vit or CrateVariant.CrateMhsa;
    internal bool UsesMlp => Variant is CrateVariant.Vit or CrateVariant.CrateMlp;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first inconsistent setting.</summary>
    public CrateConfig Validate()
    {
        static void Positive(int value, string name)
        {
            if (value < 1) throw new ArgumentException($"CRATE config: {name} must be positive (got {value})", name);
        }
        Positive(ImageHeight, "image height");
        Positive(ImageWidth, "image width");
        Positive(PatchSize, "patch_size");
        Positive(Channels, "channels");
        Positive(Classes, "num_classes");
        Positive(Dim, "dim");
        Positive(Depth, "depth");
        Positive(Heads, "heads");
        Positive(DimHead, "dim_head");
        if (ImageHeight % PatchSize != 0 || ImageWidth % PatchSize != 0)
            throw new ArgumentException($"CRATE config: image {ImageHeight}×{ImageWidth} is not a multiple of the patch size {PatchSize}");
        if (Pool is not (Pooling.Cls or Pooling.Mean)) throw new ArgumentException($"CRATE config: unknown pooling {Pool}");
        if (!Enum.IsDefined(Variant)) throw new ArgumentException($"CRATE config: unknown variant {Variant}");
        if (!float.IsFinite(Eta) || !float.IsFinite(Lambda)) throw new ArgumentException($"CRATE config: η ({Eta}) and λ ({Lambda}) must be finite");
        if (Variant == CrateVariant.CrateSth && !(Eta * Lambda >= 0f))
            throw new ArgumentException($"CRATE config: the symmetric threshold needs ηλ ≥ 0 (η = {Eta}, λ = {Lambda})");
        if (!(Dropout >= 0f && Dropout < 1f)) throw new ArgumentException($"CRATE config: dropout must be in [0, 1) (got {Dropout})");
        if (!(EmbDropout >= 0f && EmbDropout < 1f)) throw new ArgumentException($"CRATE config: emb_dropout must be in [0, 1) (got {EmbDropout})");
        if ((long)Classes * Dim > int.MaxValue || (long)(Patches + 1) * Dim > int.MaxValue)
            throw new ArgumentException("CRATE config: a parameter tensor would exceed 2³¹ elements");
        return this;
    }

    /// <summary>
    /// The number of scalar parameters, from the module tree (crate-reference §1.1) without building the model:
    /// patch embedding 2·pd + pd·D + D + 2D (pd = C·P²), CLS D, positions (N + 1)·D, per layer the attention half
    /// (MSSA: 2D + D·inner [+ inner·D + D]; MHSA: 2D + 3·inner·(D + 1) + inner·D + D) and the second half
    /// (ISTA: 2D + D²; MLP: 2D + 4D² + 4D + 4D² + D), head 2D + D·classes + classes.
    /// </summary>
    public long ParameterCount()
    {
        Validate();
        long d = Dim, inner = Inner, pd = (long)Channels * PatchSize * PatchSize;
        long embedding = 2 * pd + pd * d + d + 2 * d + d + (Patches + 1L) * d;
        long attention = UsesMhsa
            ? 2 * d + 3 * inner * (d + 1) + inner * d + d
            : 2 * d + d * inner + (ProjectsOut ? inner * d + d : 0);
        long second = UsesMlp ? 2 * d + 4 * d * d + 4 * d + 4 * d * d + d : 2 * d + d * d;
        long head = 2 * d + d * Classes + Classes;
        return embedding + Depth * (attention + second) + head;
    }

    public bool Equals(CrateConfig? other) =>
        other is not null && ImageHeight == other.ImageHeight && ImageWidth == other.ImageWidth && PatchSize == other.PatchSize
        && Channels == other.Channels && Classes == other.Classes && Dim == other.Dim && Depth == other.Depth
        && Heads == other.Heads && DimHead == other.DimHead && Pool == other.Pool && Eta.Equals(other.Eta)
        && Lambda.Equals(other.Lambda) && Dropout.Equals(other.Dropout) && EmbDropout.Equals(other.EmbDropout)
        && Variant == other.Variant;

    public override int GetHashCode() =>
        HashCode.Combine(HashCode.Combine(ImageHeight, ImageWidth, PatchSize, Channels, Classes, Dim, Depth, Heads),
            HashCode.Combine(DimHead, Pool, Eta, Lambda, Dropout, EmbDropout, Variant));

    public override string ToString() =>
        $"{Variant} image {ImageHeight}×{ImageWidth}, patch {PatchSize}, channels {Channels}, classes {Classes}, dim {Dim}, " +
        $"depth {Depth}, heads {Heads} × {DimHead}, pool {Pool.ToString().ToLowerInvariant()}, η {Eta}, λ {Lambda}, " +
        $"dropout {Dropout}, emb_dropout {EmbDropout}";
}
