namespace CrateIL.Cli.Emerge;

/// <summary>One layer's attention-segmentation scores (means over the held-out images).</summary>
internal sealed record LayerScores(int Layer, double MiouMass, double MiouTop, double ObjectIouMass, double ObjectIouTop, double Auc, int Images);

/// <summary>MaskCut against the true masks, class-agnostic COCO AP.</summary>
internal sealed record MaskCutScores(double BoxAp, double BoxAp50, double MaskAp, double MaskAp50);

internal sealed record ModelScores(double Top1, double UntrainedTop1, LayerScores[] Layers, LayerScores[] Untrained, LayerScores AllForeground,
    LayerScores CentrePrior, int BestLayer, MaskCutScores MaskCut, MaskCutScores UntrainedMaskCut);

internal static class EmergeScoring
{
    /// <summary>Every demo image holds exactly one object, so MaskCut looks for one (CutLER's N = 3 is for natural images).</summary>
    public const int MaskCutObjects = 1;

    public static ModelScores Score(EvaluatedModel trained, EvaluatedModel untrained)
    {
        var nan = new LayerScores(-1, double.NaN, double.NaN, double.NaN, double.NaN, double.NaN, 0);
        var layers = Enumerable.Range(0, trained.Maps.Length).Select(l => nan with { Layer = l }).ToArray();
        var cut = new MaskCutScores(double.NaN, double.NaN, double.NaN, double.NaN);
        return new ModelScores(trained.Top1, untrained.Top1, layers, layers, nan, nan, layers.Length - 1, cut, cut);
    }
}
