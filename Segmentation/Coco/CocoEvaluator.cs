using System.Globalization;
using System.Text;

namespace CrateIL.Segmentation.Coco;

/// <summary>Per image and category matching (pycocotools <c>evaluateImg</c> output).</summary>
public sealed class CocoImageEvaluation
{
    public required long ImageId { get; init; }
    public required long CategoryId { get; init; }
    public required CocoAreaRange AreaRange { get; init; }
    public required long[] DtIds { get; init; }
    public required long[] GtIds { get; init; }
    /// <summary>[T, D] id of the matched ground truth, 0 = none (so a ground truth with id 0 looks unmatched, as in pycocotools).</summary>
    public required long[,] DtMatches { get; init; }
    /// <summary>[T, G] id of the matched detection, 0 = none.</summary>
    public required long[,] GtMatches { get; init; }
    public required double[] DtScores { get; init; }
    public required bool[] GtIgnore { get; init; }
    public required bool[,] DtIgnore { get; init; }
}

/// <summary>Everything <see cref="CocoEvaluator.Evaluate"/> computed.</summary>
public sealed class CocoEvalResult
{
    public required CocoEvalParams Params { get; init; }
    public required CocoIouType IouType { get; init; }
    public required long[] ImageIds { get; init; }
    public required long[] CategoryIds { get; init; }
    /// <summary>[T, R, K, A, M]; −1 where the category has no (non-ignored) ground truth.</summary>
    public required double[,,,,] Precision { get; init; }
    /// <summary>[T, K, A, M]; −1 where the category has no (non-ignored) ground truth.</summary>
    public required double[,,,] Recall { get; init; }
    /// <summary>[K][A][I] per-image matchings; null where an image has neither ground truth nor detections.</summary>
    public required CocoImageEvaluation?[][][] ImageEvaluations { get; init; }
    public required CocoStats Stats { get; init; }
    /// <summary>The 12 lines pycocotools' <c>summarize()</c> prints.</summary>
    public required string Summary { get; init; }
}

/// <summary>
/// COCO detection / instance-segmentation evaluation, a port of pycocotools <c>COCOeval</c> (evaluate, accumulate,
/// summarize) for bbox and segm: stable (merge) sorts by score, detections cut to maxDets per image, crowd and
/// area-range ignores, the greedy matching with its break rule and 1 − 1e−10 cap, the 101-point precision envelope,
/// and means over entries &gt; −1 summed the way numpy does.
/// </summary>
public static class CocoEvaluator
{
    /// <summary>numpy <c>spacing(1)</c>, the guard in pycocotools' precision.</summary>
    private const double NumpySpacingOfOne = 2.220446049250313e-16;

    private sealed class Obj
    {
        public long Id;
        public double Area;
        public bool IsCrowd;
        public double Score;
        public Rle? Mask;
        public CocoBox Box;
    }

