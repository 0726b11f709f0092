using System.Globalization;
using System.Text.Json;
using CrateIL.Segmentation.Coco;
using Xunit;

namespace CrateIL.Segmentation.Tests;

public class CocoEvalTests
{
    /// <summary>Ground truth of boxes (x, y, w, h, crowd, area override) on one or more 200×200 images.</summary>
    private static CocoDataset Gt(params (long img, long cat, double x, double y, double w, double h, bool crowd, double? area)[] boxes)
    {
        var ds = new CocoDataset { Source = "gt" };
        foreach (long img in boxes.Select(b => b.img).Append(1).Distinct().Order()) ds.Images.Add(new CocoImage(img, 200, 200, null));
        foreach (long cat in boxes.Select(b => b.cat).Append(1).Distinct().Order()) ds.Categories.Add(new CocoCategory(cat, $"c{cat}", null));
        long id = 1;
        foreach (var b in boxes)
        {
            var box = new CocoBox(b.x, b.y, b.w, b.h);
            ds.Annotations.Add(new CocoAnnotation
            {
                Id = id++, ImageId = b.img, CategoryId = b.cat, Box = box, IsCrowd = b.crowd, Area = b.area ?? b.w * b.h,
                Segmentation = new CocoPolygons([[b.x, b.y, b.x + b.w, b.y, b.x + b.w, b.y + b.h, b.x, b.y + b.h]]),
            });
        }
        return ds;
    }

    private static CocoResults Dt(CocoDataset gt, params (long img, long cat, double x, double y, double w, double h, double score)[] dets) =>
        CocoResults.FromDetections(dets.Select(d => new CocoAnnotation
        {
            ImageId = d.img, CategoryId = d.cat, Score = d.score, Box = new CocoBox(d.x, d.y, d.w, d.h),
        }), gt, "dt");

    private static CocoStats Eval(CocoDataset gt, CocoResults dt, CocoIouType type = CocoIouType.Bbox) =>
        CocoEvaluator.Evaluate(gt, dt, type).Stats;

    [Theory]
    [InlineData(CocoIouType.Bbox)]
    [InlineData(CocoIouType.Segm)]
    public void Perfect_detections_give_one(CocoIouType type)
    {
        var gt = Gt((1, 1, 10, 10, 20, 20, false, null), (1, 1, 50, 50, 100, 100, false, null), (2, 3, 0, 0, 40, 40, false, null));
        var dt = Dt(gt, (1, 1, 10, 10, 20, 20, 0.9), (1, 1, 50, 50, 100, 100, 0.8), (2, 3, 0, 0, 40, 40, 0.7));
        var s = Eval(gt, dt, type);
        // precision 1/(1 + eps) rounds to just below 1 where a category's AP is a mean of such values, as in pycocotools
        foreach (double v in new[] { s.AP, s.AP50, s.AP75, s.APs, s.APm, s.APl }) Assert.Equal(1.0, v, 12);
        Assert.Equal([0.75, 1, 1, 1, 1, 1], new[] { s.AR1, s.AR10, s.AR100, s.ARs, s.ARm, s.ARl });
    }

    [Fact]
    public void False_positive_ranked_first_halves_precision()
    {
        var gt = Gt((1, 1, 10, 10, 50, 50, false, null));
        var fpFirst = Eval(gt, Dt(gt, (1, 1, 120, 120, 50, 50, 0.9), (1, 1, 10, 10, 50, 50, 0.8)));
        // pr = [0, 1/2] → envelope [1/2, 1/2]; every recall point reads 1/2
        Assert.Equal(0.5, fpFirst.AP);
        Assert.Equal(0.5, fpFirst.AP50);
        Assert.Equal(0.0, fpFirst.AR1);
        Assert.Equal(1.0, fpFirst.AR10);
        var fpLast = Eval(gt, Dt(gt, (1, 1, 120, 120, 50, 50, 0.7), (1, 1, 10, 10, 50, 50, 0.8)));
        Assert.Equal(1.0, fpLast.AP, 15);
        Assert.Equal(1.0, fpLast.AR1);
    }

