using CrateIL.Imaging;

namespace CrateIL.Crate.Data;

/// <summary>The foreground shape classes of <see cref="ShapesInClutter"/>, in label order.</summary>
public enum ShapeKind
{
    Disk, Square, Triangle, Star, Cross, Ring, Hexagon, Crescent, Heart, Arrow,
}

/// <summary>Where the foreground object of a <see cref="ShapesInClutter"/> sample lies: its bounding circle and rotation.</summary>
public readonly record struct ShapePlacement(ShapeKind Kind, double CenterX, double CenterY, double Radius, double Rotation);

/// <summary>
/// A procedural classification and segmentation set, generated from a seed with no files: each RGB image holds one
/// foreground object of one of <see cref="ShapeKind"/>'s classes (label = class), with a bounding circle 25–60 % of the
/// side across, random position (fully inside), rotation, colours and texture (solid, stripes, checks, smooth noise,
/// gradient), over a smooth random background (low-frequency sinusoids or value noise through a 3-colour gradient),
/// distractor blobs and strokes textured the same way, and pixel noise. Object, background and distractor colours come
/// from one distribution, so colour alone does not find the object. The exact foreground mask comes with each image
/// (4×4 supersampled coverage ≥ 1/2; the same coverage antialiases the edge). Sample i is a pure function of (seed, i).
/// The geometry and textures are drawn by a per-pixel rasteriser (signed tests in the object's frame), no graphics library.
/// <para>
/// <see cref="ShapesInClutterSettings"/> chooses the classes, object size, clutter and contrast. Sample content is keyed
/// by a 64-bit sample key under the seed: an indexed set (the constructor) shows key i as sample i, a fixed set for
/// evaluation; a streamed set (<see cref="Stream"/>) draws a fresh key with the top bit set from the random stream
/// <see cref="DataLoader"/> hands to <see cref="Load"/>, so every epoch (and every sample of it) brings new images, and
/// they can never coincide with an indexed sample of the same seed (whose keys are below 2⁶³).
/// </para>
/// </summary>
public sealed class ShapesInClutter : IMaskedDataset
{
    public static int ShapeCount { get; } = Enum.GetValues<ShapeKind>().Length;

    private static readonly string[] s_names = Enum.GetNames<ShapeKind>().Select(n => n.ToLowerInvariant()).ToArray();

    private readonly ImagePipeline _pipeline;
    private readonly int[] _labelOfKind;

    [ThreadStatic] private static Workspace? t_workspace;

    private sealed class Workspace
    {
        public float[] Canvas = [];
        public byte[] Rgb = [];
        public byte[] Mask = [];
        public double[] Scratch = [];
    }

    /// <param name="count">Number of samples.</param>
    /// <param name="seed">Selects the whole set.</param>
    /// <param name="imageSize">Side in pixels; a multiple of <paramref name="patchSize"/>, at least 16.</param>
    /// <param name="patchSize">The model's patch size the side must be a multiple of.</param>
    /// <param name="pipeline">Sample transform; default: size kept, ImageNet normalisation.</param>
    /// <param name="settings">Classes, object size, clutter and contrast; default <see cref="ShapesInClutterSettings.Default"/>.</param>
    public ShapesInClutter(int count, long seed, int imageSize = 64, int patchSize = 8, ImagePipeline? pipeline = null,
        ShapesInClutterSettings? settings = null)
        : this(count, seed, imageSize, patchSize, pipeline, settings, streamed: false)
    {
    }

    /// <summary>
    /// A streamed training set: <paramref name="imagesPerEpoch"/> samples per epoch (what the loader and trainer count),
    /// each one a fresh image keyed by the loader's random stream for (seed, epoch, index); indices carry no content.
    /// </summary>
    public static ShapesInClutter Stream(int imagesPerEpoch, long seed, int imageSize = 64, int patchSize = 8, ImagePipeline? pipeline = null,
        ShapesInClutterSettings? settings = null) =>
        new(imagesPerEpoch, seed, imageSize, patchSize, pipeline, settings, streamed: true);