    public static CocoEvalResult Evaluate(CocoDataset groundTruth, CocoResults results, CocoIouType iouType, CocoEvalParams? parameters = null)
    {
        var p = parameters ?? new CocoEvalParams();
        long[] imgIds = (p.ImageIds ?? groundTruth.Images.Select(i => i.Id).ToArray()).Distinct().Order().ToArray();
        long[] catIds = (p.CategoryIds ?? groundTruth.Categories.Select(c => c.Id).ToArray()).Distinct().Order().ToArray();
        int[] maxDets = p.MaxDets.Order().ToArray();
        if (maxDets.Length == 0) throw new ArgumentException("MaxDets is empty", nameof(parameters));
        double[] iouThrs = p.IouThresholds, recThrs = p.RecallThresholds;
        var areaRngs = p.AreaRanges;

        // _prepare: ground truth and detections grouped by (image, category), file order within a group.
        var imgSet = imgIds.ToHashSet();
        var catSet = catIds.ToHashSet();
        var gts = Group(groundTruth.Annotations, groundTruth, imgSet, p.UseCategories ? catSet : null, iouType, isGt: true, groundTruth.Source);
        var dts = Group(results.Detections, groundTruth, imgSet, p.UseCategories ? catSet : null, iouType, isGt: false, results.Source);

        long[] evalCats = p.UseCategories ? catIds : [-1];
        int maxDet = maxDets[^1];
        var ious = new Dictionary<(long, long), double[,]?>();
        foreach (long img in imgIds)
            foreach (long cat in evalCats)
                ious[(img, cat)] = ComputeIou(Get(gts, img, cat, catIds), SortedDts(Get(dts, img, cat, catIds), maxDet), iouType);

        int T = iouThrs.Length, R = recThrs.Length, K = evalCats.Length, A = areaRngs.Length, M = maxDets.Length, I = imgIds.Length;
        var evalImgs = new CocoImageEvaluation?[K][][];
        for (int k = 0; k < K; k++)
        {
            evalImgs[k] = new CocoImageEvaluation?[A][];
            for (int a = 0; a < A; a++)
            {
                evalImgs[k][a] = new CocoImageEvaluation?[I];
                for (int i = 0; i < I; i++)
                    evalImgs[k][a][i] = EvaluateImage(imgIds[i], evalCats[k], areaRngs[a], maxDet, iouThrs,
                        Get(gts, imgIds[i], evalCats[k], catIds), Get(dts, imgIds[i], evalCats[k], catIds), ious[(imgIds[i], evalCats[k])]);
            }
        }

        // accumulate
        var precision = new double[T, R, K, A, M];
        var recall = new double[T, K, A, M];
        Fill(precision, -1);
        Fill(recall, -1);
        for (int k = 0; k < K; k++)
            for (int a = 0; a < A; a++)
                for (int m = 0; m < M; m++)
                {
                    int md = maxDets[m];
                    var E = evalImgs[k][a].Where(e => e is not null).Select(e => e!).ToList();
                    if (E.Count == 0) continue;
                    var scores = new List<double>();
                    var owner = new List<(CocoImageEvaluation e, int d)>();
                    foreach (var e in E)
                        for (int d = 0; d < Math.Min(md, e.DtScores.Length); d++) { scores.Add(e.DtScores[d]); owner.Add((e, d)); }
                    int npig = 0;
                    foreach (var e in E) foreach (bool ig in e.GtIgnore) if (!ig) npig++;
                    if (npig == 0) continue;
                    int[] inds = StableOrderByDescending(scores);
                    int nd = inds.Length;
                    var rc = new double[nd];
                    var pr = new double[nd];
                    for (int t = 0; t < T; t++)
                    {
                        double tp = 0, fp = 0;
                        for (int j = 0; j < nd; j++)
                        {
                            var (e, d) = owner[inds[j]];
                            bool matched = e.DtMatches[t, d] != 0, ignored = e.DtIgnore[t, d];
                            if (matched && !ignored) tp++;
                            if (!matched && !ignored) fp++;
                            rc[j] = tp / npig;
                            pr[j] = tp / (fp + tp + NumpySpacingOfOne);
                        }
                        recall[t, k, a, m] = nd > 0 ? rc[nd - 1] : 0;
                        for (int j = nd - 1; j > 0; j--)
                            if (pr[j] > pr[j - 1]) pr[j - 1] = pr[j];
                        // q[r] = pr[searchsorted(rc, recThrs[r], side='left')] while that index is in range, else 0
                        int pi = 0;
                        for (int r = 0; r < R; r++)
                        {
                            while (pi < nd && rc[pi] < recThrs[r]) pi++;
                            precision[t, r, k, a, m] = pi < nd ? pr[pi] : 0;
                        }
                    }
                }

        var stats = Summarize(precision, recall, iouThrs, areaRngs, maxDets, out string summary);
        return new CocoEvalResult
        {
            Params = p, IouType = iouType, ImageIds = imgIds, CategoryIds = evalCats,
            Precision = precision, Recall = recall, ImageEvaluations = evalImgs, Stats = stats, Summary = summary,
        };
    }

