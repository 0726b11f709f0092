using System.Text.Json;
using CrateIL.Segmentation.Coco;
using CrateIL.Imaging;
using Xunit;

namespace CrateIL.Segmentation.Tests;

public class RleTests
{
    private static BinaryMask Mask(params string[] rows)
    {
        var m = new BinaryMask(rows.Length, rows[0].Length);
        for (int y = 0; y < rows.Length; y++)
            for (int x = 0; x < rows[y].Length; x++) m[y, x] = rows[y][x] == '#';
        return m;
    }

    [Fact]
    public void Encode_2x3_mask_by_hand()
    {
        // rows: .## / ##. ; column-major walk: (0,1) (1,1) (1,0) → 0 1 1 1 1 0 → runs 1, 4, 1
        var m = Mask(".##", "##.");
        var rle = Rle.Encode(m);
        Assert.Equal(new uint[] { 1, 4, 1 }, rle.Counts.ToArray());
        Assert.Equal(4, rle.Area);
        Assert.Equal(new CocoBox(0, 0, 3, 2), rle.ToBox());
        // each count < 16 is one character 48 + count; the third run is not delta-coded (only runs 3.. are)
        Assert.Equal("141", rle.ToCompressedString());
        Assert.Equal(m, rle.Decode());
        Assert.Equal(rle, Rle.FromCompressedString("141", 2, 3));
    }

    [Fact]
    public void Compressed_string_with_delta_and_negative_values_by_hand()
    {
        // 0 → '0'; 40 = 8 + 1·32 → (8|0x20)+48 = 'X', then '1'; 3 → '3';
        // 10 − 40 = −30 → low 5 bits 2 with more → 'R', then −1 → 31+48 = 'O' (bit 0x10 set, x = −1: stop);
        // 100 − 3 = 97 = 1 + 3·32 → 'Q', '3'
        var rle = new Rle(9, 17, new uint[] { 0, 40, 3, 10, 100 });
        Assert.Equal("0X13ROQ3", rle.ToCompressedString());
        Assert.Equal(rle, Rle.FromCompressedString("0X13ROQ3", 9, 17));
        Assert.Equal(50, rle.Area);
    }

    [Fact]
    public void Compressed_strings_from_pycocotools_decode_to_the_same_masks()
    {
        // strings printed by maskApi.c rleToString for frPyObjects polygons on a 20×30 image
        var rect = Rle.FromCompressedString("[15?00000000000000000U;", 20, 30);
        Assert.Equal(50, rect.Area);
        Assert.Equal(new CocoBox(2, 3, 10, 5), rect.ToBox());
        Assert.Equal(rect, Rle.FromPolygon([2, 3, 12, 3, 12, 8, 2, 8], 20, 30));
        var tri = Rle.FromPolygon([0, 0, 20, 0, 0, 20], 20, 30);
        Assert.Equal("0c01O1O1O1O1O1O1O1O1O1O1O1O1O1O1O1O1O1Om6", tri.ToCompressedString());
        Assert.Equal(190, tri.Area); // column x holds the 19 − x pixel centres strictly inside x + y < 20
        Assert.Equal(new CocoBox(0, 0, 19, 19), tri.ToBox());
        Assert.Equal("P25?00000000000000000`:", Rle.FromPolygon([2.5, 3.5, 12.5, 3.5, 12.5, 8.5, 2.5, 8.5], 20, 30).ToCompressedString());
    }

    [Fact]
    public void Axis_aligned_rectangle_polygon_has_exact_area_and_box()
    {
        foreach (var (x, y, w, h) in new[] { (0, 0, 7, 5), (3, 4, 10, 1), (1, 2, 1, 1), (5, 0, 20, 31) })
        {
            var rle = Rle.FromPolygon([x, y, x + w, y, x + w, y + h, x, y + h], 31, 25);
            Assert.Equal(w * h, rle.Area);
            Assert.Equal(new CocoBox(x, y, w, h), rle.ToBox());
            var expected = new BinaryMask(31, 25);
            expected.FillRectangle(x, y, x + w, y + h);
            Assert.Equal(expected, rle.Decode());
            Assert.Equal(rle, Rle.FromBox(new CocoBox(x, y, w, h), 31, 25));
        }
    }

