using System.CommandLine;
using System.Text.Json;
using CrateIL.Segmentation.Coco;

namespace CrateIL.Cli.Commands;

/// <summary><c>crate cocoeval</c>: pycocotools-compatible COCO AP/AR of a results file against a ground-truth file.</summary>
internal static class CocoEvalCommand
{
    public static Command Create()
    {
        var gt = new Option<FileInfo>("--gt") { Description = "Ground-truth COCO instances JSON", Required = true };
        var dt = new Option<FileInfo>("--dt") { Description = "Results JSON: [{image_id, category_id, score, bbox | segmentation}]", Required = true };
        var iou = new Option<string>("--iou") { Description = "segm (masks) or bbox (boxes)", DefaultValueFactory = _ => "segm" };
        iou.AcceptOnlyFromAmong("segm", "bbox");
        var json = new Option<bool>("--json") { Description = "Print the 12 numbers as JSON (AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl)" };
        var cmd = new Command("cocoeval", "COCO detection / instance-segmentation evaluation, faithful to pycocotools COCOeval") { gt, dt, iou, json };
        cmd.SetAction(parse => CliErrors.Run(() =>
        {
            var type = parse.GetValue(iou) == "bbox" ? CocoIouType.Bbox : CocoIouType.Segm;
            var gtSet = CocoDataset.Load(parse.GetValue(gt)!.FullName);
            if (gtSet.Annotations.Any(a => a.Id == 0))
                Console.Error.WriteLine("warning: a ground-truth annotation has id 0; like pycocotools, a detection matched to it counts as a false positive. Renumber annotation ids from 1 to avoid this.");
            var results = CocoResults.Load(parse.GetValue(dt)!.FullName, gtSet);
            var eval = CocoEvaluator.Evaluate(gtSet, results, type);
            if (parse.GetValue(json))
            {
                var values = eval.Stats.ToArray();
                var payload = new Dictionary<string, double>();
                for (int i = 0; i < values.Length; i++) payload[CocoStats.Names[i]] = values[i];
                Console.WriteLine(JsonSerializer.Serialize(payload, new JsonSerializerOptions { WriteIndented = true }));
            }
            else Console.Write(eval.Summary);
            return 0;
        }));
        return cmd;
    }
}