    private static Dictionary<(long, long), List<Obj>> Group(IReadOnlyList<CocoAnnotation> anns, CocoDataset gtSet,
        HashSet<long> imgSet, HashSet<long>? catSet, CocoIouType iouType, bool isGt, string source)
    {
        var groups = new Dictionary<(long, long), List<Obj>>();
        // getAnnIds walks images in the sorted imgIds order and each image's annotations in file order; grouping by
        // (image, category) keeps file order inside a group either way.
        foreach (var a in anns)
        {
            if (!imgSet.Contains(a.ImageId)) continue;
            if (catSet is not null && !catSet.Contains(a.CategoryId)) continue;
            string what = isGt ? $"annotation id {a.Id}" : $"result {a.Id}";
            var o = new Obj
            {
                Id = a.Id,
                Area = a.Area ?? throw new CocoFormatException(source, $"{what} has no \"area\" (pycocotools needs it for the area ranges)"),
                IsCrowd = a.IsCrowd,
                Score = isGt ? 0 : a.Score ?? throw new CocoFormatException(source, $"{what} has no score"),
            };
            if (iouType == CocoIouType.Bbox)
                o.Box = a.Box ?? throw new CocoFormatException(source, $"{what} has no \"bbox\" (needed for bbox evaluation)");
            else
            {
                var seg = a.Segmentation ?? throw new CocoFormatException(source, $"{what} has no \"segmentation\" (needed for segm evaluation)");
                var img = gtSet.GetImage(a.ImageId);
                try
                {
                    o.Mask = seg.ToRle(img.Height, img.Width);
                }
                catch (ArgumentException ex)
                {
                    throw CocoFormatException.From(source, what, ex);
                }
            }
            var key = (a.ImageId, a.CategoryId);
            if (!groups.TryGetValue(key, out var list)) groups[key] = list = [];
            list.Add(o);
        }
        return groups;
    }

    private static List<Obj> Get(Dictionary<(long, long), List<Obj>> groups, long img, long cat, long[] catIds)
    {
        if (cat != -1) return groups.TryGetValue((img, cat), out var l) ? l : [];
        // useCats = 0: the image's objects of every evaluated category, categories in sorted order.
        var all = new List<Obj>();
        foreach (long c in catIds) if (groups.TryGetValue((img, c), out var part)) all.AddRange(part);
        return all;
    }

    private static List<Obj> SortedDts(List<Obj> dt, int maxDet)
    {
        int[] order = StableOrderByDescending(dt.Select(d => d.Score).ToList());
        return order.Take(maxDet).Select(i => dt[i]).ToList();
    }

    private static double[,]? ComputeIou(List<Obj> gt, List<Obj> dt, CocoIouType iouType)
    {
        if (gt.Count == 0 || dt.Count == 0) return null;
        var crowd = gt.Select(g => g.IsCrowd).ToArray();
        return iouType == CocoIouType.Bbox
            ? CocoBox.Iou(dt.Select(d => d.Box).ToArray(), gt.Select(g => g.Box).ToArray(), crowd)
            : Rle.Iou(dt.Select(d => d.Mask!).ToArray(), gt.Select(g => g.Mask!).ToArray(), crowd);
    }

