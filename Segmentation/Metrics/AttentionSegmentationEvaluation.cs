using CrateIL.Segmentation.Attention;

namespace CrateIL.Segmentation.Metrics;

/// <summary>
/// Mean <see cref="AttentionSegmentationScore"/> over the images of one series (a layer of a model, or a baseline),
/// plain numbers for a report. <see cref="Images"/> counts the images averaged, <see cref="Skipped"/> those whose
/// truth was degenerate (no object patch or all object patches). Means are NaN when no image was averaged.
/// </summary>
public sealed record AttentionScoreMean(
    int Images,
    int Skipped,
    double MiouMass,
    double MiouTopFraction,
    double ObjectIouMass,
    double ObjectIouTopFraction,
    double BestHeadAuc,
    double MeanMapAuc);

/// <summary>Running sums of per-image scores for one series; undefined (degenerate) images are counted, not averaged.</summary>
public sealed class AttentionScoreAccumulator
{
    private readonly double[] _sums = new double[6];
    private int _images, _skipped;

    public void Add(AttentionSegmentationScore score)
    {
        ArgumentNullException.ThrowIfNull(score);
        if (score.IsUndefined) { _skipped++; return; }
        double[] values = [score.MiouMass, score.MiouTopFraction, score.ObjectIouMass, score.ObjectIouTopFraction, score.BestHeadAuc, score.MeanMapAuc];
        for (int i = 0; i < values.Length; i++) _sums[i] += values[i];
        _images++;
    }

    public int Images => _images;
    public int Skipped => _skipped;

    public AttentionScoreMean Mean()
    {
        double M(int i) => _images == 0 ? double.NaN : _sums[i] / _images;
        return new AttentionScoreMean(_images, _skipped, M(0), M(1), M(2), M(3), M(4), M(5));
    }
}

/// <summary>
/// One report line: a layer's mean scores for the model, for the untrained (step-0) model when its maps were given,
/// and for the all-foreground, centre-prior and (when asked for) random-heads baselines over exactly the same images.
/// </summary>
public sealed record AttentionSegmentationRow(
    int Layer,
    AttentionScoreMean Model,
    AttentionScoreMean? Untrained,
    AttentionScoreMean AllForeground,
    AttentionScoreMean CentrePrior,
    AttentionScoreMean? RandomHeads);

/// <summary>
/// Per-layer attention-segmentation scores with their baselines, accumulated image by image. Every layer row
/// carries its own baseline means, taken over the images added to that layer, so a row is self-consistent even when
/// layers saw different images. The untrained model is just another set of maps the caller passes.
/// The records hold plain doubles; NaN (a layer without images) needs a JSON writer that allows named
/// floating-point literals.
/// </summary>
public sealed class AttentionSegmentationEvaluation
{
    private readonly AttentionScoreAccumulator[] _model, _untrained, _allForeground, _centrePrior, _randomHeads;
    private readonly AttentionScoreSettings _settings;
    private readonly double? _centreSigma;
    private readonly int _randomHeadCount;
    private readonly Random _random;

    /// <param name="layers">Number of layers (rows).</param>
    /// <param name="settings">Thresholds; the defaults are DINO's mass 0.6 and the paper's top 60 %.</param>
    /// <param name="centreSigma">Centre-prior width in patches; null = <see cref="Metrics.CentrePrior.DefaultSigma"/>.</param>
    /// <param name="randomHeads">Heads of the random-attention baseline (use the model's head count for a fair best-head
    /// comparison); 0 leaves it out.</param>
    /// <param name="randomSeed">Seed of the random baseline; its draws follow the order of the <see cref="Add"/> calls.</param>
    public AttentionSegmentationEvaluation(int layers, AttentionScoreSettings? settings = null, double? centreSigma = null,
        int randomHeads = 0, int randomSeed = 0)
    {
        if (layers < 1) throw new ArgumentOutOfRangeException(nameof(layers), layers, "need at least one layer");
        if (randomHeads < 0) throw new ArgumentOutOfRangeException(nameof(randomHeads), randomHeads, "head count cannot be negative");
        _model = New(layers); _untrained = New(layers); _allForeground = New(layers); _centrePrior = New(layers); _randomHeads = New(layers);
        _settings = settings ?? new AttentionScoreSettings();
        _centreSigma = centreSigma;
        _randomHeadCount = randomHeads;
        _random = new Random(randomSeed);
    }

    public int Layers => _model.Length;

    /// <summary>Scores one image at one layer (and its baselines for that layer's row); returns the model's score.</summary>
    public AttentionSegmentationScore Add(int layer, PatchTruth truth, AttentionMaps maps, AttentionMaps? untrainedMaps = null)
    {
        if ((uint)layer >= (uint)Layers) throw new ArgumentOutOfRangeException(nameof(layer), layer, $"layer must be in 0..{Layers - 1}");
        var score = AttentionSegmentationScore.Measure(maps, truth, _settings);
        _model[layer].Add(score);
        if (untrainedMaps is not null) _untrained[layer].Add(AttentionSegmentationScore.Measure(untrainedMaps, truth, _settings));
        _allForeground[layer].Add(AttentionSegmentationScore.AllForeground(truth));
        _centrePrior[layer].Add(AttentionSegmentationScore.CentrePrior(truth, _settings, _centreSigma));
        if (_randomHeadCount > 0) _randomHeads[layer].Add(AttentionSegmentationScore.RandomHeads(truth, _randomHeadCount, _random, _settings));
        return score;
    }

    /// <summary>Scores one image at every layer: <paramref name="layerMaps"/>[ℓ] (and <paramref name="untrainedLayerMaps"/>[ℓ]).</summary>
    public void AddImage(PatchTruth truth, IReadOnlyList<AttentionMaps> layerMaps, IReadOnlyList<AttentionMaps>? untrainedLayerMaps = null)
    {
        ArgumentNullException.ThrowIfNull(layerMaps);
        if (layerMaps.Count != Layers) throw new ArgumentException($"{layerMaps.Count} layers of maps for {Layers} layers", nameof(layerMaps));
        if (untrainedLayerMaps is not null && untrainedLayerMaps.Count != Layers)
            throw new ArgumentException($"{untrainedLayerMaps.Count} layers of untrained maps for {Layers} layers", nameof(untrainedLayerMaps));
        for (int l = 0; l < Layers; l++) Add(l, truth, layerMaps[l], untrainedLayerMaps?[l]);
    }

    /// <summary>
    /// One row per layer; <see cref="AttentionSegmentationRow.Untrained"/> is null for a layer given no untrained maps,
    /// <see cref="AttentionSegmentationRow.RandomHeads"/> when the random baseline is off.
    /// </summary>
    public AttentionSegmentationRow[] Rows()
    {
        var rows = new AttentionSegmentationRow[Layers];
        for (int l = 0; l < Layers; l++)
        {
            var untrained = _untrained[l];
            rows[l] = new AttentionSegmentationRow(l, _model[l].Mean(),
                untrained.Images + untrained.Skipped == 0 ? null : untrained.Mean(),
                _allForeground[l].Mean(), _centrePrior[l].Mean(),
                _randomHeadCount > 0 ? _randomHeads[l].Mean() : null);
        }
        return rows;
    }

    private static AttentionScoreAccumulator[] New(int n)
    {
        var a = new AttentionScoreAccumulator[n];
        for (int i = 0; i < n; i++) a[i] = new AttentionScoreAccumulator();
        return a;
    }
}
