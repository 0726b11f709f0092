using CrateIL.Imaging;

namespace CrateIL.Crate.Data;

/// <summary>
/// The Fashion-MNIST items a <see cref="FashionClutter"/> set pastes: the grey 28×28 images and labels of both splits,
/// grouped by class. Training sets draw from the training split, held-out sets from the test split, so no held-out item
/// was ever seen in training.
/// </summary>
public sealed class FashionItems
{
    private readonly byte[][] _pixels = new byte[2][];
    private readonly int[][][] _byClass = new int[2][][];

    /// <summary>Reads {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] from <paramref name="directory"/>.</summary>
    /// <exception cref="DatasetException">A file is missing (with the Debian package to install) or malformed.</exception>
    public static FashionItems Load(string directory = IdxDataset.DebianFashionMnistDirectory)
    {
        if (!Directory.Exists(directory)
            || !Directory.EnumerateFiles(directory).Any(f => Path.GetFileName(f).StartsWith("train-images-idx3-ubyte", StringComparison.Ordinal)))
            throw new DatasetException(directory, "no Fashion-MNIST here: install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or give the folder holding train-images-idx3-ubyte.gz");
        var train = IdxDataset.FashionMnist(directory, true, ImagePipeline.Default);
        var test = IdxDataset.FashionMnist(directory, false, ImagePipeline.Default);
        return new FashionItems(train, test);
    }

    /// <summary>From two loaded splits of 28×28 grey images (any item count, e.g. a small fixture).</summary>
    public FashionItems(IdxDataset train, IdxDataset test)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(test);
        if (train.SourceWidth != train.SourceHeight || test.SourceWidth != train.SourceWidth || test.SourceHeight != train.SourceHeight)
            throw new ArgumentException($"FashionItems: both splits must hold square images of one size ({train.SourceWidth}×{train.SourceHeight}, {test.SourceWidth}×{test.SourceHeight})");
        ItemSize = train.SourceWidth;
        ClassNames = train.ClassNames;
        var splits = new[] { train, test };
        for (int s = 0; s < 2; s++)
        {
            var split = splits[s];
            int size = ItemSize * ItemSize;
            _pixels[s] = new byte[split.Count * size];
            var lists = Enumerable.Range(0, ClassNames.Count).Select(_ => new List<int>()).ToArray();
            for (int i = 0; i < split.Count; i++)
            {
                split.Pixels(i).CopyTo(_pixels[s].AsSpan(i * size, size));
                int label = split.GetLabel(i);
                if (label < lists.Length) lists[label].Add(i);
            }
            _byClass[s] = lists.Select(l => l.ToArray()).ToArray();
        }
    }

    /// <summary>Side of an item in pixels (28 for Fashion-MNIST).</summary>
    public int ItemSize { get; }

    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>Items of class <paramref name="label"/> in the training (false: test) split.</summary>
    public int CountOf(bool heldOut, int label) => _byClass[heldOut ? 1 : 0][label].Length;

    /// <summary>The grey pixels of the <paramref name="k"/>-th item of class <paramref name="label"/> in a split.</summary>
    public ReadOnlySpan<byte> Item(bool heldOut, int label, int k)
    {
        int s = heldOut ? 1 : 0, size = ItemSize * ItemSize;
        return _pixels[s].AsSpan(_byClass[s][label][k] * size, size);
    }
}

/// <summary>What a <see cref="FashionClutter"/> image holds: which item classes, how large the item is and how much clutter.</summary>
public sealed record FashionClutterSettings
{
    /// <summary>All ten Fashion-MNIST classes, items 60–95 % of the side, the shapes' default clutter.</summary>
    public static FashionClutterSettings Default { get; } = new();

    /// <summary>
    /// The emergence demo's choice: four classes with distinct outlines (T-shirt/top, Trouser, Sneaker, Bag), items
    /// 60–95 % of the side, at most one blob and two strokes, the item's colour ≥ 0.5 from the clutter under it.
    /// </summary>
    public static FashionClutterSettings Emerge { get; } = new()
    {
        Classes = [0, 1, 7, 8],
        MinBlobs = 0, MaxBlobs = 1, MinStrokes = 0, MaxStrokes = 2, MinContrast = 0.5, ContrastAttempts = 20,
    };

    /// <summary>Fashion-MNIST labels in label order (label k is Classes[k]); distinct, at least two.</summary>
    public IReadOnlyList<int> Classes { get; init; } = Enumerable.Range(0, 10).ToArray();

    /// <summary>Side of the item's square box as a fraction of the image side (the item fills about half its box).</summary>
    public double MinSize { get; init; } = 0.60;

