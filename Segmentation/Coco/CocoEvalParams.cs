namespace CrateIL.Segmentation.Coco;

/// <summary>What is compared: masks (<c>segm</c>) or boxes (<c>bbox</c>).</summary>
public enum CocoIouType { Segm, Bbox }

/// <summary>An object-area range with inclusive bounds, as pycocotools' <c>areaRng</c>.</summary>
public sealed record CocoAreaRange(string Label, double Min, double Max);

/// <summary>COCOeval parameters; the defaults are pycocotools' <c>Params.setDetParams</c>.</summary>
public sealed class CocoEvalParams
{
    /// <summary>IoU thresholds: numpy <c>linspace(.5, .95, 10)</c>, bit for bit.</summary>
    public double[] IouThresholds { get; init; } = Linspace(0.5, 0.95, 10);

    /// <summary>Recall points: numpy <c>linspace(0, 1, 101)</c>, bit for bit.</summary>
    public double[] RecallThresholds { get; init; } = Linspace(0.0, 1.0, 101);

    public int[] MaxDets { get; init; } = [1, 10, 100];

    public CocoAreaRange[] AreaRanges { get; init; } =
    [
        new("all", 0, 1e10),
        new("small", 0, 32 * 32),
        new("medium", 32 * 32, 96 * 96),
        new("large", 96 * 96, 1e10),
    ];

    /// <summary>Evaluate per category (true, the default) or pool all categories (proposal-style).</summary>
    public bool UseCategories { get; init; } = true;

    /// <summary>Images to evaluate; null = every ground-truth image.</summary>
    public long[]? ImageIds { get; init; }

    /// <summary>Categories to evaluate; null = every ground-truth category.</summary>
    public long[]? CategoryIds { get; init; }

    /// <summary>numpy <c>linspace(start, stop, num)</c>: <c>i·((stop − start)/(num − 1)) + start</c>, last element = stop.</summary>
    public static double[] Linspace(double start, double stop, int num)
    {
        if (num < 1) throw new ArgumentOutOfRangeException(nameof(num));
        var y = new double[num];
        if (num == 1) { y[0] = start; return y; }
        double step = (stop - start) / (num - 1);
        for (int i = 0; i < num; i++) y[i] = i * step + start;
        y[^1] = stop;
        return y;
    }
}

/// <summary>The 12 numbers of pycocotools' <c>summarize()</c> for bbox/segm (−1 where nothing could be measured).</summary>
public sealed record CocoStats(
    double AP, double AP50, double AP75, double APs, double APm, double APl,
    double AR1, double AR10, double AR100, double ARs, double ARm, double ARl)
{
    public static readonly string[] Names = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"];

    public double[] ToArray() => [AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl];

    public static CocoStats FromArray(ReadOnlySpan<double> s) => new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9], s[10], s[11]);
}
