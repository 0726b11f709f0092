using CrateIL.Imaging;
using CrateIL.Segmentation.Metrics;
using CrateIL.Testing;
using Xunit;

namespace CrateIL.Segmentation.Tests;

public class MetricsTests
{
    // 4×4 label map: class 0 (background) left half, class 7 top-right quadrant, ignore (255) bottom-right.
    private static readonly byte[] Labels =
    {
        0, 0, 7, 7,
        0, 0, 7, 7,
        0, 0, 255, 255,
        0, 0, 255, 255,
    };

    private static BinaryMask M(params int[] on)
    {
        var m = new BinaryMask(4, 4);
        foreach (int i in on) m.Pixels[i] = 1;
        return m;
    }

    [Fact]
    public void Eq13_best_head_per_class_and_Eq14_mean_over_classes()
    {
        var head0 = M(2, 3, 6, 7, 10, 11);        // class 7 exactly + 2 ignored pixels (don't count)
        var head1 = M(0, 1, 4, 5, 8, 9, 2);       // 6 of 8 background pixels + 1 pixel of class 7
        // class 0 (8 px): head0 IoU 0; head1: inter 6, |A| = 7, union 8 + 7 − 6 = 9 ⇒ 6/9
        // class 7 (4 px): head0 1; head1 1/(4 + 7 − 1) = 0.1 ⇒ best 1
        double img = HeadwiseMiou.Image(new[] { head0, head1 }, Labels);
        Check.Close(img, (6.0 / 9 + 1.0) / 2, new Tolerance(1e-12, 0), "Eq. 14");
        double fgOnly = HeadwiseMiou.Image(new[] { head0, head1 }, Labels, includeBackground: false);
        Check.Close(fgOnly, 1.0, new Tolerance(1e-12, 0), "Eq. 14 without background");
        Assert.True(double.IsNaN(HeadwiseMiou.Image(new[] { head0 }, Enumerable.Repeat((byte)255, 16).ToArray())));
    }

    [Fact]
    public void Layerwise_curve_averages_images_per_layer()
    {
        var curve = new LayerwiseMiou(3);
        curve.Add(0, 0.2); curve.Add(0, 0.4); curve.Add(2, 1.0); curve.Add(2, double.NaN);
        var c = curve.Curve();
        Check.Close(c[0], 0.3, new Tolerance(1e-12, 0), "layer 0");
        Assert.True(double.IsNaN(c[1]));
        Check.Close(c[2], 1.0, new Tolerance(1e-12, 0), "layer 2 (NaN image skipped)");
        Assert.Equal(1, curve.Count(2));
    }

    [Fact]
    public void Confusion_matrix_miou_ignores_label_255()
    {
        var cm = new ConfusionMatrix(3);
        byte[] gt = { 0, 0, 1, 1, 2, 255, 255 };
        byte[] pr = { 0, 1, 1, 1, 0, 2, 0 };
        cm.Add(pr, gt);
        Assert.Equal(5, cm.Total);
        // class 0: tp 1, fp 1 (gt 2→0), fn 1 (0→1) ⇒ 1/3; class 1: tp 2, fp 1 ⇒ 2/3; class 2: tp 0, fn 1 ⇒ 0
        Check.Close(cm.Iou(0), 1 / 3.0, new Tolerance(1e-12, 0), "IoU 0");
        Check.Close(cm.Iou(1), 2 / 3.0, new Tolerance(1e-12, 0), "IoU 1");
        Check.Close(cm.Iou(2), 0, new Tolerance(1e-12, 0), "IoU 2");
        Check.Close(cm.MeanIou(), 1 / 3.0, new Tolerance(1e-12, 0), "mIoU");
        Check.Close(cm.PixelAccuracy(), 3 / 5.0, new Tolerance(1e-12, 0), "pixel accuracy");
        var cm4 = new ConfusionMatrix(4);
        cm4.Add(new byte[] { 0, 1 }, new byte[] { 0, 1 });
        Check.Close(cm4.MeanIou(), 1.0, new Tolerance(1e-12, 0), "absent classes are skipped");
        Assert.Throws<ArgumentException>(() => cm.Add(new byte[] { 0 }, new byte[] { 3 }));
    }

    [Fact]
    public void Foreground_jaccard_and_binary_confusion_matrix()
    {
        var pred = M(0, 1, 2, 3, 10);
        // gt foreground: 2, 3, 6, 7 (label 7); pixel 10 ignored ⇒ inter 2, union {0,1,2,3,6,7} = 6
        Check.Close(Jaccard.Foreground(pred, Labels), 2 / 6.0, new Tolerance(1e-12, 0), "Jaccard");
        var cm = new ConfusionMatrix(2);
        cm.AddForeground(pred, Labels);
        Check.Close(cm.Iou(1), 2 / 6.0, new Tolerance(1e-12, 0), "fg IoU");
        Check.Close(cm.Iou(0), 6 / 10.0, new Tolerance(1e-12, 0), "bg IoU");
    }
}