    public double MaxSize { get; init; } = 0.95;

    public int MinBlobs { get; init; } = 1;
    public int MaxBlobs { get; init; } = 3;
    public int MinStrokes { get; init; } = 1;
    public int MaxStrokes { get; init; } = 4;

    /// <summary>As <see cref="ShapesInClutterSettings.MinContrast"/>: the item's mean colour against the clutter under its box.</summary>
    public double MinContrast { get; init; } = 0.3;

    public int ContrastAttempts { get; init; } = 10;

    public FashionClutterSettings Validate()
    {
        if (Classes is null || Classes.Count < 2 || Classes.Distinct().Count() != Classes.Count || Classes.Any(c => c is < 0 or > 9))
            throw new ArgumentException("FashionClutter settings: at least two distinct classes in [0, 10) are needed");
        if (!(MinSize > 0 && MinSize <= MaxSize && MaxSize <= 1)) throw new ArgumentException($"FashionClutter settings: sizes {MinSize}–{MaxSize} must satisfy 0 < min ≤ max ≤ 1");
        if (MinBlobs < 0 || MaxBlobs < MinBlobs || MinStrokes < 0 || MaxStrokes < MinStrokes)
            throw new ArgumentException("FashionClutter settings: blob and stroke counts must be ranges of non-negative numbers");
        if (!(MinContrast >= 0 && MinContrast < 1.7) || ContrastAttempts < 1)
            throw new ArgumentException($"FashionClutter settings: contrast {MinContrast} must be in [0, 1.7) and attempts positive");
        return this;
    }
}

/// <summary>
/// Fashion-MNIST items pasted on the clutter of <see cref="ShapesInClutter"/>: per sample a class (the label), one item
/// of it (training split, or test split for a held-out set), a square box of random size and position fully inside the
/// image, an optional mirror, and a colour texture from the shared colour distribution (redrawn until it stands off the
/// clutter under the box), shaded by the item's own grey levels so its inner detail survives. The item's grey level g
/// (bilinear from the 28×28 source, in [0, 1]) gives its opacity min(1, g / 0.2); the exact mask is opacity ≥ 1/2,
/// i.e. the pixels where the item itself is drawn at least half opaque. Sample content is keyed as in
/// <see cref="ShapesInClutter"/>: indexed sets show key i as sample i, streamed sets (<see cref="Stream"/>) draw a fresh
/// key with the top bit set from the loader's random stream.
/// </summary>
public sealed class FashionClutter : IMaskedDataset
{
    /// <summary>Grey level (of 1) at which an item pixel is fully opaque; the mask threshold is half of it.</summary>
    private const double OpaqueLevel = 0.2;

    private readonly FashionItems _items;
    private readonly ImagePipeline _pipeline;
    private readonly string[] _names;

    [ThreadStatic] private static Workspace? t_workspace;

    private sealed class Workspace
    {
        public float[] Canvas = [];
        public byte[] Rgb = [];
        public byte[] Mask = [];
        public double[] Scratch = [];
    }

    /// <param name="items">The Fashion-MNIST items (<see cref="FashionItems.Load"/>).</param>
    /// <param name="count">Number of samples.</param>
    /// <param name="seed">Selects the whole set.</param>
    /// <param name="imageSize">Side in pixels; a multiple of <paramref name="patchSize"/>, at least 16.</param>
    /// <param name="patchSize">The model's patch size.</param>
    /// <param name="heldOut">Paste test-split items (for evaluation) instead of training-split ones.</param>
    /// <param name="pipeline">Sample transform; default: size kept, ImageNet normalisation.</param>
    /// <param name="settings">Classes, item size, clutter; default <see cref="FashionClutterSettings.Emerge"/>.</param>
    public FashionClutter(FashionItems items, int count, long seed, int imageSize = 32, int patchSize = 4, bool heldOut = false,
        ImagePipeline? pipeline = null, FashionClutterSettings? settings = null)
        : this(items, count, seed, imageSize, patchSize, heldOut, pipeline, settings, streamed: false)
    {
    }

    /// <summary>A streamed training set of training-split items: <paramref name="imagesPerEpoch"/> fresh images per epoch.</summary>
    public static FashionClutter Stream(FashionItems items, int imagesPerEpoch, long seed, int imageSize = 32, int patchSize = 4,
        ImagePipeline? pipeline = null, FashionClutterSettings? settings = null) =>
        new(items, imagesPerEpoch, seed, imageSize, patchSize, heldOut: false, pipeline, settings, streamed: true);

