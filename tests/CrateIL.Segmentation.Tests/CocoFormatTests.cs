using CrateIL.Segmentation.Coco;
using Xunit;

namespace CrateIL.Segmentation.Tests;

public class CocoFormatTests
{
    private const string Gt = """
    {"info": {"description": "toy"}, "type": "instances",
     "images": [{"id": 1, "width": 30, "height": 20, "file_name": "a.jpg"}, {"id": 2, "width": 3, "height": 2}],
     "categories": [{"id": 1, "name": "thing", "supercategory": null}, {"id": 5, "name": "stuff"}],
     "annotations": [
       {"id": 10, "image_id": 1, "category_id": 1, "segmentation": [[2, 3, 12, 3, 12, 8, 2, 8]], "area": 50.0, "bbox": [2, 3, 10, 5], "iscrowd": 0},
       {"id": 11, "image_id": 2, "category_id": 5, "segmentation": {"size": [2, 3], "counts": [1, 4, 1]}, "area": 4, "bbox": [0, 0, 3, 2], "iscrowd": 1},
       {"id": 12, "image_id": 2, "category_id": 1, "segmentation": {"size": [2, 3], "counts": "141"}, "area": 4, "bbox": [0, 0, 3, 2], "iscrowd": false}
     ]}
    """;

    private static CocoFormatException Fails(string json, string file = "bad.json") =>
        Assert.Throws<CocoFormatException>(() => CocoDataset.Parse(json, file));

    [Fact]
    public void Reads_polygons_uncompressed_and_compressed_rle()
    {
        var ds = CocoDataset.Parse(Gt, "toy.json");
        Assert.Equal(2, ds.Images.Count);
        Assert.Equal(3, ds.Annotations.Count);
        Assert.Equal(2, ds.Categories.Count);
        var poly = Assert.IsType<CocoPolygons>(ds.Annotations[0].Segmentation);
        Assert.Equal(50, poly.ToRle(20, 30).Area);
        var unc = Assert.IsType<CocoRleSegmentation>(ds.Annotations[1].Segmentation);
        Assert.False(unc.Compressed);
        Assert.True(ds.Annotations[1].IsCrowd);
        var cmp = Assert.IsType<CocoRleSegmentation>(ds.Annotations[2].Segmentation);
        Assert.True(cmp.Compressed);
        Assert.Equal(unc.Rle, cmp.Rle);
        Assert.Equal(new CocoBox(2, 3, 10, 5), ds.Annotations[0].Box);
        Assert.Equal(50.0, ds.Annotations[0].Area);
    }

    [Fact]
    public void Write_then_read_keeps_everything()
    {
        var ds = CocoDataset.Parse(Gt, "toy.json");
        var again = CocoDataset.Parse(ds.ToJson(), "again.json");
        Assert.Equal(ds.Images, again.Images);
        Assert.Equal(ds.Categories, again.Categories);
        Assert.True(again.Extra.ContainsKey("info") && again.Extra.ContainsKey("type"));
        for (int i = 0; i < ds.Annotations.Count; i++)
        {
            var a = ds.Annotations[i];
            var b = again.Annotations[i];
            Assert.Equal((a.Id, a.ImageId, a.CategoryId, a.Area, a.Box, a.IsCrowd), (b.Id, b.ImageId, b.CategoryId, b.Area, b.Box, b.IsCrowd));
            var img = ds.GetImage(a.ImageId);
            Assert.Equal(a.Segmentation!.ToRle(img.Height, img.Width), b.Segmentation!.ToRle(img.Height, img.Width));
            Assert.Equal(a.Segmentation.GetType(), b.Segmentation.GetType());
        }
    }

    [Fact]
    public void Results_round_trip_with_compressed_rle_containing_json_special_characters()
    {
        var gt = CocoDataset.Parse(Gt, "toy.json");
        // a run pattern whose compressed string holds a backslash (92 = 48 + 44)
        var rle = new Rle(20, 30, new uint[] { 12, 300, 288 });
        string s = rle.ToCompressedString();
        var dets = new[]
        {
            new CocoAnnotation { ImageId = 1, CategoryId = 1, Score = 0.5, Segmentation = new CocoRleSegmentation(rle) },
        };
        string json = CocoResults.ToJson(dets);
        var res = CocoResults.Parse(json, gt, "res.json");
        var back = Assert.IsType<CocoRleSegmentation>(res.Detections[0].Segmentation);
        Assert.Equal(rle, back.Rle);
        Assert.Equal(rle.Area, res.Detections[0].Area);
        Assert.Equal(rle.ToBox(), res.Detections[0].Box);
        Assert.Equal(1, res.Detections[0].Id);
        Assert.Contains('\\', s);
    }

    [Fact]
    public void Box_results_get_area_and_rectangle_polygon_like_loadRes()
    {
        var gt = CocoDataset.Parse(Gt, "toy.json");
        var res = CocoResults.Parse("""[{"image_id": 1, "category_id": 1, "score": 0.9, "bbox": [1.5, 2, 4, 3]}, {"image_id": 2, "category_id": 5, "score": 1, "bbox": [0, 0, 1, 1]}]""", gt, "r.json");
        Assert.Equal(12.0, res.Detections[0].Area);
        var poly = Assert.IsType<CocoPolygons>(res.Detections[0].Segmentation);
        Assert.Equal(new double[] { 1.5, 2, 1.5, 5, 5.5, 5, 5.5, 2 }, poly.Polygons[0]);
        Assert.Equal(new long[] { 1, 2 }, res.Detections.Select(d => d.Id));
    }

