using CrateIL.Imaging;

namespace CrateIL.Segmentation.Metrics;

/// <summary>
/// Threshold-free separation score: the ROC AUC of a score map against a binary truth, computed as the Mann–Whitney
/// statistic P(score of a random positive &gt; score of a random negative) + ½·P(equal). Ties count ½ so a constant map
/// scores exactly 0.5, a map that ranks every positive above every negative 1 and the reverse 0.
/// </summary>
public static class RocAuc
{
    /// <summary>
    /// AUC of <paramref name="scores"/> against <paramref name="positive"/> (same length); NaN when there is no
    /// positive or no negative (nothing to rank). Non-finite scores are rejected.
    /// </summary>
    public static double Compute(ReadOnlySpan<float> scores, BinaryMask positive)
    {
        ArgumentNullException.ThrowIfNull(positive);
        var truth = positive.Pixels;
        if (scores.Length != truth.Length)
            throw new ArgumentException($"{scores.Length} scores for a {positive.Height}×{positive.Width} truth mask", nameof(positive));
        int n = scores.Length;
        long positives = 0;
        for (int i = 0; i < n; i++)
        {
            if (!float.IsFinite(scores[i])) throw new ArgumentException($"score {i} is {scores[i]}", nameof(scores));
            positives += truth[i];
        }
        long negatives = n - positives;
        if (positives == 0 || negatives == 0) return double.NaN;

        var keys = scores.ToArray();
        var order = new int[n];
        for (int i = 0; i < n; i++) order[i] = i;
        Array.Sort(keys, order);
        // rank-sum form: every member of a tie group gets the group's mid-rank, which counts each tied
        // positive–negative pair ½; ranks are 1-based and the sums stay exact in float64 far beyond any grid size
        double positiveRankSum = 0;
        for (int start = 0; start < n;)
        {
            int end = start;
            while (end + 1 < n && keys[end + 1] == keys[start]) end++;
            double midRank = (start + end) / 2.0 + 1;
            for (int j = start; j <= end; j++)
                if (truth[order[j]] != 0) positiveRankSum += midRank;
            start = end + 1;
        }
        double u = positiveRankSum - positives * (positives + 1) / 2.0;
        return u / ((double)positives * negatives);
    }
}
