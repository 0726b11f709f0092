using CrateIL.Compute.Devices;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using CrateIL.Segmentation.MaskCut;

namespace CrateIL.Cli.Commands;

/// <summary>
/// <c>crate bench maskcut</c>: MaskCut on synthetic planted-object features ([N, D], N = (size/patch)²), timing
/// the affinity (GEMM + binarisation) and the eigen-solves separately; <c>ms</c> is the median per image.
/// </summary>
internal static class BenchMaskCut
{
    public static Command Create()
    {
        var size = new Option<int>("--size") { DefaultValueFactory = _ => 480, Description = "image size in pixels (CutLER fixed_size)" };
        var patch = new Option<int>("--patch") { DefaultValueFactory = _ => 8, Description = "patch size" };
        var dim = new Option<int>("--dim") { DefaultValueFactory = _ => 384, Description = "feature dimension" };
        var objects = new Option<int>("--objects") { DefaultValueFactory = _ => 3, Description = "planted objects = MaskCut iterations" };
        var tau = new Option<double>("--tau") { DefaultValueFactory = _ => 0.15, Description = "affinity threshold" };
        var noise = new Option<double>("--noise") { DefaultValueFactory = _ => 0.5, Description = "feature noise norm" };
        var threads = new Option<int>("--threads") { DefaultValueFactory = _ => 2, Description = "CPU threads" };
        var repeat = new Option<int>("--repeat") { DefaultValueFactory = _ => 3, Description = "timed runs (median reported)" };
        var waves = new Option<double>("--waves") { DefaultValueFactory = _ => 1.5, Description = "background variation (0 = a single background clique)" };
        var json = new Option<bool>("--json") { Description = "print JSON" };
        var cmd = new Command("maskcut", "Time MaskCut (affinity GEMM + Lanczos normalized cuts) on synthetic features");
        foreach (var o in new Option[] { size, patch, dim, objects, tau, noise, waves, threads, repeat, json }) cmd.Options.Add(o);
        cmd.SetAction(parse => CliErrors.Run(() =>
        {
            int s = parse.GetValue(size), p = parse.GetValue(patch), d = parse.GetValue(dim), k = parse.GetValue(objects);
            int t = parse.GetValue(threads), r = Math.Max(1, parse.GetValue(repeat));
            if (p < 1 || s < p) throw new ArgumentException($"--size {s} must be at least --patch {p}");
            if (t < 1) throw new ArgumentException($"--threads {t} must be at least 1");
            int g = s / p;
            var opts = new MaskCutOptions { Objects = k, Tau = parse.GetValue(tau) };
            using var cpuDevice = CpuDevice.Create(t);
            var boxes = PlantBoxes(g, k);
            var features = SyntheticFeatures.Planted(g, g, d, boxes, parse.GetValue(noise), seed: 1, parse.GetValue(waves));
            // Warm-up (JIT) on a small problem, so the timed runs measure steady state.
            var small = SyntheticFeatures.Planted(20, 20, Math.Max(d, k + 4), PlantBoxes(20, k), parse.GetValue(noise), seed: 2, parse.GetValue(waves));
            MaskCutter.Run(small, Math.Max(d, k + 4), 20, 20, opts with { Solver = EigenSolverKind.Lanczos }, cpuDevice);
            var totals = new List<double>();
            var cpu = new List<double>();
            var proc = System.Diagnostics.Process.GetCurrentProcess();
            MaskCutResult? last = null;
            for (int i = 0; i < r; i++)
            {
                proc.Refresh();
                var cpu0 = proc.TotalProcessorTime;
                var sw = Stopwatch.StartNew();
                last = MaskCutter.Run(features, d, g, g, opts, cpuDevice);
                totals.Add(sw.Elapsed.TotalMilliseconds);
                proc.Refresh();
                cpu.Add((proc.TotalProcessorTime - cpu0).TotalMilliseconds);
            }
            totals.Sort();
            double ms = totals[totals.Count / 2];
            cpu.Sort();
            double cpuMs = cpu[cpu.Count / 2];
            int found = last!.Objects.Count(o => !o.IsEmpty);
            var ci = CultureInfo.InvariantCulture;
            if (parse.GetValue(json))
                Console.WriteLine(string.Create(ci,
                    $"{{\"bench\":\"maskcut\",\"size\":{s},\"patch\":{p},\"tokens\":{g * g},\"dim\":{d},\"objects\":{k},\"threads\":{t},\"ms\":{ms:F1},\"cpu_ms\":{cpuMs:F1},\"affinity_ms\":{last.AffinityMilliseconds:F1},\"eigen_ms\":{last.EigenMilliseconds:F1},\"matvecs\":{last.MatVecs},\"found\":{found},\"repeat\":{r}}}"));
            else
            {
                foreach (var o in last.Objects)
                    Console.WriteLine(string.Create(ci, $"  iteration {o.Iteration}: {(o.IsEmpty ? "empty" : $"box {o.PatchBox}")}, rejection {o.Rejection}, λ {o.Eigenvalue:G4}"));
                Console.WriteLine(string.Create(ci,
                    $"MaskCut {g}×{g} tokens, dim {d}, {k} iterations, {t} threads: {ms:F1} ms/image (process CPU {cpuMs:F1} ms; affinity {last.AffinityMilliseconds:F1} ms, eigen {last.EigenMilliseconds:F1} ms, {last.MatVecs} mat-vecs), {found} objects found"));
            }
            return 0;
        }));
        return cmd;
    }

    /// <summary>Deterministic, separated object boxes on a g×g grid (distinct sizes, cycling over 6 anchor points).</summary>
    internal static Box[] PlantBoxes(int g, int count)
    {
        var anchors = new (double X, double Y)[] { (0.08, 0.1), (0.55, 0.55), (0.12, 0.6), (0.6, 0.08), (0.35, 0.35), (0.8, 0.8) };
        var boxes = new Box[count];
        for (int k = 0; k < count; k++)
        {
            var (ax, ay) = anchors[k % anchors.Length];
            int side = Math.Max(2, (int)(g * (0.3 - 0.04 * (k % 4))));
            int x0 = Math.Min((int)(ax * g), g - side), y0 = Math.Min((int)(ay * g), g - side);
            boxes[k] = new Box(x0, y0, x0 + side, y0 + side);
        }
        return boxes;
    }
}