    private static CocoImageEvaluation? EvaluateImage(long imgId, long catId, CocoAreaRange aRng, int maxDet, double[] iouThrs,
        List<Obj> gtIn, List<Obj> dtIn, double[,]? iousIn)
    {
        if (gtIn.Count == 0 && dtIn.Count == 0) return null;
        var gtIgnoreIn = gtIn.Select(g => g.IsCrowd || g.Area < aRng.Min || g.Area > aRng.Max).ToArray();
        // gt: non-ignored first (stable); dt: highest score first (stable), at most maxDet.
        int[] gtind = Enumerable.Range(0, gtIn.Count).OrderBy(i => gtIgnoreIn[i] ? 1 : 0).ToArray();
        var gt = gtind.Select(i => gtIn[i]).ToArray();
        var dt = StableOrderByDescending(dtIn.Select(d => d.Score).ToList()).Take(maxDet).Select(i => dtIn[i]).ToArray();
        int T = iouThrs.Length, G = gt.Length, D = dt.Length;
        var gtm = new long[T, G];
        var dtm = new long[T, D];
        var gtIg = gtind.Select(i => gtIgnoreIn[i]).ToArray();
        var dtIg = new bool[T, D];
        if (iousIn is not null)
        {
            for (int t = 0; t < T; t++)
                for (int d = 0; d < D; d++)
                {
                    double iou = Math.Min(iouThrs[t], 1 - 1e-10);
                    int m = -1;
                    for (int g = 0; g < G; g++)
                    {
                        if (gtm[t, g] > 0 && !gt[g].IsCrowd) continue;
                        if (m > -1 && !gtIg[m] && gtIg[g]) break;
                        double v = iousIn[d, gtind[g]];
                        if (v < iou) continue;
                        iou = v;
                        m = g;
                    }
                    if (m == -1) continue;
                    dtIg[t, d] = gtIg[m];
                    dtm[t, d] = gt[m].Id;
                    gtm[t, m] = dt[d].Id;
                }
        }
        for (int d = 0; d < D; d++)
        {
            bool outside = dt[d].Area < aRng.Min || dt[d].Area > aRng.Max;
            if (!outside) continue;
            for (int t = 0; t < T; t++) if (dtm[t, d] == 0) dtIg[t, d] = true;
        }
        return new CocoImageEvaluation
        {
            ImageId = imgId, CategoryId = catId, AreaRange = aRng,
            DtIds = dt.Select(d => d.Id).ToArray(), GtIds = gt.Select(g => g.Id).ToArray(),
            DtMatches = dtm, GtMatches = gtm, DtScores = dt.Select(d => d.Score).ToArray(),
            GtIgnore = gtIg, DtIgnore = dtIg,
        };
    }

    /// <summary>Indices sorting by −score ascending with a stable sort (numpy <c>argsort(-s, kind='mergesort')</c>).</summary>
    internal static int[] StableOrderByDescending(IReadOnlyList<double> scores) =>
        Enumerable.Range(0, scores.Count).OrderBy(i => -scores[i]).ToArray();

    private static void Fill(Array a, double v)
    {
        if (a.Length == 0) return; // no categories (or no images): nothing to fill, and [0, 0, ...] does not exist
        if (a is double[,,,,] p5) { foreach (ref double x in System.Runtime.InteropServices.MemoryMarshal.CreateSpan(ref p5[0, 0, 0, 0, 0], p5.Length)) x = v; return; }
        if (a is double[,,,] p4) { foreach (ref double x in System.Runtime.InteropServices.MemoryMarshal.CreateSpan(ref p4[0, 0, 0, 0], p4.Length)) x = v; }
    }

