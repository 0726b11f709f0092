using System.Text.Json;

namespace CrateIL.Segmentation.Coco;

/// <summary>A COCO or results file that cannot be used; the message names the file, the JSON location and the problem.</summary>
public class CocoFormatException(string file, string message) : Exception($"{file}: {message}")
{
    public string File { get; } = file;
    public string Problem { get; } = message;

    /// <summary>An argument error from rasterising one annotation, reported for <paramref name="file"/> without .NET's "(Parameter 'name')".</summary>
    internal static CocoFormatException From(string file, string what, ArgumentException e) =>
        new(file, $"{what}: {(e.ParamName is { } n ? e.Message.Replace($" (Parameter '{n}')", "", StringComparison.Ordinal) : e.Message)}");
}

/// <summary>A COCO <c>images[]</c> entry.</summary>
public sealed record CocoImage(long Id, int Width, int Height, string? FileName);

/// <summary>A COCO <c>categories[]</c> entry.</summary>
public sealed record CocoCategory(long Id, string? Name, string? Supercategory);

/// <summary>A COCO <c>segmentation</c>: polygons or a run-length encoding.</summary>
public abstract record CocoSegmentation
{
    /// <summary>
    /// The mask as pycocotools <c>annToRLE</c> builds it for an image of the given size: polygons are rasterised with
    /// <see cref="Rle.FromPolygon"/> and merged; an RLE is used as stored (its own size).
    /// </summary>
    public abstract Rle ToRle(int imageHeight, int imageWidth);
}

/// <summary>
/// Polygon segmentation: one or more polygons [x0, y0, x1, y1, ...] whose union is the object. As in pycocotools
/// (<c>frPyObjects</c>), a list whose first entry has exactly 4 numbers is read as a list of [x, y, w, h] boxes.
/// </summary>
public sealed record CocoPolygons(IReadOnlyList<double[]> Polygons) : CocoSegmentation
{
    public bool IsBoxList => Polygons.Count > 0 && Polygons[0].Length == 4;

    public override Rle ToRle(int imageHeight, int imageWidth)
    {
        if (!IsBoxList) return Rle.FromPolygons(Polygons, imageHeight, imageWidth);
        var parts = new Rle[Polygons.Count];
        for (int i = 0; i < parts.Length; i++)
        {
            var b = Polygons[i];
            if (b.Length != 4) throw new ArgumentException($"box list entry {i} has {b.Length} numbers, not 4");
            parts[i] = Rle.FromBox(new CocoBox(b[0], b[1], b[2], b[3]), imageHeight, imageWidth);
        }
        return Rle.Merge(parts);
    }
}

/// <summary>RLE segmentation; <see cref="Compressed"/> says whether it is (to be) written as a string or a count list.</summary>
public sealed record CocoRleSegmentation(Rle Rle, bool Compressed = true) : CocoSegmentation
{
    public override Rle ToRle(int imageHeight, int imageWidth) => Rle;
}

/// <summary>
/// A COCO annotation or a detection result. Ground truth has <see cref="Area"/> from the file (the area-range filter uses
/// it as is, like pycocotools); results have <see cref="Score"/>.
/// </summary>
public sealed class CocoAnnotation
{
    public long Id { get; set; }
    public long ImageId { get; set; }
    public long CategoryId { get; set; }
    public CocoSegmentation? Segmentation { get; set; }
    public double? Area { get; set; }
    public CocoBox? Box { get; set; }
    public bool IsCrowd { get; set; }
    public double? Score { get; set; }

    public CocoAnnotation Clone() => (CocoAnnotation)MemberwiseClone();
}

/// <summary>A COCO instances file: images, annotations and categories (other top-level fields are kept verbatim).</summary>
public sealed class CocoDataset
{
    public List<CocoImage> Images { get; } = [];
    public List<CocoAnnotation> Annotations { get; } = [];
    public List<CocoCategory> Categories { get; } = [];

    /// <summary>Top-level fields other than images/annotations/categories (info, licenses, type, ...), written back as read.</summary>
    public Dictionary<string, JsonElement> Extra { get; } = [];

    /// <summary>Where it was read from (used in error messages), or a description.</summary>
    public string Source { get; set; } = "<memory>";

    private Dictionary<long, CocoImage>? imageIndex;

    /// <summary>The image with this id; throws <see cref="KeyNotFoundException"/> if there is none.</summary>
    public CocoImage GetImage(long id)
    {
        if (imageIndex is null || imageIndex.Count != Images.Count) imageIndex = Images.ToDictionary(i => i.Id);
        return imageIndex.TryGetValue(id, out var img) ? img : throw new KeyNotFoundException($"{Source}: no image with id {id}");
    }

    public bool HasImage(long id)
    {
        if (imageIndex is null || imageIndex.Count != Images.Count) imageIndex = Images.ToDictionary(i => i.Id);
        return imageIndex.ContainsKey(id);
    }

    public static CocoDataset Load(string path) => CocoJson.ParseDataset(File.ReadAllBytes(path), path);

    public static CocoDataset Parse(string json, string source = "<string>") =>
        CocoJson.ParseDataset(System.Text.Encoding.UTF8.GetBytes(json), source);

    public void Save(string path) => File.WriteAllBytes(path, CocoJson.WriteDataset(this));

    public string ToJson() => System.Text.Encoding.UTF8.GetString(CocoJson.WriteDataset(this));
}
