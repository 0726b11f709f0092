using CrateIL.Segmentation.Coco;
using CrateIL.Imaging;
using CrateIL.Testing;
using Xunit;

namespace CrateIL.Segmentation.Tests;

public class MaskDetectionEvaluationTests
{
    // pycocotools' precision is tp/(tp + fp + spacing(1)): a perfect match reads 1 − 2.2e−16, not 1
    private static readonly Tolerance Tight = new(1e-12, 0);

    /// <summary>A 10×10 mask with rows y0..y1 and columns x0..x1 (inclusive) set.</summary>
    private static BinaryMask Rect(int y0, int y1, int x0, int x1)
    {
        var m = new BinaryMask(10, 10);
        m.FillRectangle(x0, y0, x1 + 1, y1 + 1);
        return m;
    }

    private static void ExpectBoth(MaskDetectionScores s, double ap, double ap50, double ap75)
    {
        Check.Close(s.SegmAP, ap, Tight, "segm AP");
        Check.Close(s.SegmAP50, ap50, Tight, "segm AP50");
        Check.Close(s.SegmAP75, ap75, Tight, "segm AP75");
        Check.Close(s.BoxAP, ap, Tight, "bbox AP");
        Check.Close(s.BoxAP50, ap50, Tight, "bbox AP50");
        Check.Close(s.BoxAP75, ap75, Tight, "bbox AP75");
    }

    [Fact]
    public void FillRectangle_bounds_are_what_the_helper_assumes()
    {
        var m = Rect(2, 5, 2, 5);
        Assert.Equal(16, m.Area);
        Assert.True(m[2, 2] && m[5, 5] && !m[6, 5] && !m[5, 6]);
    }

    [Fact]
    public void Perfect_masks_give_AP_one()
    {
        var images = new[]
        {
            new MaskDetectionImage([Rect(2, 5, 2, 5)], [new ScoredMask(Rect(2, 5, 2, 5), 0.9)]),
            new MaskDetectionImage([Rect(0, 3, 0, 9), Rect(6, 9, 4, 7)],
                [new ScoredMask(Rect(6, 9, 4, 7), 0.7), new ScoredMask(Rect(0, 3, 0, 9), 0.8)]),
        };
        var s = MaskDetectionEvaluation.Evaluate(images);
        ExpectBoth(s, 1, 1, 1);
        Assert.Equal((2, 3, 3), (s.Images, s.TrueObjects, s.Predictions));
    }

    [Fact]
    public void Disjoint_masks_give_AP_zero()
    {
        var s = MaskDetectionEvaluation.Evaluate([new MaskDetectionImage([Rect(0, 3, 0, 3)], [new ScoredMask(Rect(6, 9, 6, 9), 1.0)])]);
        ExpectBoth(s, 0, 0, 0);
    }

    [Fact]
    public void Two_thirds_overlap_counts_at_four_of_ten_thresholds()
    {
        // 5×5 truth, prediction shifted one column: IoU 20/30 = 2/3 for the masks and their boxes alike,
        // matched at IoU thresholds .50 .55 .60 .65 and not from .70 ⇒ AP 0.4, AP50 1, AP75 0
        var s = MaskDetectionEvaluation.Evaluate([new MaskDetectionImage([Rect(0, 4, 0, 4)], [new ScoredMask(Rect(0, 4, 1, 5), 0.5)])]);
        ExpectBoth(s, 0.4, 1, 0);
    }

    [Fact]
    public void A_false_positive_costs_by_rank_as_in_pycocotools()
    {
        // two images, one object each; image 1 found exactly, image 2 answered with a disjoint mask.
        var truth1 = Rect(2, 5, 2, 5);
        var truth2 = Rect(0, 3, 0, 3);
        var wrong = Rect(6, 9, 6, 9);
        // hit ranked first: recall 1/2 at precision 1, then 1/2 at 1/2 ⇒ envelope 1 at recall points 0, .01, …, .50
        // (51 of 101) and 0 beyond ⇒ AP = 51/101 at every IoU threshold
        var hitFirst = MaskDetectionEvaluation.Evaluate(
        [
            new MaskDetectionImage([truth1], [new ScoredMask(truth1, 0.9)]),
            new MaskDetectionImage([truth2], [new ScoredMask(wrong, 0.8)]),
        ]);
        ExpectBoth(hitFirst, 51.0 / 101, 51.0 / 101, 51.0 / 101);
        // false positive ranked first: precision (0, 1/2) ⇒ envelope 1/2 up to recall .50 ⇒ AP = 25.5/101
        var missFirst = MaskDetectionEvaluation.Evaluate(
        [
            new MaskDetectionImage([truth1], [new ScoredMask(truth1, 0.7)]),
            new MaskDetectionImage([truth2], [new ScoredMask(wrong, 0.8)]),
        ]);
        ExpectBoth(missFirst, 25.5 / 101, 25.5 / 101, 25.5 / 101);
    }

    [Fact]
    public void Empty_masks_and_empty_images_are_left_out()
    {
        var s = MaskDetectionEvaluation.Evaluate(
        [
            new MaskDetectionImage([Rect(2, 5, 2, 5), new BinaryMask(10, 10)], [new ScoredMask(Rect(2, 5, 2, 5), 0.9), new ScoredMask(new BinaryMask(10, 10), 0.95)]),
            new MaskDetectionImage([], []),
        ]);
        Assert.Equal((1, 1, 1), (s.Images, s.TrueObjects, s.Predictions));
        ExpectBoth(s, 1, 1, 1);
        Assert.Throws<ArgumentException>(() => MaskDetectionEvaluation.Evaluate(
            [new MaskDetectionImage([Rect(2, 5, 2, 5)], [new ScoredMask(new BinaryMask(8, 10), 0.9)])]));
    }
}