    [Theory]
    [InlineData("""{"images": [{"id": 1, "width": 3, "height": 2}], "annotations": [""", "invalid JSON")]
    [InlineData("""[1, 2]""", "expected a JSON object")]
    [InlineData("""{"annotations": []}""", "missing \"images\"")]
    [InlineData("""{"images": [{"id": "1", "width": 3, "height": 2}]}""", "images[0].id: expected an integer")]
    [InlineData("""{"images": [{"id": 1, "width": -3, "height": 2}]}""", "images[0].width: must be a positive size")]
    [InlineData("""{"images": [{"id": 1, "width": 100000, "height": 100000}]}""", "exceeds")]
    [InlineData("""{"images": [{"id": 1, "width": 3, "height": 2}, {"id": 1, "width": 3, "height": 2}]}""", "duplicate image id 1")]
    [InlineData("""{"images": [{"id": 1, "width": 3, "height": 2}], "annotations": [{"id": 1, "image_id": 9, "category_id": 1}]}""", "image_id 9 is not in images")]
    [InlineData("""{"images": [{"id": 1, "width": 3, "height": 2}], "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1]}]}""", "annotations[0].bbox: expected [x, y, width, height]")]
    [InlineData("""{"images": [{"id": 1, "width": 3, "height": 2}], "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "area": -4}]}""", "negative area")]
    [InlineData("""{"images": [{"id": 1, "width": 3, "height": 2}], "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": "no"}]}""", "iscrowd")]
    [InlineData("""{"images": [{"id": 1, "width": 3, "height": 2}], "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": {"size": [2, 3], "counts": "1X"}}]}""", "annotations[0].segmentation.counts: compressed RLE string ends inside a value")]
    [InlineData("""{"images": [{"id": 1, "width": 3, "height": 2}], "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": {"size": [2, 3], "counts": [1, 4]}}]}""", "add up to 5, not h·w")]
    [InlineData("""{"images": [{"id": 1, "width": 3, "height": 2}], "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": {"size": [2, 3], "counts": [1, -4, 1]}}]}""", "counts[1]: expected a run length")]
    [InlineData("""{"images": [{"id": 1, "width": 3, "height": 2}], "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": {"size": [-2, 3], "counts": "6"}}]}""", "must be two positive integers")]
    [InlineData("""{"images": [{"id": 1, "width": 3, "height": 2}], "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": {"size": [100000, 100000], "counts": "6"}}]}""", "exceeds")]
    [InlineData("""{"images": [{"id": 1, "width": 3, "height": 2}], "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[1, 2, 3]]}]}""", "odd number of coordinates")]
    [InlineData("""{"images": [{"id": 1, "width": 3, "height": 2}], "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[1, "2", 3, 4, 5, 6]]}]}""", "segmentation[0][1]: expected a finite number")]
    [InlineData("""{"images": [{"id": 1, "width": 3, "height": 2}], "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": "polygon"}]}""", "expected polygons or an RLE object")]
    [InlineData("""{"images": [{"id": 1, "width": 3, "height": 2}], "annotations": [{"id": 1, "image_id": 1, "category_id": 1}, {"id": 1, "image_id": 1, "category_id": 1}]}""", "duplicate annotation id 1")]
    public void Malformed_ground_truth_names_file_and_problem(string json, string problem)
    {
        var ex = Fails(json, "broken_gt.json");
        Assert.StartsWith("broken_gt.json: ", ex.Message);
        Assert.Contains(problem, ex.Message);
        Assert.Equal("broken_gt.json", ex.File);
    }

    [Theory]
    [InlineData("""{"image_id": 1}""", "results must be an array")]
    [InlineData("""[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}]""", "[0]: missing \"score\"")]
    [InlineData("""[{"image_id": 7, "category_id": 1, "score": 1, "bbox": [0, 0, 1, 1]}]""", "image_id 7 is not in the ground truth")]
    [InlineData("""[{"image_id": 1, "category_id": 1, "score": 1, "bbox": [0, 0, 1, 1]}, {"image_id": 1, "category_id": 1, "score": 1, "segmentation": {"size": [20, 30], "counts": [600]}}]""", "[1]: no \"bbox\"")]
    [InlineData("""[{"image_id": 1, "category_id": 1, "score": 1}]""", "neither \"bbox\" nor \"segmentation\"")]
    [InlineData("""[{"image_id": 1, "category_id": 1, "score": "high", "bbox": [0, 0, 1, 1]}]""", "[0].score: expected a finite number")]
    [InlineData("""[{"image_id": 1, "category_id": 1, "score": 1, "bbox": [0, 0, 1, 1]""", "invalid JSON")]
    public void Malformed_results_name_file_and_problem(string json, string problem)
    {
        var gt = CocoDataset.Parse(Gt, "toy.json");
        var ex = Assert.Throws<CocoFormatException>(() => CocoResults.Parse(json, gt, "broken_res.json"));
        Assert.StartsWith("broken_res.json: ", ex.Message);
        Assert.Contains(problem, ex.Message);
    }

    [Fact]
    public void Missing_area_is_reported_at_evaluation()
    {
        var gt = CocoDataset.Parse("""{"images": [{"id": 1, "width": 3, "height": 2}], "categories": [{"id": 1}], "annotations": [{"id": 4, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}]}""", "noarea.json");
        var res = CocoResults.Parse("""[{"image_id": 1, "category_id": 1, "score": 1, "bbox": [0, 0, 1, 1]}]""", gt, "r.json");
        var ex = Assert.Throws<CocoFormatException>(() => CocoEvaluator.Evaluate(gt, res, CocoIouType.Bbox));
        Assert.Contains("noarea.json: annotation id 4 has no \"area\"", ex.Message);
    }
}
