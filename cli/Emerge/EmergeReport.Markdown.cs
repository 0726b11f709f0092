using System.Globalization;
using System.Text;

namespace CrateIL.Cli.Emerge;

internal static partial class EmergeReport
{
    /// <summary>Writes report.json, report.md and the pictures into <paramref name="folder"/>.</summary>
    public static void Write(string folder, EmergeReportData report, IReadOnlyList<ModelResult> results)
    {
        var pictures = EmergePictures.Write(folder, report, results);
        File.WriteAllText(Path.Combine(folder, "report.json"), ToJson(report));
        File.WriteAllText(Path.Combine(folder, "report.md"), Markdown(report, pictures));
    }

    public static string Markdown(EmergeReportData r, IReadOnlyList<(string Title, string File)> pictures)
    {
        var s = new StringBuilder();
        void Line(FormattableString text) => s.AppendLine(text.ToString(CultureInfo.InvariantCulture));
        Line($"# crate emerge — {r.Date}");
        s.AppendLine();
        Line($"`{r.Command}` on {r.Cpu}, device `{r.Device}`, {r.Seconds / 60:F1} min in all.");
        s.AppendLine();
        s.AppendLine("## What the numbers say");
        s.AppendLine();
        foreach (var f in r.Findings) s.AppendLine("- " + f);
        s.AppendLine();
        s.AppendLine("## Setup");
        s.AppendLine();
        Line($"- Data: `{r.Dataset}`, {r.ImageSize}×{r.ImageSize} RGB, {r.Classes} classes (chance {Pct(r.Chance)}); a fresh training image for every sample of every step, held-out images from a disjoint seed with exact foreground masks.");
        Line($"- Every model: patch {r.PatchSize} ({r.ImageSize / r.PatchSize}×{r.ImageSize / r.PatchSize} tokens + CLS), dim {r.Dim}, depth {r.Depth}, {r.Heads} heads × {r.DimHead}, CLS pooling. Only the blocks differ (CRATE: MSSA + ISTA; ViT: MHSA + MLP).");
        Line($"- Recipe (the same for every model): {r.Optimizer}, lr {r.LearningRate:G3}, weight decay {r.WeightDecay:G3}, {r.WarmupSteps} warm-up steps then cosine, batch {r.BatchSize}, {r.StepsPerModel} steps, label smoothing {r.LabelSmoothing:G2}.");
        Line($"- Evaluation: {r.EvalImages} held-out images. Attention = Eq. 10 (softmax over the patches of the CLS query against the patch keys, the layer's scale), per head. Thresholds: top-60 % of patches (the paper's App. B.3) and DINO's 60 % cumulative mass. Patch truth: a patch is object when ≥ 50 % of its pixels are.");
        s.AppendLine();
        s.AppendLine("## Training");
        s.AppendLine();
        s.AppendLine("| model | parameters | steps | train time | images/s | held-out top-1 | step 0 |");
        s.AppendLine("|---|---:|---:|---:|---:|---:|---:|");
        foreach (var m in r.Models)
            Line($"| {m.Label} | {m.Parameters:N0} | {m.Steps} | {m.TrainSeconds:F0} s | {m.ImagesPerSecond:F0} | {Pct(m.Top1)} | {Pct(m.UntrainedTop1)} |");
        s.AppendLine();
        s.AppendLine("## Attention as segmentation, per layer");
        s.AppendLine();
        s.AppendLine("Object IoU: best head's mask against the object's patches. mIoU: the paper's Eq. 13–14 (best head per class, background and object, averaged). AUC: how well a head's attention ranks object patches above background ones (0.5 = no information), best head. Baselines use the same code: *all-foreground* marks every patch, *centre prior* is a Gaussian bump at the image centre used as a one-head attention map, *step 0* is the same model before training.");
        s.AppendLine();
        s.AppendLine("| model | layer | AUC | obj IoU top-60% | obj IoU mass-60% | mIoU top-60% | mIoU mass-60% | step-0 AUC | step-0 obj IoU top-60% |");
        s.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var m in r.Models)
            for (int l = 0; l < m.Scores.Layers.Length; l++)
            {
                var a = m.Scores.Layers[l];
                var u = m.Scores.Untrained[l];
                string bold = l == m.Scores.BestLayer ? "**" : "";
                Line($"| {m.Label} | {bold}{l + 1}{bold} | {bold}{F(a.Auc)}{bold} | {F(a.ObjectIouTop)} | {F(a.ObjectIouMass)} | {F(a.MiouTop)} | {F(a.MiouMass)} | {F(u.Auc)} | {F(u.ObjectIouTop)} |");
            }
        var b0 = r.Models[0].Scores;
        Line($"| *all-foreground* | | {F(b0.AllForeground.Auc)} | {F(b0.AllForeground.ObjectIouTop)} | {F(b0.AllForeground.ObjectIouMass)} | {F(b0.AllForeground.MiouTop)} | {F(b0.AllForeground.MiouMass)} | | |");
        Line($"| *centre prior* | | {F(b0.CentrePrior.Auc)} | {F(b0.CentrePrior.ObjectIouTop)} | {F(b0.CentrePrior.ObjectIouMass)} | {F(b0.CentrePrior.MiouTop)} | {F(b0.CentrePrior.MiouMass)} | | |");
        Line($"| *random heads* | | {F(b0.RandomHeads.Auc)} | {F(b0.RandomHeads.ObjectIouTop)} | {F(b0.RandomHeads.ObjectIouMass)} | {F(b0.RandomHeads.MiouTop)} | {F(b0.RandomHeads.MiouMass)} | | |");
        s.AppendLine();
        Line($"Images scored: {b0.AllForeground.Images} (skipped, object covering no patch or every patch: {b0.AllForeground.Skipped}). The best layer (bold) is the one with the highest best-head AUC, chosen on these images for every model alike. *random heads*: {r.Heads} maps of uniform random values per image, best head as for a model.");
        s.AppendLine();
        s.AppendLine("## MaskCut on the last layer's key features");
        s.AppendLine();
        Line($"Class-agnostic COCO AP against the true masks (our COCOeval, identical to pycocotools), τ = 0.15, {r.MaskCutObjects} object per image (every image holds one), no CRF.");
        s.AppendLine();
        s.AppendLine("| model | mask AP50 | mask AP | box AP50 | box AP | step-0 mask AP50 | step-0 box AP50 |");
        s.AppendLine("|---|---:|---:|---:|---:|---:|---:|");
        foreach (var m in r.Models)
        {
            var c = m.Scores.MaskCut;
            var u = m.Scores.UntrainedMaskCut;
            Line($"| {m.Label} | {F(c.MaskAp50)} | {F(c.MaskAp)} | {F(c.BoxAp50)} | {F(c.BoxAp)} | {F(u.MaskAp50)} | {F(u.BoxAp50)} |");
        }
        s.AppendLine();
        s.AppendLine("## White-box probes per layer (held-out images)");
        s.AppendLine();
        s.AppendLine("Coding rate Rᶜ of the tokens' projections summed over heads (lower = more compressed) and the fraction of exact zeros in the layer's output (ISTA's sparsity; a ViT's MLP output is not sparse by design).");
        s.AppendLine();
        s.AppendLine("| model | " + string.Join(" | ", Enumerable.Range(1, r.Depth).Select(l => $"layer {l} Rᶜ / zeros")) + " |");
        s.AppendLine("|---|" + string.Concat(Enumerable.Repeat("---:|", r.Depth)));
        foreach (var m in r.Models)
            s.AppendLine($"| {m.Label} | " + string.Join(" | ", m.Probes.Select(p => string.Create(CultureInfo.InvariantCulture, $"{p.CodingRate:F1} / {p.Sparsity * 100:F0}%"))) + " |");
        s.AppendLine();
        if (pictures.Count > 0)
        {
            s.AppendLine("## Pictures");
            s.AppendLine();
            foreach (var (title, file) in pictures)
            {
                s.AppendLine("### " + title);
                s.AppendLine();
                s.AppendLine($"![{title}]({file})");
                s.AppendLine();
            }
        }
        s.AppendLine("## Files");
        s.AppendLine();
        s.AppendLine("`report.json` holds every number above. Checkpoints: " + string.Join(", ", r.Models.Select(m => $"`{m.Checkpoint}`")) +
            " (they load in `crate infer` and every other command); `train-*/` holds each run's per-interval checkpoints and metrics (CSV and JSON lines).");
        return s.ToString();
    }
}