    private ShapesInClutter(int count, long seed, int imageSize, int patchSize, ImagePipeline? pipeline, ShapesInClutterSettings? settings, bool streamed)
    {
        if (count <= 0) throw new ArgumentOutOfRangeException(nameof(count), $"sample count {count} must be positive");
        if (patchSize <= 0) throw new ArgumentOutOfRangeException(nameof(patchSize), $"patch size {patchSize} must be positive");
        if (imageSize < 16 || imageSize % patchSize != 0)
            throw new ArgumentOutOfRangeException(nameof(imageSize), $"image side {imageSize} must be at least 16 and a multiple of the patch size {patchSize}");
        Count = count;
        Seed = seed;
        ImageSize = imageSize;
        PatchSize = patchSize;
        _pipeline = pipeline ?? ImagePipeline.Default;
        if (_pipeline.Channels != 3) throw new ArgumentException("ShapesInClutter images are RGB: use a 3-channel normalisation", nameof(pipeline));
        (Width, Height) = _pipeline.OutputSize(imageSize, imageSize);
        Settings = (settings ?? ShapesInClutterSettings.Default).Validate();
        IsStreamed = streamed;
        _labelOfKind = new int[ShapeCount];
        Array.Fill(_labelOfKind, -1);
        for (int k = 0; k < Settings.Classes.Count; k++) _labelOfKind[(int)Settings.Classes[k]] = k;
        _names = Settings.Classes.Select(c => s_names[(int)c]).ToArray();
    }

    private readonly string[] _names;

    public ShapesInClutterSettings Settings { get; }

    /// <summary>True for a streamed set (<see cref="Stream"/>): sample content comes from the loader's random stream, not the index.</summary>
    public bool IsStreamed { get; }

    public long Seed { get; }
    public int ImageSize { get; }
    public int PatchSize { get; }
    public int Count { get; }
    public int ClassCount => _names.Length;
    public IReadOnlyList<string> ClassNames => _names;
    public int Channels => 3;
    public int Height { get; }
    public int Width { get; }

    private SampleRandom SampleStream(long key) => SampleRandom.For(Seed, key, 0x5A4E_5E5L);

    /// <summary>The label of the object a shape kind is drawn for, −1 when the settings leave the kind out.</summary>
    public int LabelOf(ShapeKind kind) => _labelOfKind[(int)kind];

    /// <summary>The label of sample <paramref name="index"/>; a streamed set has none until the loader draws the sample.</summary>
    public int GetLabel(int index)
    {
        DatasetChecks.Index(index, Count);
        if (IsStreamed) throw new InvalidOperationException("a streamed ShapesInClutter sample's content (and label) comes from the loader's random stream, not its index");
        var rng = SampleStream(index);
        return rng.NextInt(Settings.Classes.Count);
    }

    /// <summary>
    /// Renders sample <paramref name="index"/>: interleaved RGB bytes (side²·3) and the foreground mask (side²);
    /// returns where the object is (its kind is the label).
    /// </summary>
    public ShapePlacement Render(int index, Span<byte> rgb, BinaryMask mask)
    {
        DatasetChecks.Index(index, Count);
        if (IsStreamed) throw new InvalidOperationException("a streamed ShapesInClutter has no image per index: render a sample key with RenderKey");
        return RenderKey(index, rgb, mask);
    }

    /// <summary>
    /// Renders the sample with key <paramref name="sampleKey"/> under this set's seed and settings (an indexed set's
    /// sample i is key i; streamed keys are negative).
    /// </summary>
    public ShapePlacement RenderKey(long sampleKey, Span<byte> rgb, BinaryMask mask)
    {
        ArgumentNullException.ThrowIfNull(mask);
        if (mask.Height != ImageSize || mask.Width != ImageSize)
            throw new ArgumentException($"mask is {mask.Height}×{mask.Width}; the images are {ImageSize}×{ImageSize}", nameof(mask));
        return RenderKey(sampleKey, rgb, mask.Pixels);
    }

