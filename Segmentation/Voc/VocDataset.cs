using CrateIL.Imaging;

namespace CrateIL.Segmentation.Voc;

/// <summary>A VOC-layout folder that is missing something or holds an unusable file; the message names the path.</summary>
public class VocFormatException(string path, string message) : Exception($"{path}: {message}")
{
    public string Path { get; } = path;
    public string Problem { get; } = message;
}

/// <summary>A VOC label map: one byte per pixel, row-major; 0 = background, 1..20 classes (or instance ids), 255 = ignore.</summary>
public sealed class VocMask
{
    public int Width { get; }
    public int Height { get; }
    public byte[] Labels { get; }

    public VocMask(int width, int height, byte[] labels)
    {
        if (width <= 0 || height <= 0 || (long)width * height > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(width), $"mask size {width}×{height} is not usable");
        if (labels.Length != width * height)
            throw new ArgumentException($"{labels.Length} labels for a {width}×{height} mask", nameof(labels));
        Width = width;
        Height = height;
        Labels = labels;
    }

    public byte this[int y, int x] => Labels[y * Width + x];

    /// <summary>Reads a palette PNG's indices (the VOC format); greyscale or RGB PNGs are refused.</summary>
    public static VocMask Load(string path)
    {
        var img = Png.ReadIndexed(path, requirePalette: true);
        return new VocMask(img.Width, img.Height, img.Pixels);
    }

    /// <summary>Writes a palette PNG with the standard VOC colour map (all 256 entries).</summary>
    public void Save(string path) => Png.WriteIndexed(path, new IndexedImage(Width, Height, Labels, VocColormap.Palette.ToArray()));

    /// <summary>The distinct labels present, ascending.</summary>
    public byte[] DistinctLabels()
    {
        Span<bool> seen = stackalloc bool[256];
        foreach (byte b in Labels) seen[b] = true;
        var list = new List<byte>();
        for (int i = 0; i < 256; i++) if (seen[i]) list.Add((byte)i);
        return list.ToArray();
    }
}

/// <summary>One VOC sample: an image id and the paths of its photo and masks (a mask path is null when absent).</summary>
public sealed record VocSample(string Id, string ImagePath, string? ClassMaskPath, string? ObjectMaskPath)
{
    public RgbImage LoadImage() => ImageFile.LoadRgb(ImagePath);

    public VocMask LoadClassMask() =>
        VocMask.Load(ClassMaskPath ?? throw new VocFormatException(ImagePath, $"sample {Id} has no class mask"));

    public VocMask LoadObjectMask() =>
        VocMask.Load(ObjectMaskPath ?? throw new VocFormatException(ImagePath, $"sample {Id} has no object mask"));
}

/// <summary>
/// The PASCAL VOC segmentation layout: <c>JPEGImages/&lt;id&gt;.jpg</c>, <c>SegmentationClass/&lt;id&gt;.png</c>,
/// <c>SegmentationObject/&lt;id&gt;.png</c> and <c>ImageSets/Segmentation/&lt;split&gt;.txt</c>. The labelme export
/// variant (<c>SegmentationClassPNG</c>, <c>SegmentationObjectPNG</c>, no ImageSets) is recognised too.
/// </summary>
public sealed class VocDataset
{
    public string Root { get; }
    public string? Split { get; }
    public IReadOnlyList<VocSample> Samples { get; }

    private VocDataset(string root, string? split, List<VocSample> samples)
    {
        Root = root;
        Split = split;
        Samples = samples;
    }

    /// <summary>
    /// Opens a VOC folder. With a split, ids come from <c>ImageSets/Segmentation/&lt;split&gt;.txt</c> and every listed
    /// image and class mask must exist; without one, every class mask with a matching image is a sample (sorted by id).
    /// </summary>
    public static VocDataset Open(string root, string? split = null)
    {
        if (!Directory.Exists(root)) throw new VocFormatException(root, "folder does not exist");
        string images = System.IO.Path.Combine(root, "JPEGImages");
        if (!Directory.Exists(images)) throw new VocFormatException(root, "no JPEGImages folder");
        string? classDir = FindMaskDir(root, "SegmentationClass");
        string? objectDir = FindMaskDir(root, "SegmentationObject");
        var samples = new List<VocSample>();
        if (split is not null)
        {
            string list = System.IO.Path.Combine(root, "ImageSets", "Segmentation", split + ".txt");
            if (!File.Exists(list)) throw new VocFormatException(list, $"split file for '{split}' does not exist");
            if (classDir is null) throw new VocFormatException(root, "no SegmentationClass (or SegmentationClassPNG) folder with PNG masks");
            int lineNo = 0;
            foreach (string raw in File.ReadLines(list))
            {
                lineNo++;
                string id = raw.Trim();
                if (id.Length == 0) continue;
                if (id.IndexOfAny(System.IO.Path.GetInvalidFileNameChars()) >= 0 || id.Contains(' '))
                    throw new VocFormatException(list, $"line {lineNo}: '{id}' is not an image id");
                string img = System.IO.Path.Combine(images, id + ".jpg");
                if (!File.Exists(img)) throw new VocFormatException(list, $"line {lineNo}: image {img} does not exist");
                string cls = System.IO.Path.Combine(classDir, id + ".png");
                if (!File.Exists(cls)) throw new VocFormatException(list, $"line {lineNo}: class mask {cls} does not exist");
                samples.Add(new VocSample(id, img, cls, ObjectPath(objectDir, id)));
            }
        }
        else
        {
            if (classDir is null) throw new VocFormatException(root, "no SegmentationClass (or SegmentationClassPNG) folder with PNG masks");
            foreach (string cls in Directory.EnumerateFiles(classDir, "*.png").Order(StringComparer.Ordinal))
            {
                string id = System.IO.Path.GetFileNameWithoutExtension(cls);
                string img = System.IO.Path.Combine(images, id + ".jpg");
                if (File.Exists(img)) samples.Add(new VocSample(id, img, cls, ObjectPath(objectDir, id)));
            }
        }
        return new VocDataset(root, split, samples);
    }

    private static string? ObjectPath(string? dir, string id)
    {
        if (dir is null) return null;
        string p = System.IO.Path.Combine(dir, id + ".png");
        return File.Exists(p) ? p : null;
    }

    private static string? FindMaskDir(string root, string name)
    {
        foreach (string candidate in new[] { name, name + "PNG" })
        {
            string dir = System.IO.Path.Combine(root, candidate);
            if (Directory.Exists(dir) && Directory.EnumerateFiles(dir, "*.png").Any()) return dir;
        }
        return null;
    }
}