    [Fact]
    public void Random_masks_round_trip_through_counts_and_strings()
    {
        var rng = new Random(7);
        foreach (var (h, w) in new[] { (1, 1), (1, 7), (7, 1), (13, 17), (64, 65) })
            for (int trial = 0; trial < 20; trial++)
            {
                var m = new BinaryMask(h, w);
                double density = rng.NextDouble();
                for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) m[y, x] = rng.NextDouble() < density;
                var rle = Rle.Encode(m);
                Assert.Equal(m.Area, rle.Area);
                Assert.Equal(m, rle.Decode());
                Assert.Equal(rle, Rle.FromCompressedString(rle.ToCompressedString(), h, w));
                Assert.Equal(rle, new Rle(h, w, rle.Counts));
            }
    }

    [Fact]
    public void Merge_union_and_intersection_of_known_masks()
    {
        var a = Mask("##..", "##..", "....");
        var b = Mask(".##.", ".##.", ".##.");
        var union = Rle.Merge([Rle.Encode(a), Rle.Encode(b)]);
        var inter = Rle.Merge([Rle.Encode(a), Rle.Encode(b)], intersect: true);
        Assert.Equal(Mask("###.", "###.", ".##."), union.Decode());
        Assert.Equal(Mask(".#..", ".#..", "...."), inter.Decode());
        Assert.Equal(8, union.Area);
        Assert.Equal(2, inter.Area);
    }

    [Fact]
    public void Iou_of_known_masks_with_and_without_crowd()
    {
        // two 4×4 squares on 10×10 overlapping in a 2×4 strip: inter 8, union 24; crowd: 8 / area(dt) 16
        var dt = new BinaryMask(10, 10); dt.FillRectangle(0, 0, 4, 4);
        var gt = new BinaryMask(10, 10); gt.FillRectangle(2, 0, 6, 4);
        var far = new BinaryMask(10, 10); far.FillRectangle(7, 7, 9, 9);
        var o = Rle.Iou([Rle.Encode(dt)], [Rle.Encode(gt), Rle.Encode(gt), Rle.Encode(far)], [false, true, false]);
        Assert.Equal(8.0 / 24, o[0, 0]);
        Assert.Equal(8.0 / 16, o[0, 1]);
        Assert.Equal(0.0, o[0, 2]);
        // size mismatch where the boxes overlap gives −1 (maskApi.c)
        var other = Rle.Encode(new BinaryMask(10, 12) { [1, 1] = true });
        Assert.Equal(-1.0, Rle.Iou([Rle.Encode(dt)], [other], [false])[0, 0]);
    }

    [Fact]
    public void Box_iou_with_crowd_rule()
    {
        var dt = new CocoBox(0, 0, 4, 4);
        var gt = new CocoBox(2, 0, 4, 4);
        Assert.Equal(8.0 / 24, CocoBox.Iou(dt, gt, false));
        Assert.Equal(8.0 / 16, CocoBox.Iou(dt, gt, true));
        Assert.Equal(0.0, CocoBox.Iou(dt, new CocoBox(4, 0, 2, 2), false)); // touching edges do not overlap
        Assert.Equal(0.25, CocoBox.Iou(new CocoBox(0.5, 0.5, 1, 1), new CocoBox(0.5, 0.5, 2, 2), false));
    }

    [Fact]
    public void Polygon_rasterisation_matches_pycocotools_on_every_fixture_mask()
    {
        int compared = 0;
        using var expected = JsonDocument.Parse(File.ReadAllText(CocoFixtures.Path("expected.json")));
        foreach (var c in expected.RootElement.EnumerateArray())
        {
            var gt = CocoDataset.Load(CocoFixtures.Path(c.GetProperty("name").GetString() + "_gt.json"));
            foreach (var m in c.GetProperty("masks").EnumerateArray())
            {
                var ann = gt.Annotations.Single(a => a.Id == m.GetProperty("id").GetInt64());
                var img = gt.GetImage(ann.ImageId);
                var rle = ann.Segmentation!.ToRle(img.Height, img.Width);
                var r = m.GetProperty("rle");
                Assert.Equal(r.GetProperty("counts").GetString(), rle.ToCompressedString());
                Assert.Equal(m.GetProperty("area").GetInt64(), rle.Area);
                var box = m.GetProperty("bbox").EnumerateArray().Select(v => v.GetDouble()).ToArray();
                Assert.Equal(new CocoBox(box[0], box[1], box[2], box[3]), rle.ToBox());
                compared++;
            }
        }
        Assert.True(compared > 40, $"only {compared} fixture masks");
    }

    [Theory]
    [InlineData("14", 2, 3, "add up to 5")]            // counts 1, 4 do not cover 6 pixels
    [InlineData("1\u007f1", 2, 3, "character")]       // outside '0'..'o'
    [InlineData("1 1", 2, 3, "character")]
    [InlineData("1X", 2, 3, "ends inside a value")]   // 'X' has the continuation bit
    [InlineData("1O4", 2, 3, "decodes to -1")]        // 'O' = −1: a negative run
    [InlineData("oooooooo1", 2, 3, "longer than 7")]
    public void Bad_compressed_strings_are_refused(string s, int h, int w, string problem)
    {
        var ex = Assert.Throws<RleFormatException>(() => Rle.FromCompressedString(s, h, w));
        Assert.Contains(problem, ex.Message);
    }

    [Fact]
    public void Counts_must_add_up_and_sizes_must_be_sane()
    {
        Assert.Contains("add up to 5", Assert.Throws<RleFormatException>(() => new Rle(2, 3, new uint[] { 1, 4 })).Message);
        Assert.Throws<RleFormatException>(() => new Rle(0, 3, new uint[] { 0 }));
        Assert.Throws<RleFormatException>(() => new Rle(-2, 3, new uint[] { 6 }));
        Assert.Throws<RleFormatException>(() => Rle.FromCompressedString("1", 70000, 70000));
    }
}

internal static class CocoFixtures
{
    public static string Path(string name) => System.IO.Path.Combine(AppContext.BaseDirectory, "CocoFixtures", name);
}