    [Fact]
    public void Partial_overlap_counts_only_below_its_iou()
    {
        // dt shifted by 10 on a 50×50 box: IoU = 40·50 / (2·2500 − 2000) = 2/3 → matched at thresholds .50 .55 .60 .65
        var gt = Gt((1, 1, 0, 0, 50, 50, false, null));
        var s = Eval(gt, Dt(gt, (1, 1, 10, 0, 50, 50, 0.9)));
        Assert.Equal(1.0, s.AP50, 15);
        Assert.Equal(0.0, s.AP75);
        Assert.Equal(0.4, s.AP, 15);
        Assert.Equal(0.4, s.AR100, 15);
    }

    [Fact]
    public void Detections_on_crowd_regions_are_ignored_not_false_positives()
    {
        // the crowd box is large; a small dt inside it has IoU = inter/area(dt) = 1 with it → ignored
        var gt = Gt((1, 1, 0, 0, 30, 30, false, null), (1, 1, 100, 100, 90, 90, true, null));
        var s = Eval(gt, Dt(gt, (1, 1, 120, 120, 20, 20, 0.95), (1, 1, 0, 0, 30, 30, 0.9)));
        Assert.Equal(1.0, s.AP, 15);
        // without the crowd flag the same dt is a false positive ranked first: AP = 1/2 · ... over the two non-crowd GTs
        var plain = Gt((1, 1, 0, 0, 30, 30, false, null), (1, 1, 100, 100, 90, 90, false, null));
        var p = Eval(plain, Dt(plain, (1, 1, 120, 120, 20, 20, 0.95), (1, 1, 0, 0, 30, 30, 0.9)));
        Assert.True(p.AP < 0.3, $"AP {p.AP}");
        // a crowd region is never counted as a missed object
        var crowdOnly = Gt((1, 1, 100, 100, 90, 90, true, null));
        Assert.Equal(-1.0, Eval(crowdOnly, Dt(crowdOnly, (1, 1, 120, 120, 20, 20, 0.95))).AP);
    }

    [Fact]
    public void Area_exactly_32_squared_is_small_and_medium()
    {
        // inclusive bounds: area 1024 lies in [0, 1024] and in [1024, 9216]
        var gt = Gt((1, 1, 0, 0, 32, 32, false, null));
        var s = Eval(gt, Dt(gt, (1, 1, 0, 0, 32, 32, 0.9)));
        Assert.Equal(1.0, s.APs, 15);
        Assert.Equal(1.0, s.APm, 15);
        Assert.Equal(-1.0, s.APl);
        // the GT area from the file is what counts: 1024.5 is medium only
        var gt2 = Gt((1, 1, 0, 0, 32, 32, false, 1024.5));
        var s2 = Eval(gt2, Dt(gt2, (1, 1, 0, 0, 32, 32, 0.9)));
        Assert.Equal(-1.0, s2.APs);
        Assert.Equal(1.0, s2.APm, 15);
        // 96² is medium and large
        var gt3 = Gt((1, 1, 0, 0, 96, 96, false, null));
        var s3 = Eval(gt3, Dt(gt3, (1, 1, 0, 0, 96, 96, 0.9)));
        Assert.Equal(1.0, s3.APm, 15);
        Assert.Equal(1.0, s3.APl, 15);
    }

    [Fact]
    public void Unmatched_detection_outside_the_area_range_is_ignored_there()
    {
        // a large false positive does not hurt AP_small
        var gt = Gt((1, 1, 0, 0, 20, 20, false, null));
        var s = Eval(gt, Dt(gt, (1, 1, 100, 100, 99, 99, 0.99), (1, 1, 0, 0, 20, 20, 0.5)));
        Assert.Equal(1.0, s.APs, 15);
        Assert.Equal(0.5, s.AP);
    }