    private FashionClutter(FashionItems items, int count, long seed, int imageSize, int patchSize, bool heldOut, ImagePipeline? pipeline,
        FashionClutterSettings? settings, bool streamed)
    {
        ArgumentNullException.ThrowIfNull(items);
        if (count <= 0) throw new ArgumentOutOfRangeException(nameof(count), $"sample count {count} must be positive");
        if (patchSize <= 0) throw new ArgumentOutOfRangeException(nameof(patchSize), $"patch size {patchSize} must be positive");
        if (imageSize < 16 || imageSize % patchSize != 0)
            throw new ArgumentOutOfRangeException(nameof(imageSize), $"image side {imageSize} must be at least 16 and a multiple of the patch size {patchSize}");
        Settings = (settings ?? FashionClutterSettings.Emerge).Validate();
        foreach (int c in Settings.Classes)
            if (items.CountOf(heldOut, c) == 0)
                throw new ArgumentException($"FashionClutter: the {(heldOut ? "test" : "training")} split has no item of class {c}", nameof(items));
        _items = items;
        _pipeline = pipeline ?? ImagePipeline.Default;
        if (_pipeline.Channels != 3) throw new ArgumentException("FashionClutter images are RGB: use a 3-channel normalisation", nameof(pipeline));
        _names = Settings.Classes.Select(c => items.ClassNames[c]).ToArray();
        Count = count;
        Seed = seed;
        ImageSize = imageSize;
        PatchSize = patchSize;
        IsHeldOut = heldOut;
        IsStreamed = streamed;
        (Width, Height) = _pipeline.OutputSize(imageSize, imageSize);
    }

    public FashionClutterSettings Settings { get; }
    public long Seed { get; }
    public int ImageSize { get; }
    public int PatchSize { get; }

    /// <summary>Whether the items come from the test split.</summary>
    public bool IsHeldOut { get; }

    /// <summary>True for a streamed set: sample content comes from the loader's random stream, not the index.</summary>
    public bool IsStreamed { get; }

    public int Count { get; }
    public int ClassCount => _names.Length;
    public IReadOnlyList<string> ClassNames => _names;
    public int Channels => 3;
    public int Height { get; }
    public int Width { get; }

    private SampleRandom SampleStream(long key) => SampleRandom.For(Seed, key, 0xFA5_410L);

    public int GetLabel(int index)
    {
        DatasetChecks.Index(index, Count);
        if (IsStreamed) throw new InvalidOperationException("a streamed FashionClutter sample's content (and label) comes from the loader's random stream, not its index");
        var rng = SampleStream(index);
        return rng.NextInt(Settings.Classes.Count);
    }

    /// <summary>Renders sample <paramref name="index"/> of an indexed set: RGB bytes (side²·3) and exact mask (side²); returns the label.</summary>
    public int Render(int index, Span<byte> rgb, BinaryMask mask)
    {
        DatasetChecks.Index(index, Count);
        if (IsStreamed) throw new InvalidOperationException("a streamed FashionClutter has no image per index: render a sample key with RenderKey");
        return RenderKey(index, rgb, mask);
    }

    int IMaskedDataset.RenderMasked(int index, Span<byte> rgb, BinaryMask mask) => Render(index, rgb, mask);

    /// <summary>Renders the sample with key <paramref name="sampleKey"/> (indexed sample i is key i); returns the label.</summary>
    public int RenderKey(long sampleKey, Span<byte> rgb, BinaryMask mask)
    {
        ArgumentNullException.ThrowIfNull(mask);
        if (mask.Height != ImageSize || mask.Width != ImageSize)
            throw new ArgumentException($"mask is {mask.Height}×{mask.Width}; the images are {ImageSize}×{ImageSize}", nameof(mask));
        return RenderKey(sampleKey, rgb, mask.Pixels);
    }