    /// <summary>Renders into a 0/1 mask buffer (the training path keeps one per thread).</summary>
    private ShapePlacement RenderKey(long sampleKey, Span<byte> rgb, Span<byte> mask)
    {
        int s = ImageSize;
        if (rgb.Length < s * s * 3) throw new ArgumentException($"rgb holds {rgb.Length} bytes; {s * s * 3} are needed", nameof(rgb));
        if (mask.Length < s * s) throw new ArgumentException($"mask holds {mask.Length} entries; {s * s} are needed", nameof(mask));
        var ws = t_workspace ??= new Workspace();
        if (ws.Canvas.Length < s * s * 3) ws.Canvas = new float[s * s * 3];
        if (ws.Scratch.Length < ShapeRenderer.ScratchLength(s)) ws.Scratch = new double[ShapeRenderer.ScratchLength(s)];
        var rng = SampleStream(sampleKey);
        return ShapeRenderer.Render(s, Settings, ref rng, ws.Canvas.AsSpan(0, s * s * 3), ws.Scratch, rgb, mask);
    }

    int IMaskedDataset.RenderMasked(int index, Span<byte> rgb, BinaryMask mask) => LabelOf(Render(index, rgb, mask).Kind);

    /// <summary>Renders sample <paramref name="index"/> into new arrays.</summary>
    public (byte[] Rgb, BinaryMask Mask, ShapePlacement Placement) Render(int index)
    {
        var rgb = new byte[ImageSize * ImageSize * 3];
        var mask = new BinaryMask(ImageSize, ImageSize);
        var placement = Render(index, rgb, mask);
        return (rgb, mask, placement);
    }

    public int Load(int index, Span<float> destination, ref SampleRandom random)
    {
        DatasetChecks.Destination(destination, Channels * Height * Width);
        int s = ImageSize;
        var ws = t_workspace ??= new Workspace();
        if (ws.Rgb.Length < s * s * 3) ws.Rgb = new byte[s * s * 3];
        if (ws.Mask.Length < s * s) ws.Mask = new byte[s * s];
        DatasetChecks.Index(index, Count);
        // A streamed sample's key is the stream's first draw (top bit set: never an indexed key); the augmentation
        // draws after it.
        long key = IsStreamed ? (long)(random.NextUInt64() | (1UL << 63)) : index;
        var placement = RenderKey(key, ws.Rgb, ws.Mask);
        _pipeline.Run(ImageView.Interleaved(ws.Rgb.AsSpan(0, s * s * 3), s, s, 3), destination, ref random);
        return _labelOfKind[(int)placement.Kind];
    }

    /// <summary>
    /// Writes samples first .. first + count − 1 as a PNG grid (<paramref name="columns"/> per row, 2-pixel gaps); with
    /// <paramref name="withMasks"/> each image is followed by its mask in white on black.
    /// </summary>
    public void SaveGrid(string path, int first, int count, int columns, bool withMasks = true)
    {
        if (count <= 0 || columns <= 0) throw new ArgumentOutOfRangeException(nameof(count), "count and columns must be positive");
        int s = ImageSize, gap = 2, tiles = withMasks ? 2 : 1;
        int cols = Math.Min(columns, count), rows = (count + columns - 1) / columns;
        int w = cols * tiles * (s + gap) + gap, h = rows * (s + gap) + gap;
        var grid = new byte[w * h * 3];
        Array.Fill(grid, (byte)40);
        var rgb = new byte[s * s * 3];
        var mask = new BinaryMask(s, s);
        for (int k = 0; k < count; k++)
        {
            RenderKey(first + k, rgb, mask);
            int ox = gap + (k % columns) * tiles * (s + gap), oy = gap + k / columns * (s + gap);
            for (int y = 0; y < s; y++)
            {
                rgb.AsSpan(y * s * 3, s * 3).CopyTo(grid.AsSpan(((oy + y) * w + ox) * 3));
                if (!withMasks) continue;
                for (int x = 0; x < s; x++)
                {
                    byte v = mask[y, x] ? (byte)255 : (byte)0;
                    int o = ((oy + y) * w + ox + s + gap + x) * 3;
                    grid[o] = grid[o + 1] = grid[o + 2] = v;
                }
            }
        }
        ImageFile.SavePng(path, grid, w, h, 3);
    }
}