    [Fact]
    public void Tied_scores_keep_input_order()
    {
        var gt = Gt((1, 1, 0, 0, 50, 50, false, null));
        var fpFirst = Eval(gt, Dt(gt, (1, 1, 100, 100, 50, 50, 0.5), (1, 1, 0, 0, 50, 50, 0.5)));
        var tpFirst = Eval(gt, Dt(gt, (1, 1, 0, 0, 50, 50, 0.5), (1, 1, 100, 100, 50, 50, 0.5)));
        Assert.Equal(0.5, fpFirst.AP);
        Assert.Equal(1.0, tpFirst.AP, 15);
        // across images too: image order (sorted ids) then file order decides between equal scores
        var gt2 = Gt((1, 1, 0, 0, 50, 50, false, null), (2, 1, 0, 0, 50, 50, false, null));
        var s = Eval(gt2, Dt(gt2, (2, 1, 0, 0, 50, 50, 0.5), (1, 1, 100, 100, 50, 50, 0.5), (1, 1, 0, 0, 50, 50, 0.5)));
        // merged order: image 1's FP, image 1's TP, image 2's TP → pr = [0, 1/2, 2/3] → envelope 2/3 everywhere
        Assert.Equal(2.0 / 3, s.AP, 15);
    }

    [Fact]
    public void Only_the_top_100_detections_per_image_count()
    {
        var gt = Gt((1, 1, 0, 0, 50, 50, false, null));
        var dets = Enumerable.Range(0, 100).Select(i => (1L, 1L, 100.0 + i % 10, 100.0 + i / 10, 20.0, 20.0, 0.9)).ToList();
        dets.Add((1, 1, 0, 0, 50, 50, 0.1));
        var s = Eval(gt, Dt(gt, dets.ToArray()));
        Assert.Equal(0.0, s.AR100);
        Assert.Equal(0.0, s.AP);
        dets[^1] = (1, 1, 0, 0, 50, 50, 0.95);
        var s2 = Eval(gt, Dt(gt, dets.ToArray()));
        Assert.Equal(1.0, s2.AR1);
    }

    [Fact]
    public void Categories_without_ground_truth_are_left_out_of_the_mean()
    {
        var gt = Gt((1, 1, 0, 0, 50, 50, false, null));
        gt.Categories.Add(new CocoCategory(9, "unused", null));
        var r = CocoEvaluator.Evaluate(gt, Dt(gt, (1, 1, 0, 0, 50, 50, 0.9), (1, 9, 0, 0, 50, 50, 0.9)), CocoIouType.Bbox);
        Assert.Equal(1.0, r.Stats.AP, 15);
        Assert.Equal(-1.0, r.Precision[0, 0, 1, 0, 2]);
        Assert.Equal(-1.0, r.Recall[0, 1, 0, 2]);
    }

    [Fact]
    public void Ground_truth_id_zero_is_treated_as_unmatched_like_pycocotools()
    {
        var gt = Gt((1, 1, 0, 0, 50, 50, false, null));
        gt.Annotations[0].Id = 0;
        var s = Eval(gt, Dt(gt, (1, 1, 0, 0, 50, 50, 0.9)));
        // the match is stored as id 0 = "no match": the detection counts as a false positive, the GT as found
        Assert.Equal(0.0, s.AP);
        Assert.Equal(0.0, s.AR100);
    }

    [Fact]
    public void Without_categories_detections_match_across_labels()
    {
        var gt = Gt((1, 1, 0, 0, 50, 50, false, null), (1, 2, 100, 100, 50, 50, false, null));
        var dt = Dt(gt, (1, 2, 0, 0, 50, 50, 0.9), (1, 1, 100, 100, 50, 50, 0.8));
        Assert.Equal(0.0, Eval(gt, dt).AP);
        var pooled = CocoEvaluator.Evaluate(gt, dt, CocoIouType.Bbox, new CocoEvalParams { UseCategories = false });
        Assert.Equal(1.0, pooled.Stats.AP, 15);
        Assert.Equal([-1L], pooled.CategoryIds);
    }

    [Fact]
    public void Summary_text_has_pycocotools_layout()
    {
        var gt = Gt((1, 1, 0, 0, 50, 50, false, null));
        var r = CocoEvaluator.Evaluate(gt, Dt(gt, (1, 1, 120, 120, 50, 50, 0.9), (1, 1, 0, 0, 50, 50, 0.8)), CocoIouType.Bbox);
        var lines = r.Summary.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(12, lines.Length);
        Assert.Equal(" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.500", lines[0]);
        Assert.Equal(" Average Precision  (AP) @[ IoU=0.75      | area=   all | maxDets=100 ] = 0.500", lines[2]);
        Assert.Equal(" Average Precision  (AP) @[ IoU=0.50:0.95 | area= small | maxDets=100 ] = -1.000", lines[3]);
        Assert.Equal(" Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ] = 0.000", lines[6]);
        Assert.Equal(" Average Recall     (AR) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ] = 1.000", lines[10]);
    }

