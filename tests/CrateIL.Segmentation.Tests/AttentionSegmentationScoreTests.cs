using CrateIL.Segmentation.Attention;
using CrateIL.Imaging;
using CrateIL.Segmentation.Metrics;
using CrateIL.Testing;
using Xunit;

namespace CrateIL.Segmentation.Tests;

public class AttentionSegmentationScoreTests
{
    private static readonly Tolerance Exact = new(1e-12, 0);

    // 4×4 patch grid, object = the top-left 2×2 block: patches 0, 1, 4, 5 (4 object, 12 background)
    //   O O . .
    //   O O . .
    //   . . . .
    //   . . . .
    private static readonly int[] ObjectPatches = [0, 1, 4, 5];

    private static bool[] Patches(params int[] on)
    {
        var m = new bool[16];
        foreach (int i in on) m[i] = true;
        return m;
    }

    private static PatchTruth CornerObject() => PatchTruth.FromPatches(MaskBits.Of(4, 4, Patches(ObjectPatches)));

    /// <summary>One head: <paramref name="onObject"/> on the object patches, <paramref name="offObject"/> elsewhere.</summary>
    private static float[] Head(float onObject, float offObject)
    {
        var h = new float[16];
        for (int i = 0; i < 16; i++) h[i] = ObjectPatches.Contains(i) ? onObject : offObject;
        return h;
    }

    private static AttentionMaps Maps(params float[][] heads) => new(heads.SelectMany(h => h).ToArray(), heads.Length, 4, 4);

    // head A: 0.19 on the object (mass 0.76), 0.02 elsewhere — the object is exactly its top mass
    private static readonly float[] HeadA = Head(0.19f, 0.02f);
    // head B, inverted: 0.01 on the object, 0.08 elsewhere
    private static readonly float[] HeadB = Head(0.01f, 0.08f);
    // head C, all equal
    private static readonly float[] HeadC = Head(1f / 16, 1f / 16);
    // one-hot on patch 0 (a fully peaked softmax)
    private static readonly float[] OneHot = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

    private static void Expect(AttentionSegmentationScore s, double miouMass, double miouTop, double objMass, double objTop, double bestAuc, int bestHead, double meanAuc)
    {
        Check.Close(s.MiouMass, miouMass, Exact, "mIoU (mass rule)");
        Check.Close(s.MiouTopFraction, miouTop, Exact, "mIoU (top-P)");
        Check.Close(s.ObjectIouMass, objMass, Exact, "object IoU (mass rule)");
        Check.Close(s.ObjectIouTopFraction, objTop, Exact, "object IoU (top-P)");
        Check.Close(s.BestHeadAuc, bestAuc, Exact, "best-head AUC");
        Assert.Equal(bestHead, s.BestAucHead);
        Check.Close(s.MeanMapAuc, meanAuc, Exact, "mean-map AUC");
    }

