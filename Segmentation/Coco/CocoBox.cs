namespace CrateIL.Segmentation.Coco;

/// <summary>A COCO box [x, y, width, height] in pixels; the right edge is x + width (no +1, as pycocotools).</summary>
public readonly record struct CocoBox(double X, double Y, double Width, double Height)
{
    public double Area => Width * Height;

    public double[] ToArray() => [X, Y, Width, Height];

    /// <summary>
    /// IoU of a detection box with a ground-truth box as maskApi.c <c>bbIou</c>: intersection over union, or over the
    /// detection's area when the ground truth is a crowd region. Boxes that do not overlap give 0.
    /// </summary>
    public static double Iou(CocoBox dt, CocoBox gt, bool gtIsCrowd)
    {
        double w = Math.Min(dt.Width + dt.X, gt.Width + gt.X) - Math.Max(dt.X, gt.X);
        if (w <= 0) return 0;
        double h = Math.Min(dt.Height + dt.Y, gt.Height + gt.Y) - Math.Max(dt.Y, gt.Y);
        if (h <= 0) return 0;
        double inter = w * h;
        double da = dt.Width * dt.Height;
        double union = gtIsCrowd ? da : da + gt.Width * gt.Height - inter;
        return inter / union;
    }

    /// <summary>IoU matrix [detection, ground truth] of <see cref="Iou(CocoBox, CocoBox, bool)"/>.</summary>
    public static double[,] Iou(IReadOnlyList<CocoBox> dt, IReadOnlyList<CocoBox> gt, IReadOnlyList<bool> gtIsCrowd)
    {
        if (gtIsCrowd.Count != gt.Count)
            throw new ArgumentException($"{gtIsCrowd.Count} crowd flags for {gt.Count} ground-truth boxes", nameof(gtIsCrowd));
        var o = new double[dt.Count, gt.Count];
        for (int g = 0; g < gt.Count; g++)
            for (int d = 0; d < dt.Count; d++)
                o[d, g] = Iou(dt[d], gt[g], gtIsCrowd[g]);
        return o;
    }
}
