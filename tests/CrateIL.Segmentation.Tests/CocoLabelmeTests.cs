using System.Globalization;
using System.Text.RegularExpressions;
using CrateIL.Segmentation.Coco;
using CrateIL.Imaging;
using CrateIL.Segmentation.Voc;
using Xunit;
using Xunit.Abstractions;

namespace CrateIL.Segmentation.Tests;

/// <summary>
/// Real photos and labels from Debian's <c>labelme-examples</c> (PASCAL VOC 2011 images; test.sh installs the package).
/// Absent data skips visibly, except under CI where test.sh must have installed it.
/// </summary>
public class CocoLabelmeTests(ITestOutputHelper output)
{
    internal static string Root =>
        Environment.GetEnvironmentVariable("CRATEIL_LABELME_DIR") is { Length: > 0 } d ? d : "/usr/share/doc/labelme-examples/examples";

    private static string Instance => Path.Combine(Root, "instance_segmentation");
    private static string CocoJson => Path.Combine(Instance, "data_dataset_coco", "annotations.json");
    private static string VocRoot => Path.Combine(Instance, "data_dataset_voc");

    internal static void RequireData()
    {
        bool present = File.Exists(Path.Combine(Root, "instance_segmentation", "data_dataset_coco", "annotations.json"));
        if (!present && Environment.GetEnvironmentVariable("CI") == "true")
            throw new InvalidOperationException($"labelme-examples not found under {Root}; test.sh installs it with apt-get under CI");
        Skip.IfNot(present, $"labelme-examples not installed ({Root}); run test.sh as root or apt-get install labelme-examples");
    }

    private static string Id(CocoImage img) => Path.GetFileNameWithoutExtension(img.FileName!);