    [Fact]
    public void Patch_truth_from_pixels_counts_coverage_per_patch()
    {
        // 8×8 pixels, 4×4 grid of 2×2-pixel patches. Object: pixel rows 0–3 × cols 0–3 (patches 0, 1, 4, 5 full),
        // pixel (0, 4) (patch 2: 1 of 4 pixels) and pixels (4, 0), (4, 1) (patch 8: 2 of 4 pixels).
        var pixels = new bool[64];
        for (int y = 0; y < 4; y++) for (int x = 0; x < 4; x++) pixels[y * 8 + x] = true;
        pixels[0 * 8 + 4] = true;
        pixels[4 * 8 + 0] = pixels[4 * 8 + 1] = true;
        var truth = PatchTruth.FromMask(MaskBits.Of(8, 8, pixels), 4, 4);
        var coverage = new double[16];
        coverage[0] = coverage[1] = coverage[4] = coverage[5] = 1;
        coverage[2] = 0.25;
        coverage[8] = 0.5;
        Check.Close(truth.Coverage, coverage, Exact, "coverage");
        Assert.Equal(Patches(0, 1, 4, 5, 8), truth.Foreground.Bits());   // 0.5 is enough by default
        Assert.Equal(5, truth.ForegroundCount);
        Assert.Equal(11, truth.BackgroundCount);
        Assert.Equal([1, 1, 0, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0], truth.ToLabels());

        var strict = PatchTruth.FromMask(MaskBits.Of(8, 8, pixels), 4, 4, minCoverage: 0.75);
        Assert.Equal(Patches(0, 1, 4, 5), strict.Foreground.Bits());

        var mask = new BinaryMask(8, 8, pixels.Select(p => p ? (byte)1 : (byte)0).ToArray());
        Assert.Equal(truth.Foreground, PatchTruth.FromMask(mask, 4, 4).Foreground);

        // non-square patches: 8×4 pixels (rows × columns) on a 2×4 grid → 4-row × 1-column patches.
        // Object: rows 0–3 of columns 0 and 1, and pixel (4, 3) ⇒ coverage 1, 1 in grid row 0; 1/4 at grid (1, 3).
        var tallPixels = new bool[32];
        for (int y = 0; y < 4; y++) tallPixels[y * 4] = tallPixels[y * 4 + 1] = true;
        tallPixels[4 * 4 + 3] = true;
        var tall = PatchTruth.FromMask(MaskBits.Of(8, 4, tallPixels), 2, 4);
        Check.Close(tall.Coverage, [1, 1, 0, 0, 0, 0, 0, 0.25], Exact, "8×4 coverage");
        Assert.Equal([true, true, false, false, false, false, false, false], tall.Foreground.Bits());

        Assert.Throws<ArgumentException>(() => PatchTruth.FromMask(new BinaryMask(9, 8), 4, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => PatchTruth.FromMask(mask, 4, 4, minCoverage: 0));
    }

    [Fact]
    public void Roc_auc_counts_ties_one_half()
    {
        // positives score 2 and 3, negatives 1 and 2: pairs (2,1)=1, (2,2)=½, (3,1)=1, (3,2)=1 ⇒ 3.5/4
        Check.Close(RocAuc.Compute([1f, 2f, 2f, 3f], MaskBits.Of(1, 4, [false, true, false, true])), 0.875, Exact, "AUC with a tie");
        // same pairs, unsorted input
        Check.Close(RocAuc.Compute([3f, 2f, 1f, 2f], MaskBits.Of(1, 4, [true, true, false, false])), 0.875, Exact, "AUC unsorted");
        Check.Close(RocAuc.Compute([5f, 5f, 5f], MaskBits.Of(1, 3, [true, false, false])), 0.5, Exact, "constant map");
        Check.Close(RocAuc.Compute([0.9f, 0.1f, 0.2f], MaskBits.Of(1, 3, [true, false, false])), 1.0, Exact, "perfect ranking");
        Check.Close(RocAuc.Compute([0.1f, 0.9f, 0.2f], MaskBits.Of(1, 3, [true, false, false])), 0.0, Exact, "inverted ranking");
        Assert.True(double.IsNaN(RocAuc.Compute([1f, 2f], MaskBits.Of(1, 2, [true, true]))));
        Assert.True(double.IsNaN(RocAuc.Compute([1f, 2f], MaskBits.Of(1, 2, [false, false]))));
    }

    [Fact]
    public void Eq13_14_object_iou_and_auc_by_hand()
    {
        var truth = CornerObject();
        // Mass rule (0.6): A keeps exactly the object (ascending cumsum 0.24 after the 12 background patches ≤ 0.4);
        //   B keeps background patches j = 5..12 of the index-ordered ties (0.04 + 0.08·j > 0.4) = {8..15};
        //   C (1/16 each) keeps patches 7..16 of the ascending order (j/16 > 0.4) = {6..15}.
        //   object: A 1, B 0, C 0 ⇒ 1; background (12): A 0, B 8/12, C 10/(12 + 10 − 10) = 5/6 ⇒ 5/6; mIoU 11/12.
        // Top-P (10 of 16, ties by lower index): A {0..9}, B {2, 3, 6..13}, C {0..9}.
        //   object: A 4/10, B 0, C 4/10 ⇒ 0.4; background: A 6/16, B 10/12, C 6/16 ⇒ 5/6; mIoU (5/6 + 0.4)/2 = 37/60.
        // AUC: A 1, B 0, C ½ ⇒ best 1 (head 0); the mean map is 0.0875 on the object, ≈0.0542 off it ⇒ 1.
        var s = AttentionSegmentationScore.Measure(Maps(HeadA, HeadB, HeadC), truth);
        Expect(s, 11.0 / 12, 37.0 / 60, 1, 0.4, 1, 0, 1);

        // the inverted head alone: AUC 0; mass {8..15}: object 0, background 8/12; top-P: object 0, background 10/12
        var inverted = AttentionSegmentationScore.Measure(Maps(HeadB), truth);
        Expect(inverted, (0 + 8.0 / 12) / 2, (0 + 10.0 / 12) / 2, 0, 0, 0, 0, 0);
    }

    [Fact]
    public void Peaked_and_all_equal_softmax_maps_are_scored_without_throwing()
    {
        var truth = CornerObject();
        // one-hot on patch 0: mass keeps {0} ⇒ object 1/4, background 0, mIoU 1/8;
        // top-P keeps 0 then the zeros 1..9 ⇒ object 4/10, background 6/16, mIoU 0.3875;
        // AUC: patch 0 beats all 12 negatives, the other 3 positives tie with them ⇒ (12 + 3·6)/48 = 0.625
        Expect(AttentionSegmentationScore.Measure(Maps(OneHot), truth), 0.125, 0.3875, 0.25, 0.4, 0.625, 0, 0.625);
        // all equal: mass {6..15} ⇒ object 0, background 5/6; top-P {0..9} ⇒ object 0.4, background 0.375; AUC ½
        Expect(AttentionSegmentationScore.Measure(Maps(HeadC), truth), 5.0 / 12, 0.3875, 0, 0.4, 0.5, 0, 0.5);
        // the same maps against every possible degenerate truth: NaN, no exception
        foreach (bool objectEverywhere in new[] { false, true })
        {
            var degenerate = PatchTruth.FromPatches(MaskBits.Of(4, 4, Enumerable.Repeat(objectEverywhere, 16).ToArray()));
            Assert.True(degenerate.IsDegenerate);
            Assert.Same(AttentionSegmentationScore.Undefined, AttentionSegmentationScore.Measure(Maps(OneHot, HeadC), degenerate));
            Assert.True(AttentionSegmentationScore.AllForeground(degenerate).IsUndefined);
            Assert.True(AttentionSegmentationScore.CentrePrior(degenerate).IsUndefined);
        }
    }

    [Fact]
    public void All_foreground_baseline_scores_the_background_class_for_free()
    {
        // the trap: mask = every patch ⇒ background IoU 12/16, object IoU 4/16, mIoU 0.5 under both rules; AUC ½
        Expect(AttentionSegmentationScore.AllForeground(CornerObject()), 0.5, 0.5, 0.25, 0.25, 0.5, 0, 0.5);
    }

    [Fact]
    public void Centre_prior_baseline_by_hand()
    {
        // σ = 4/4 = 1 patch; squared distances to (1.5, 1.5): centre block 0.5, edge patches 2.5, corners 4.5.
        // Normalised masses e^(−d²/2)/Σ, Σ = 4e^−0.25 + 8e^−1.25 + 4e^−2.25: centre 0.13361, edge 0.04915, corner 0.01808.
        var map = CentrePrior.Map(4, 4);
        double a = Math.Exp(-0.25), b = Math.Exp(-1.25), c = Math.Exp(-2.25), sum = 4 * a + 8 * b + 4 * c;
        double[] expected = [c, b, b, c, b, a, a, b, b, a, a, b, c, b, b, c];
        Check.Close(map.Head(0), expected.Select(v => v / sum).ToArray(), new Tolerance(1e-7, 0), "centre prior map");

        // Mass rule: ascending, the 4 corners reach 0.0723; edges (index order) j = 7, 8 cross 0.4 (0.0723 + 0.0492·j)
        //   ⇒ kept {13, 14} and the centre block {5, 6, 9, 10}. Object ∩ = {5}: 1/(4 + 6 − 1) = 1/9;
        //   background ∩ = {6, 9, 10, 13, 14}: 5/(12 + 6 − 5) = 5/13.
        // Top-P: the centre block, then edges by index 1, 2, 4, 7, 8, 11 ⇒ object ∩ = {1, 4, 5}: 3/11;
        //   background ∩ = 7 of 10: 7/15.
        // AUC: object patches are a corner, two edges and a centre patch: (1.5 + 2·(3 + 3) + 9 + 1.5)/48 = 0.5.
        Expect(AttentionSegmentationScore.CentrePrior(CornerObject()),
            (1.0 / 9 + 5.0 / 13) / 2, (3.0 / 11 + 7.0 / 15) / 2, 1.0 / 9, 3.0 / 11, 0.5, 0, 0.5);

        // an object in the centre block is what the prior predicts: AUC 1; mass mask {5, 6, 9, 10, 13, 14}
        // ⇒ object 4/6, background 2/(12 + 6 − 2) = 2/16; top-P ⇒ object 4/10, background 6/(12 + 10 − 6) = 6/16
        var centred = PatchTruth.FromPatches(MaskBits.Of(4, 4, Patches(5, 6, 9, 10)));
        Expect(AttentionSegmentationScore.CentrePrior(centred), (4.0 / 6 + 2.0 / 16) / 2, (0.4 + 6.0 / 16) / 2, 4.0 / 6, 0.4, 1, 0, 1);
    }

    [Fact]
    public void Evaluation_rows_average_images_per_layer_beside_baselines()
    {
        var eval = new AttentionSegmentationEvaluation(layers: 2);
        var truth = CornerObject();
        var untrained = Maps(HeadC);
        eval.Add(0, truth, Maps(HeadA, HeadB, HeadC), untrained);
        eval.Add(0, truth, Maps(OneHot), untrained);
        eval.Add(0, PatchTruth.FromPatches(new BinaryMask(4, 4)), Maps(HeadA), untrained);   // no object: counted, skipped
        var rows = eval.Rows();
        Assert.Equal(2, rows.Length);

        var model = rows[0].Model;
        Assert.Equal((2, 1), (model.Images, model.Skipped));
        // means of the two images scored above: (11/12, 37/60, 1, 0.4, 1, 1) and (1/8, 0.3875, 1/4, 0.4, 0.625, 0.625)
        Check.Close(model.MiouMass, (11.0 / 12 + 0.125) / 2, Exact, "mean mIoU (mass)");
        Check.Close(model.MiouTopFraction, (37.0 / 60 + 0.3875) / 2, Exact, "mean mIoU (top-P)");
        Check.Close(model.ObjectIouMass, 0.625, Exact, "mean object IoU (mass)");
        Check.Close(model.ObjectIouTopFraction, 0.4, Exact, "mean object IoU (top-P)");
        Check.Close(model.BestHeadAuc, 0.8125, Exact, "mean best-head AUC");
        Check.Close(model.MeanMapAuc, 0.8125, Exact, "mean mean-map AUC");

        Assert.NotNull(rows[0].Untrained);
        Assert.Equal(new AttentionScoreMean(2, 1, 5.0 / 12, 0.3875, 0, 0.4, 0.5, 0.5), rows[0].Untrained);
        Assert.Equal(new AttentionScoreMean(2, 1, 0.5, 0.5, 0.25, 0.25, 0.5, 0.5), rows[0].AllForeground);
        Assert.Equal((2, 1), (rows[0].CentrePrior.Images, rows[0].CentrePrior.Skipped));
        Check.Close(rows[0].CentrePrior.ObjectIouMass, 1.0 / 9, Exact, "centre prior object IoU (mass)");

        // a layer that saw nothing: zero counts, NaN means, no untrained row
        Assert.Equal(0, rows[1].Model.Images);
        Assert.True(double.IsNaN(rows[1].Model.MiouMass));
        Assert.Null(rows[1].Untrained);
        Assert.Equal(1, rows[1].Layer);
    }

    [Fact]
    public void Random_heads_baseline_is_a_seeded_softmax_near_chance()
    {
        var maps = RandomAttention.Map(3, 4, 4, new Random(7));
        for (int k = 0; k < 3; k++)
        {
            double sum = 0;
            foreach (float v in maps.Head(k)) { Assert.True(v >= 0); sum += v; }
            Check.Close(sum, 1, new Tolerance(1e-6, 0), $"random head {k} mass");
        }
        Assert.Equal(maps.Values.ToArray(), RandomAttention.Map(3, 4, 4, new Random(7)).Values.ToArray());

        // one random head on a 16×16 grid with a 6×6 object, 400 images: the mean AUC is chance, 0.5. One image's AUC
        // has SD ≈ √((36 + 220 + 1)/(12·36·220)) ≈ 0.052, so the mean's SD is ≈ 0.0026: ±0.015 is ~6 SD.
        var object6 = new bool[256];
        for (int r = 5; r < 11; r++) for (int c = 2; c < 8; c++) object6[r * 16 + c] = true;
        var truth = PatchTruth.FromPatches(MaskBits.Of(16, 16, object6));
        var eval = new AttentionSegmentationEvaluation(1, randomHeads: 1, randomSeed: 11);
        var anyMaps = RandomAttention.Map(1, 16, 16, new Random(3));
        for (int i = 0; i < 400; i++) eval.Add(0, truth, anyMaps);
        var random = eval.Rows()[0].RandomHeads;
        Assert.NotNull(random);
        Assert.Equal(400, random.Images);
        Check.Close(random.BestHeadAuc, 0.5, new Tolerance(0.015, 0), "random-head mean AUC");
        Assert.Null(new AttentionSegmentationEvaluation(1).Rows()[0].RandomHeads);
    }

    [Fact]
    public void Maps_on_another_grid_are_rejected()
    {
        var maps = new AttentionMaps(new float[2 * 8], 2, 2, 4);
        Assert.Throws<ArgumentException>(() => AttentionSegmentationScore.Measure(maps, CornerObject()));
    }
}
