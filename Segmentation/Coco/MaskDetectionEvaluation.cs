using CrateIL.Imaging;

namespace CrateIL.Segmentation.Coco;

/// <summary>A predicted object mask (e.g. one MaskCut mask) with its confidence; higher scores are ranked first.</summary>
public sealed record ScoredMask(BinaryMask Mask, double Score);

/// <summary>One image: its true object masks and the predicted masks, all of the image's size, one category.</summary>
public sealed record MaskDetectionImage(IReadOnlyList<BinaryMask> TrueObjects, IReadOnlyList<ScoredMask> Predictions);

/// <summary>
/// COCO AP of predicted masks, for masks (<c>segm</c>) and for their tight boxes (<c>bbox</c>); the full pycocotools
/// summaries are in <see cref="Segm"/> and <see cref="Box"/>. <see cref="TrueObjects"/> and <see cref="Predictions"/>
/// count what was evaluated (empty masks are left out).
/// </summary>
public sealed record MaskDetectionScores(CocoStats Segm, CocoStats Box, int Images, int TrueObjects, int Predictions)
{
    public double SegmAP => Segm.AP;
    public double SegmAP50 => Segm.AP50;
    public double SegmAP75 => Segm.AP75;
    public double BoxAP => Box.AP;
    public double BoxAP50 => Box.AP50;
    public double BoxAP75 => Box.AP75;
}

/// <summary>
/// Class-agnostic instance evaluation of predicted masks against true masks (the CutLER/CRATE MaskCut setting: one
/// category "fg"), by building the COCO ground truth and results in memory and running <see cref="CocoEvaluator"/>
/// — the same evaluator as for files, so the numbers are pycocotools'.
/// Conventions: images get ids 1..n in the given order, true objects and predictions ids 1.. in image order then list
/// order (ties in score keep that order, as pycocotools' stable sort does); an empty true mask or an empty prediction is
/// left out, as MaskCut drops annotations of area &lt; 1, and so is an image with neither. With no true object at all, AP is −1 (pycocotools: nothing to
/// measure).
/// </summary>
public static class MaskDetectionEvaluation
{
    public const long ObjectCategoryId = 1;

    public static MaskDetectionScores Evaluate(IReadOnlyList<MaskDetectionImage> images, CocoEvalParams? parameters = null)
    {
        ArgumentNullException.ThrowIfNull(images);
        var truth = new CocoDataset { Source = "true masks" };
        truth.Categories.Add(new CocoCategory(ObjectCategoryId, "fg", "fg"));
        var predictions = new List<CocoAnnotation>();
        long annotationId = 1;
        for (int i = 0; i < images.Count; i++)
        {
            var image = images[i] ?? throw new ArgumentException($"image {i} is null", nameof(images));
            long imageId = i + 1;
            if (ImageSize(image, i) is not (int height, int width)) continue;
            truth.Images.Add(new CocoImage(imageId, width, height, null));
            foreach (var mask in image.TrueObjects)
            {
                var rle = Rle.Encode(mask);
                if (rle.Area == 0) continue;
                truth.Annotations.Add(new CocoAnnotation
                {
                    Id = annotationId++, ImageId = imageId, CategoryId = ObjectCategoryId,
                    Segmentation = new CocoRleSegmentation(rle), Area = rle.Area, Box = rle.ToBox(), IsCrowd = false,
                });
            }
            foreach (var prediction in image.Predictions)
            {
                if (!double.IsFinite(prediction.Score))
                    throw new ArgumentException($"image {i}: a prediction's score is {prediction.Score}", nameof(images));
                var rle = Rle.Encode(prediction.Mask);
                if (rle.Area == 0) continue;
                // segmentation without a box: CocoResults takes the mask's area and tight box, as COCO.loadRes does,
                // so the same results serve the segm and the bbox evaluation
                predictions.Add(new CocoAnnotation
                {
                    ImageId = imageId, CategoryId = ObjectCategoryId, Score = prediction.Score,
                    Segmentation = new CocoRleSegmentation(rle),
                });
            }
        }
        var results = CocoResults.FromDetections(predictions, truth, "predicted masks");
        var segm = CocoEvaluator.Evaluate(truth, results, CocoIouType.Segm, parameters).Stats;
        var box = CocoEvaluator.Evaluate(truth, results, CocoIouType.Bbox, parameters).Stats;
        return new MaskDetectionScores(segm, box, truth.Images.Count, truth.Annotations.Count, predictions.Count);
    }

    /// <summary>The size all of an image's masks share; null for an image without masks, which cannot change any AP.</summary>
    private static (int Height, int Width)? ImageSize(MaskDetectionImage image, int index)
    {
        ArgumentNullException.ThrowIfNull(image.TrueObjects);
        ArgumentNullException.ThrowIfNull(image.Predictions);
        var masks = image.TrueObjects.Concat(image.Predictions.Select(p => p.Mask)).ToList();
        if (masks.Count == 0) return null;
        int h = masks[0].Height, w = masks[0].Width;
        foreach (var m in masks)
            if (m.Height != h || m.Width != w)
                throw new ArgumentException($"image {index} mixes mask sizes {h}×{w} and {m.Height}×{m.Width}");
        return (h, w);
    }
}