    [SkippableFact]
    public void Coco_polygons_rasterise_to_the_voc_object_masks()
    {
        RequireData();
        var gt = CocoDataset.Load(CocoJson);
        Assert.Equal(3, gt.Images.Count);
        Assert.Equal(12, gt.Annotations.Count);
        Assert.Equal(21, gt.Categories.Count);
        double worst = 1;
        foreach (var a in gt.Annotations)
        {
            var img = gt.GetImage(a.ImageId);
            var ours = a.Segmentation!.ToRle(img.Height, img.Width).Decode();
            var objects = VocMask.Load(Path.Combine(VocRoot, "SegmentationObjectPNG", Id(img) + ".png"));
            var classes = VocMask.Load(Path.Combine(VocRoot, "SegmentationClassPNG", Id(img) + ".png"));
            Assert.Equal((img.Width, img.Height), (objects.Width, objects.Height));
            // the instance this annotation became: the object id overlapping our mask most
            var overlap = new long[256];
            for (int k = 0; k < objects.Labels.Length; k++) if (ours.Pixels[k] != 0) overlap[objects.Labels[k]]++;
            overlap[0] = overlap[255] = 0;
            byte inst = (byte)Array.IndexOf(overlap, overlap.Max());
            var theirs = BinaryMask.FromLabels(img.Height, img.Width, objects.Labels, inst);
            double agreement = (double)ours.AgreementCount(theirs) / (img.Width * img.Height);
            double iou = (double)ours.IntersectionCount(theirs) / ours.UnionCount(theirs);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"ann {a.Id} img {Id(img)} cat {a.CategoryId}: ours {ours.Area} px, object {inst} {theirs.Area} px, COCO area {a.Area}, agreement {agreement:P3}, IoU {iou:F4}"));
            Assert.True(agreement >= 0.995, $"annotation {a.Id}: pixel agreement {agreement:P3} < 99.5 %");
            worst = Math.Min(worst, agreement);
            // the class mask labels that instance with the annotation's category
            var classCount = new long[256];
            for (int k = 0; k < objects.Labels.Length; k++) if (objects.Labels[k] == inst) classCount[classes.Labels[k]]++;
            Assert.Equal(a.CategoryId, Array.IndexOf(classCount, classCount.Max()));
            // labelme's area comes from PIL's polygon fill, which also takes the pixels the outline touches; the
            // pycocotools rule keeps only pixel centres inside, so ours is smaller by about half a boundary band
            var box = a.Box!.Value;
            Assert.InRange(ours.Area, a.Area!.Value - (box.Width + box.Height), a.Area.Value);
        }
        output.WriteLine($"worst agreement {worst:P3}");
    }

    private static CocoResults SelfResults(CocoDataset gt, CocoIouType type) =>
        CocoResults.FromDetections(gt.Annotations.Select(a =>
        {
            var img = gt.GetImage(a.ImageId);
            return new CocoAnnotation
            {
                ImageId = a.ImageId, CategoryId = a.CategoryId, Score = 1.0,
                Box = type == CocoIouType.Bbox ? a.Box : null,
                Segmentation = type == CocoIouType.Segm ? new CocoRleSegmentation(a.Segmentation!.ToRle(img.Height, img.Width)) : null,
            };
        }), gt);

    [SkippableTheory]
    [InlineData(CocoIouType.Bbox)]
    [InlineData(CocoIouType.Segm)]
    public void Ground_truth_against_itself_gives_ap_one(CocoIouType type)
    {
        RequireData();
        var gt = CocoDataset.Load(CocoJson);
        // as stored, annotation ids start at 0, and pycocotools counts a match to id 0 as a false positive: these are
        // the 12 numbers pycocotools printed for this file (same for bbox and segm)
        string[] pycocotools = ["0x1.e5ceff27b5a66p-1", "0x1.e5ceff27b5a67p-1", "0x1.e5ceff27b5a67p-1", "0x1.ffffffffffffep-1",
            "0x1.ffffffffffffep-1", "0x1.c83cd4e930289p-1", "0x1.8e38e38e38e39p-1", "0x1.f1c71c71c71c7p-1", "0x1.f1c71c71c71c7p-1",
            "0x1.0000000000000p+0", "0x1.0000000000000p+0", "0x1.e000000000000p-1"];
        var faithful = CocoEvaluator.Evaluate(gt, SelfResults(gt, type), type).Stats.ToArray();
        Assert.Equal(pycocotools.Select(CocoEvalTests.FromHex).ToArray(), faithful);

        foreach (var a in gt.Annotations) a.Id += 1;
        var s = CocoEvaluator.Evaluate(gt, SelfResults(gt, type), type).Stats;
        output.WriteLine(string.Join(", ", CocoStats.Names.Zip(s.ToArray(), (n, v) => $"{n}={v:R}")));
        foreach (double v in s.ToArray().Where((_, i) => CocoStats.Names[i] != "AR1")) Assert.Equal(1.0, v, 12);
        // several objects of one category share an image, so one detection per image cannot find them all
        Assert.Equal(29.0 / 36, s.AR1, 12);
    }

    [SkippableFact]
    public void Voc_palette_masks_match_the_npy_labels_and_give_miou_one()
    {
        RequireData();
        var ds = VocDataset.Open(VocRoot);
        Assert.Equal(["2011_000003", "2011_000006", "2011_000025"], ds.Samples.Select(s => s.Id));
        var classes = new HashSet<byte>();
        foreach (var s in ds.Samples)
        {
            var cls = s.LoadClassMask();
            var obj = s.LoadObjectMask();
            var photo = s.LoadImage();
            Assert.Equal((photo.Width, photo.Height), (cls.Width, cls.Height));
            Assert.Equal(500, photo.Width);
            Assert.Equal(Npy(Path.Combine(VocRoot, "SegmentationClass", s.Id + ".npy"), cls.Width, cls.Height), cls.Labels);
            Assert.Equal(Npy(Path.Combine(VocRoot, "SegmentationObject", s.Id + ".npy"), obj.Width, obj.Height), obj.Labels);
            foreach (byte b in cls.DistinctLabels()) { Assert.True(b <= 20 || b == VocColormap.Ignore, $"label {b}"); classes.Add(b); }
            // the stored palette is the VOC colour map (labelme writes it the same way)
            var raw = Imaging.Png.ReadIndexed(s.ClassMaskPath!);
            for (int i = 0; i < raw.Palette!.Length / 3; i++)
                Assert.Equal(VocColormap.Color(i), (raw.Palette[i * 3], raw.Palette[i * 3 + 1], raw.Palette[i * 3 + 2]));
        }
        Assert.Contains((byte)15, classes); // person
        Assert.Contains((byte)255, classes);

        // ground truth against itself: every class present has IoU 1 (ignore pixels excluded)
        var confusion = new long[21, 21];
        foreach (var s in ds.Samples)
        {
            var cls = s.LoadClassMask();
            foreach (byte b in cls.Labels) if (b != VocColormap.Ignore) confusion[b, b]++;
        }
        Assert.Equal(1.0, MeanIou(confusion));
    }

    /// <summary>mIoU over classes with a non-empty union (confusion[gt, pred]).</summary>
    private static double MeanIou(long[,] c)
    {
        int n = c.GetLength(0), used = 0;
        double sum = 0;
        for (int k = 0; k < n; k++)
        {
            long tp = c[k, k], fp = 0, fn = 0;
            for (int j = 0; j < n; j++) if (j != k) { fp += c[j, k]; fn += c[k, j]; }
            if (tp + fp + fn == 0) continue;
            sum += (double)tp / (tp + fp + fn);
            used++;
        }
        return sum / used;
    }

    /// <summary>An int32 (H, W) C-order .npy label map as bytes, −1 (labelme's ignore) → 255.</summary>
    private static byte[] Npy(string path, int width, int height)
    {
        byte[] b = File.ReadAllBytes(path);
        Assert.Equal("\u0093NUMPY", System.Text.Encoding.Latin1.GetString(b, 0, 6));
        int headerLen = b[8] | b[9] << 8;
        string header = System.Text.Encoding.ASCII.GetString(b, 10, headerLen);
        Assert.Contains("'descr': '<i4'", header);
        Assert.Contains("'fortran_order': False", header);
        var shape = Regex.Match(header, @"'shape': \((\d+), (\d+)\)");
        Assert.Equal((height, width), (int.Parse(shape.Groups[1].Value, CultureInfo.InvariantCulture), int.Parse(shape.Groups[2].Value, CultureInfo.InvariantCulture)));
        var labels = new byte[width * height];
        for (int k = 0; k < labels.Length; k++)
        {
            int v = BitConverter.ToInt32(b, 10 + headerLen + 4 * k);
            labels[k] = v == -1 ? (byte)255 : checked((byte)v);
        }
        return labels;
    }
}