    private static CocoStats Summarize(double[,,,,] precision, double[,,,] recall, double[] iouThrs, CocoAreaRange[] areaRngs,
        int[] maxDets, out string summary)
    {
        var sb = new StringBuilder();
        int md(int i) => i < maxDets.Length ? maxDets[i] : -1;
        double S(bool ap, double? iouThr = null, string areaRng = "all", int maxDet = 100)
        {
            var aind = Enumerable.Range(0, areaRngs.Length).Where(i => areaRngs[i].Label == areaRng).ToArray();
            var mind = Enumerable.Range(0, maxDets.Length).Where(i => maxDets[i] == maxDet).ToArray();
            var tind = iouThr is { } thr ? Enumerable.Range(0, iouThrs.Length).Where(i => iouThrs[i] == thr).ToArray()
                : Enumerable.Range(0, iouThrs.Length).ToArray();
            var values = new List<double>();
            // numpy pairs aind and mind elementwise (both have at most one entry with the default parameters)
            int pairs = Math.Min(aind.Length, mind.Length);
            if (ap)
            {
                foreach (int t in tind)
                    for (int r = 0; r < precision.GetLength(1); r++)
                        for (int k = 0; k < precision.GetLength(2); k++)
                            for (int q = 0; q < pairs; q++)
                            {
                                double v = precision[t, r, k, aind[q], mind[q]];
                                if (v > -1) values.Add(v);
                            }
            }
            else
            {
                foreach (int t in tind)
                    for (int k = 0; k < recall.GetLength(1); k++)
                        for (int q = 0; q < pairs; q++)
                        {
                            double v = recall[t, k, aind[q], mind[q]];
                            if (v > -1) values.Add(v);
                        }
            }
            double mean = values.Count == 0 ? -1 : NumpySum(values.ToArray()) / values.Count;
            string iouStr = iouThr is { } x
                ? x.ToString("0.00", CultureInfo.InvariantCulture)
                : $"{iouThrs[0].ToString("0.00", CultureInfo.InvariantCulture)}:{iouThrs[^1].ToString("0.00", CultureInfo.InvariantCulture)}";
            sb.Append(CultureInfo.InvariantCulture,
                $" {(ap ? "Average Precision" : "Average Recall"),-18} {(ap ? "(AP)" : "(AR)")} @[ IoU={iouStr,-9} | area={areaRng,6} | maxDets={maxDet,3} ] = {mean.ToString("0.000", CultureInfo.InvariantCulture)}\n");
            return mean;
        }
        var stats = new CocoStats(
            S(true), S(true, .5, maxDet: md(2)), S(true, .75, maxDet: md(2)),
            S(true, null, "small", md(2)), S(true, null, "medium", md(2)), S(true, null, "large", md(2)),
            S(false, maxDet: md(0)), S(false, maxDet: md(1)), S(false, maxDet: md(2)),
            S(false, null, "small", md(2)), S(false, null, "medium", md(2)), S(false, null, "large", md(2)));
        summary = sb.ToString();
        return stats;
    }

    /// <summary>
    /// Sum in numpy's order so that means match bit for bit: the reduction runs over buffers of 8192 elements, each summed
    /// pairwise (8 accumulators in blocks of up to 128). Checked against numpy 1.24 on random arrays of 1 to 100 000 values.
    /// </summary>
    internal static double NumpySum(ReadOnlySpan<double> a)
    {
        double total = 0;
        for (int s = 0; s < a.Length; s += 8192) total += PairwiseSum(a.Slice(s, Math.Min(8192, a.Length - s)));
        return total;
    }

    private static double PairwiseSum(ReadOnlySpan<double> a)
    {
        int n = a.Length;
        if (n < 8)
        {
            double res = 0;
            for (int i = 0; i < n; i++) res += a[i];
            return res;
        }
        if (n <= 128)
        {
            double r0 = a[0], r1 = a[1], r2 = a[2], r3 = a[3], r4 = a[4], r5 = a[5], r6 = a[6], r7 = a[7];
            int i;
            for (i = 8; i < n - n % 8; i += 8)
            {
                r0 += a[i]; r1 += a[i + 1]; r2 += a[i + 2]; r3 += a[i + 3];
                r4 += a[i + 4]; r5 += a[i + 5]; r6 += a[i + 6]; r7 += a[i + 7];
            }
            double res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7));
            for (; i < n; i++) res += a[i];
            return res;
        }
        int n2 = n / 2;
        n2 -= n2 % 8;
        return PairwiseSum(a[..n2]) + PairwiseSum(a[n2..]);
    }
}
