using System.CommandLine;
using CrateIL.Cli.Emerge;

namespace CrateIL.Cli.Commands;

/// <summary>
/// <c>crate emerge</c>: the paper's claim on a laptop — train a small CRATE and a ViT of the same shape with one recipe,
/// then measure whether segmentation emerges in their attention (and MaskCut on their features), beside baselines.
/// </summary>
internal static class EmergeCommand
{
    public static Command Create()
    {
        var budget = new Option<string>("--budget") { Description = "tiny (≈1 min, a smoke test) | default (≤ 10 min on 2 cores) | long (≈3×)", DefaultValueFactory = _ => "default" };
        budget.AcceptOnlyFromAmong(EmergeRecipes.Budgets);
        var ablations = new Option<bool>("--ablations") { Description = "Also train CRATE-MLP and CRATE-MHSA (the paper's Table 2)" };
        var dataset = new Option<string>("--dataset") { Description = "shapes (generated) | fashion-clutter (Fashion-MNIST items on clutter; Debian package dataset-fashion-mnist)", DefaultValueFactory = _ => "shapes" };
        dataset.AcceptOnlyFromAmong(EmergeRecipes.Datasets);
        var device = new Option<string?>("--device") { Description = "cpu, cuda, opencl or ilgpu-cpu[:index] (default: the best available)" };
        var threads = new Option<int?>("--threads") { Description = "CPU worker threads (cpu device)" };
        var seed = new Option<int>("--seed") { Description = "Seeds the data, the initialisation and the data order", DefaultValueFactory = _ => 0 };
        var output = new Option<DirectoryInfo?>("--out") { Description = "Output directory (default: runs/emerge-<timestamp>)" };
        var json = new Option<bool>("--json") { Description = "Print the report as JSON on stdout instead of the summary table" };
        var cmd = new Command("emerge", "Train CRATE and ViT with one recipe and measure whether segmentation emerges in their attention")
        {
            budget, ablations, dataset, device, threads, seed, output, json,
        };
        cmd.SetAction(parse => CliErrors.Run(() => EmergeRunner.Run(new EmergeSettings(
            parse.GetValue(budget)!, parse.GetValue(ablations), parse.GetValue(dataset)!, parse.GetValue(device), parse.GetValue(threads),
            parse.GetValue(seed), parse.GetValue(output)?.FullName, parse.GetValue(json)))));
        return cmd;
    }
}