    [Fact]
    public void Thresholds_equal_numpy_linspace_bit_for_bit()
    {
        // hex values printed by numpy 1.24 for linspace(.5, .95, 10)
        string[] hex = ["0x1.0000000000000p-1", "0x1.199999999999ap-1", "0x1.3333333333333p-1", "0x1.4cccccccccccdp-1", "0x1.6666666666666p-1",
            "0x1.8000000000000p-1", "0x1.999999999999ap-1", "0x1.b333333333333p-1", "0x1.cccccccccccccp-1", "0x1.e666666666666p-1"];
        var p = new CocoEvalParams();
        for (int i = 0; i < 10; i++) Assert.Equal(FromHex(hex[i]), p.IouThresholds[i]);
        for (int i = 0; i < 100; i++) Assert.Equal(i * 0.01, p.RecallThresholds[i]);
        Assert.Equal(1.0, p.RecallThresholds[100]);
    }

    [Fact]
    public void Mean_is_summed_in_numpy_order()
    {
        // 0.1 ten times: sequential summation gives 0.9999999999999999, numpy's pairwise blocks give 1.0
        var v = Enumerable.Repeat(0.1, 10).ToArray();
        Assert.Equal(1.0, CocoEvaluator.NumpySum(v));
    }

    public static TheoryData<string, string> OracleCases()
    {
        var d = new TheoryData<string, string>();
        foreach (string c in new[] { "random0", "random1", "random2", "random3" })
            foreach (string t in new[] { "segm", "bbox" }) d.Add(c, t);
        return d;
    }

    /// <summary>
    /// Random GT/DT sets (polygons, multi-part objects, crowd RLE, area overrides at the range edges, tied scores, wrong
    /// categories, an image with 105 detections; random3 has a ground-truth id 0) whose 12 numbers were computed by
    /// pycocotools' own cocoeval.py and maskApi.c; ours must agree bit for bit, summary text included.
    /// </summary>
    [Theory]
    [MemberData(nameof(OracleCases))]
    public void Matches_pycocotools_bit_for_bit_on_random_sets(string name, string type)
    {
        using var expected = JsonDocument.Parse(File.ReadAllText(CocoFixtures.Path("expected.json")));
        var c = expected.RootElement.EnumerateArray().Single(e => e.GetProperty("name").GetString() == name);
        var gt = CocoDataset.Load(CocoFixtures.Path(name + "_gt.json"));
        var dt = CocoResults.Load(CocoFixtures.Path($"{name}_{type}.json"), gt);
        var r = CocoEvaluator.Evaluate(gt, dt, type == "bbox" ? CocoIouType.Bbox : CocoIouType.Segm);
        var want = c.GetProperty(type).EnumerateArray().Select(v => FromHex(v.GetString()!)).ToArray();
        var got = r.Stats.ToArray();
        for (int i = 0; i < 12; i++)
            Assert.True(want[i] == got[i], $"{name} {type} {CocoStats.Names[i]}: ours {got[i]:R}, pycocotools {want[i]:R}");
        if (type == "segm") Assert.Equal(c.GetProperty("segm_summary").GetString(), r.Summary);
    }

    internal static double FromHex(string hex)
    {
        // "0x1.8e38e38e38e39p-1" or "-0x1.0000000000000p+0"
        bool neg = hex.StartsWith('-');
        if (neg) hex = hex[1..];
        int p = hex.IndexOf('p');
        string mant = hex[2..p];
        int exp = int.Parse(hex[(p + 1)..], CultureInfo.InvariantCulture);
        int dot = mant.IndexOf('.');
        long lead = long.Parse(mant[..dot], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        string frac = mant[(dot + 1)..];
        long fracBits = long.Parse(frac, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        double v = (lead + fracBits / Math.Pow(16, frac.Length)) * Math.Pow(2, exp);
        return neg ? -v : v;
    }
}