    /// <summary>Renders into a 0/1 mask buffer (the training path keeps one per thread).</summary>
    private int RenderKey(long sampleKey, Span<byte> rgb, Span<byte> mask)
    {
        int s = ImageSize;
        if (rgb.Length < s * s * 3) throw new ArgumentException($"rgb holds {rgb.Length} bytes; {s * s * 3} are needed", nameof(rgb));
        if (mask.Length < s * s) throw new ArgumentException($"mask holds {mask.Length} entries; {s * s} are needed", nameof(mask));
        var ws = t_workspace ??= new Workspace();
        if (ws.Canvas.Length < s * s * 3) ws.Canvas = new float[s * s * 3];
        if (ws.Scratch.Length < ShapeRenderer.ScratchLength(s)) ws.Scratch = new double[ShapeRenderer.ScratchLength(s)];
        var canvas = ws.Canvas.AsSpan(0, s * s * 3);
        var rng = SampleStream(sampleKey);
        var st = Settings;

        // The label is the stream's first draw, so GetLabel needs no rendering.
        int label = rng.NextInt(st.Classes.Count);
        int fashionClass = st.Classes[label];
        var item = _items.Item(IsHeldOut, fashionClass, rng.NextInt(_items.CountOf(IsHeldOut, fashionClass)));

        ShapeRenderer.Clutter(s, st.MinBlobs, st.MaxBlobs, st.MinStrokes, st.MaxStrokes, ref rng, canvas, ws.Scratch);

        double box = rng.Uniform(st.MinSize, st.MaxSize) * s;
        double x0 = rng.Uniform(0, s - box), y0 = rng.Uniform(0, s - box);
        bool mirror = rng.Bernoulli(0.5);
        var local = ShapeRenderer.MeanColour(canvas, s, x0, y0, x0 + box, y0 + box);
        ShapeRenderer.Texture texture = default;
        for (int attempt = 0; attempt < st.ContrastAttempts; attempt++)
        {
            texture = ShapeRenderer.Texture.Random(ref rng, s, ShapeRenderer.RandomColour(ref rng), ShapeRenderer.RandomColour(ref rng));
            if (texture.Mean.DistanceTo(local) >= st.MinContrast) break;
        }

        mask.Slice(0, s * s).Clear();
        int n = _items.ItemSize;
        double scale = n / box;
        int px0 = Math.Max(0, (int)Math.Floor(x0)), py0 = Math.Max(0, (int)Math.Floor(y0));
        int px1 = Math.Min(s - 1, (int)Math.Ceiling(x0 + box)), py1 = Math.Min(s - 1, (int)Math.Ceiling(y0 + box));
        for (int y = py0; y <= py1; y++)
        {
            double v = (y + 0.5 - y0) * scale - 0.5;
            for (int x = px0; x <= px1; x++)
            {
                double u = (x + 0.5 - x0) * scale - 0.5;
                if (mirror) u = n - 1 - u;
                double g = Bilinear(item, n, u, v) / 255.0;
                double alpha = Math.Min(1.0, g / OpaqueLevel);
                if (alpha <= 0) continue;
                // Shading by the item's own grey level keeps its seams and folds visible inside the silhouette.
                double shade = 0.55 + 0.45 * g;
                var c = texture.At(x + 0.5, y + 0.5);
                int o = (y * s + x) * 3;
                canvas[o] += (float)((c.R * shade - canvas[o]) * alpha);
                canvas[o + 1] += (float)((c.G * shade - canvas[o + 1]) * alpha);
                canvas[o + 2] += (float)((c.B * shade - canvas[o + 2]) * alpha);
                mask[y * s + x] = alpha >= 0.5 ? (byte)1 : (byte)0;
            }
        }
        ShapeRenderer.AddNoiseAndQuantise(s, ref rng, canvas, rgb);
        return label;
    }

    /// <summary>Bilinear sample of an n×n grey image at (u, v) in pixel-centre coordinates; 0 outside.</summary>
    private static double Bilinear(ReadOnlySpan<byte> image, int n, double u, double v)
    {
        if (u <= -1 || v <= -1 || u >= n || v >= n) return 0;
        int iu = (int)Math.Floor(u), iv = (int)Math.Floor(v);
        double fu = u - iu, fv = v - iv;
        double p00 = At(image, n, iu, iv), p10 = At(image, n, iu + 1, iv), p01 = At(image, n, iu, iv + 1), p11 = At(image, n, iu + 1, iv + 1);
        double top = p00 + (p10 - p00) * fu, bottom = p01 + (p11 - p01) * fu;
        return top + (bottom - top) * fv;
    }

    private static double At(ReadOnlySpan<byte> image, int n, int x, int y) => (uint)x < (uint)n && (uint)y < (uint)n ? image[y * n + x] : 0;

    public int Load(int index, Span<float> destination, ref SampleRandom random)
    {
        DatasetChecks.Destination(destination, Channels * Height * Width);
        DatasetChecks.Index(index, Count);
        int s = ImageSize;
        var ws = t_workspace ??= new Workspace();
        if (ws.Rgb.Length < s * s * 3) ws.Rgb = new byte[s * s * 3];
        if (ws.Mask.Length < s * s) ws.Mask = new byte[s * s];
        long key = IsStreamed ? (long)(random.NextUInt64() | (1UL << 63)) : index;
        int label = RenderKey(key, ws.Rgb, ws.Mask);
        _pipeline.Run(ImageView.Interleaved(ws.Rgb.AsSpan(0, s * s * 3), s, s, 3), destination, ref random);
        return label;
    }
}
