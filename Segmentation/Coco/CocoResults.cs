namespace CrateIL.Segmentation.Coco;

/// <summary>
/// Detection results prepared for evaluation as pycocotools <c>COCO.loadRes</c> does: ids 1..N in file order,
/// <c>iscrowd</c> 0, and — decided by the first result, like pycocotools — either box results (area = w·h, a missing
/// segmentation becomes the box's rectangle polygon) or segmentation results (area = mask area, a missing box comes from
/// the mask).
/// </summary>
public sealed class CocoResults
{
    public IReadOnlyList<CocoAnnotation> Detections { get; }
    public string Source { get; }

    private CocoResults(List<CocoAnnotation> detections, string source)
    {
        Detections = detections;
        Source = source;
    }

    /// <summary>Reads a results file (a JSON array of {image_id, category_id, score, bbox | segmentation}).</summary>
    public static CocoResults Load(string path, CocoDataset groundTruth)
    {
        byte[] bytes = File.ReadAllBytes(path);
        return Parse(bytes, path, groundTruth);
    }

    public static CocoResults Parse(string json, CocoDataset groundTruth, string source = "<string>") =>
        Parse(System.Text.Encoding.UTF8.GetBytes(json), source, groundTruth);

    internal static CocoResults Parse(byte[] utf8, string file, CocoDataset gt)
    {
        using var doc = CocoJson.ParseDocument(utf8, file);
        var r = new CocoJson.Reader(file);
        var root = doc.RootElement;
        if (root.ValueKind != System.Text.Json.JsonValueKind.Array)
            throw r.Error("$", $"results must be an array of objects, found {CocoJson.Kind(root)}");
        var list = new List<CocoAnnotation>(root.GetArrayLength());
        int i = 0;
        foreach (var e in root.EnumerateArray())
        {
            string path = $"[{i++}]";
            list.Add(CocoJson.ReadAnnotation(r, e, path, isResult: true));
        }
        return Prepare(list, gt, file);
    }

    /// <summary>Prepares in-memory detections (each needs a score and a box or a segmentation); the inputs are not modified.</summary>
    public static CocoResults FromDetections(IEnumerable<CocoAnnotation> detections, CocoDataset groundTruth, string source = "<memory>") =>
        Prepare(detections.Select(d => d.Clone()).ToList(), groundTruth, source);

    private static CocoResults Prepare(List<CocoAnnotation> list, CocoDataset gt, string file)
    {
        bool boxMode = list.Count > 0 && list[0].Box is not null;
        for (int i = 0; i < list.Count; i++)
        {
            var a = list[i];
            string path = $"[{i}]";
            if (a.Score is not { } score || !double.IsFinite(score))
                throw new CocoFormatException(file, $"{path}: missing or non-finite score");
            if (!gt.HasImage(a.ImageId))
                throw new CocoFormatException(file, $"{path}: image_id {a.ImageId} is not in the ground truth {gt.Source}");
            a.Id = i + 1;
            a.IsCrowd = false;
            if (boxMode)
            {
                if (a.Box is not { } b)
                    throw new CocoFormatException(file, $"{path}: no \"bbox\" (the first result has one, so all results are box results)");
                a.Area = b.Width * b.Height;
                if (a.Segmentation is null)
                {
                    double x1 = b.X, x2 = b.X + b.Width, y1 = b.Y, y2 = b.Y + b.Height;
                    a.Segmentation = new CocoPolygons([[x1, y1, x1, y2, x2, y2, x2, y1]]);
                }
            }
            else
            {
                if (a.Segmentation is not { } seg)
                    throw new CocoFormatException(file, $"{path}: neither \"bbox\" nor \"segmentation\"");
                var img = gt.GetImage(a.ImageId);
                Rle rle;
                try
                {
                    rle = seg.ToRle(img.Height, img.Width);
                }
                catch (ArgumentException ex)
                {
                    throw CocoFormatException.From(file, path + ".segmentation", ex);
                }
                a.Area = rle.Area;
                a.Box ??= rle.ToBox();
            }
            list[i] = a;
        }
        return new CocoResults(list, file);
    }

    /// <summary>Writes results as a JSON array (segmentations as given; RLE as compressed strings when so marked).</summary>
    public static void Save(string path, IEnumerable<CocoAnnotation> results) => File.WriteAllBytes(path, CocoJson.WriteResults(results));

    public static string ToJson(IEnumerable<CocoAnnotation> results) => System.Text.Encoding.UTF8.GetString(CocoJson.WriteResults(results));
}
