using CrateIL.Imaging;

namespace CrateIL.Crate.Data;

/// <summary>
/// torchvision's ImageFolder: one sub-folder of <c>root</c> per class, class names sorted ordinally (index = position),
/// image files found recursively under each class folder in os.walk order (folders by path, then file names, both
/// sorted), extensions .jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp (case-insensitive). Images are decoded with
/// SkiaSharp when loaded, as RGB; formats Skia cannot read (ppm, pgm, tiff) fail then with a <see cref="DatasetException"/>.
/// </summary>
public sealed class ImageFolderDataset : IDataset
{
    /// <summary>The extensions torchvision's ImageFolder accepts.</summary>
    public static IReadOnlyList<string> Extensions { get; } = [".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"];

    private readonly string[] _files;
    private readonly int[] _labels;
    private readonly string[] _classNames;
    private readonly ImagePipeline _pipeline;

    [ThreadStatic] private static byte[]? t_rgba;

    /// <summary>Scans <paramref name="root"/>. The pipeline's transform must give a fixed size (Resize, ResizeCenterCrop, RandomResizedCrop).</summary>
    public ImageFolderDataset(string root, ImagePipeline pipeline)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(pipeline);
        if (!pipeline.Transform.HasFixedSize)
            throw new ArgumentException("ImageFolder images differ in size: use a transform with a fixed output size (Resize, ResizeCenterCrop, RandomResizedCrop)", nameof(pipeline));
        if (!Directory.Exists(root)) throw new DatasetException(root, "the dataset folder does not exist");
        Root = root;
        _pipeline = pipeline;
        (Width, Height) = pipeline.OutputSize(1, 1);
        Channels = pipeline.Channels;

        _classNames = Directory.GetDirectories(root).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToArray();
        if (_classNames.Length == 0) throw new DatasetException(root, "no class folders (ImageFolder expects one sub-folder per class)");

        var files = new List<string>();
        var labels = new List<int>();
        for (int c = 0; c < _classNames.Length; c++)
        {
            string classDir = Path.Combine(root, _classNames[c]);
            int before = files.Count;
            var folders = Directory.GetDirectories(classDir, "*", SearchOption.AllDirectories).Append(classDir).Order(StringComparer.Ordinal);
            foreach (string folder in folders)
            {
                foreach (string file in Directory.GetFiles(folder).Order(StringComparer.Ordinal))
                {
                    if (!IsImageFile(file)) continue;
                    files.Add(file);
                    labels.Add(c);
                }
            }
            if (files.Count == before)
                throw new DatasetException(classDir, $"class folder '{_classNames[c]}' holds no image files ({string.Join(' ', Extensions)})");
        }
        _files = [.. files];
        _labels = [.. labels];
    }

    /// <summary>Scans <paramref name="root"/> with a fixed-size transform, ImageNet normalisation and 3 channels.</summary>
    public ImageFolderDataset(string root, ImageTransform transform) : this(root, new ImagePipeline(transform)) { }

    public static bool IsImageFile(string path)
    {
        foreach (string ext in Extensions)
            if (path.EndsWith(ext, StringComparison.OrdinalIgnoreCase)) return true;
        return false;
    }

    public string Root { get; }
    public int Count => _files.Length;
    public int ClassCount => _classNames.Length;
    public IReadOnlyList<string> ClassNames => _classNames;
    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }

    /// <summary>The image file of sample <paramref name="index"/>.</summary>
    public string FilePath(int index)
    {
        DatasetChecks.Index(index, Count);
        return _files[index];
    }

    public int GetLabel(int index)
    {
        DatasetChecks.Index(index, Count);
        return _labels[index];
    }

    public int Load(int index, Span<float> destination, ref SampleRandom random)
    {
        DatasetChecks.Index(index, Count);
        DatasetChecks.Destination(destination, Channels * Height * Width);
        byte[] buffer = t_rgba ?? [];
        ImageView image;
        try
        {
            image = ImageFile.LoadRgb(_files[index], ref buffer);
        }
        catch (ImageFormatException e)
        {
            throw new DatasetException(e.File, e.Problem, e);
        }
        finally
        {
            t_rgba = buffer; // keep the grown buffer even when this image failed
        }
        _pipeline.Run(image, destination, ref random);
        return _labels[index];
    }
}
