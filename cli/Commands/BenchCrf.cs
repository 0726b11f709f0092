using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using CrateIL.Compute.Devices;
using CrateIL.Segmentation.Crf;

namespace CrateIL.Cli.Commands;

/// <summary>
/// <c>crate bench crf</c>: dense CRF with CutLER's parameters (Gaussian sxy 3 w 7, bilateral sxy 50 srgb 5 w 10) on a
/// synthetic textured image; <c>ms</c> is the median of the full call (both lattices built + mean field + MAP), with
/// the split into construction and mean field and the bytes allocated per call. The CRFs share a
/// <see cref="CrfWorkspace"/> (a CRF per image, as MaskCut over a folder) unless <c>--fresh</c>.
/// </summary>
internal static class BenchCrf
{
    public static Command Create()
    {
        var size = new Option<int>("--size") { DefaultValueFactory = _ => 480, Description = "image side in pixels" };
        var labels = new Option<int>("--labels") { DefaultValueFactory = _ => 2, Description = "labels" };
        var iters = new Option<int>("--iters") { DefaultValueFactory = _ => 10, Description = "mean-field iterations" };
        var threads = new Option<int>("--threads") { DefaultValueFactory = _ => 2, Description = "CPU threads" };
        var repeat = new Option<int>("--repeat") { DefaultValueFactory = _ => 5, Description = "timed runs (median reported)" };
        var fresh = new Option<bool>("--fresh") { Description = "every CRF allocates its own buffers (no shared workspace)" };
        var json = new Option<bool>("--json") { Description = "print JSON" };
        var cmd = new Command("crf", "Time the dense CRF (permutohedral lattice, mean field)");
        foreach (var o in new Option[] { size, labels, iters, threads, repeat, fresh, json }) cmd.Options.Add(o);
        cmd.SetAction(parse => CliErrors.Run(() =>
        {
            int s = parse.GetValue(size), l = parse.GetValue(labels), it = parse.GetValue(iters), t = parse.GetValue(threads);
            int r = Math.Max(1, parse.GetValue(repeat));
            if (t < 1) throw new ArgumentException($"--threads {t} must be at least 1");
            if (s < 1 || l < 2) throw new ArgumentException($"--size {s} must be positive and --labels {l} at least 2");
            var (rgb, unary) = Scene(s, l);
            using var cpuDevice = CpuDevice.Create(t);
            var workspace = parse.GetValue(fresh) ? null : new CrfWorkspace();
            Run(64, l, it, cpuDevice);   // JIT warm-up
            var q = new float[l * s * s];
            var map = new byte[s * s];
            var allocated = new List<long>();
            var total = new List<double>();
            var cpu = new List<double>();
            var proc = System.Diagnostics.Process.GetCurrentProcess();
            var inference = new List<double>();
            var construction = new List<double>();
            int vertices = 0;
            for (int i = 0; i < r; i++)
            {
                proc.Refresh();
                var cpu0 = proc.TotalProcessorTime;
                long bytes0 = GC.GetTotalAllocatedBytes(precise: true);
                var sw = Stopwatch.StartNew();
                var crf = new DenseCrf2D(s, s, l, cpuDevice, workspace: workspace);
                crf.SetUnaryEnergy(unary);
                crf.AddPairwiseGaussian(3, 7);
                crf.AddPairwiseBilateral(50, 5, rgb, 10);
                double built = sw.Elapsed.TotalMilliseconds;
                crf.Inference(it, q);
                DenseCrf2D.Map(q, l, map);
                total.Add(sw.Elapsed.TotalMilliseconds);
                allocated.Add(GC.GetTotalAllocatedBytes(precise: true) - bytes0);
                inference.Add(sw.Elapsed.TotalMilliseconds - built);
                construction.Add(built);
                proc.Refresh();
                cpu.Add((proc.TotalProcessorTime - cpu0).TotalMilliseconds);
                if (i == 0) vertices = PermutohedralLattice.Build(BilateralProbe(rgb, s), s * s, 5, cpuDevice).Vertices;
            }
            total.Sort();
            inference.Sort();
            cpu.Sort();
            double cpuMs = cpu[cpu.Count / 2];
            construction.Sort();
            double ms = total[total.Count / 2], inf = inference[inference.Count / 2], build = construction[construction.Count / 2];
            allocated.Sort();
            long bytesPerCall = allocated[allocated.Count / 2];
            string mode = workspace is null ? "fresh buffers" : "shared workspace";
            var ci = CultureInfo.InvariantCulture;
            if (parse.GetValue(json))
                Console.WriteLine(string.Create(ci,
                    $"{{\"bench\":\"crf\",\"size\":{s},\"labels\":{l},\"iters\":{it},\"threads\":{t},\"ms\":{ms:F1},\"build_ms\":{build:F1},\"inference_ms\":{inf:F1},\"cpu_ms\":{cpuMs:F1},\"allocated_bytes\":{bytesPerCall},\"workspace\":{(workspace is null ? "false" : "true")},\"bilateral_vertices\":{vertices},\"repeat\":{r}}}"));
            else
                Console.WriteLine(string.Create(ci,
                    $"Dense CRF {s}×{s}, {l} labels, {it} iterations, {t} threads, {mode}: {ms:F1} ms (construction {build:F1} ms, mean field {inf:F1} ms; process CPU {cpuMs:F1} ms; {bytesPerCall} B allocated per call; bilateral lattice {vertices} vertices)"));
            return 0;
        }));
        return cmd;
    }

    private static void Run(int s, int l, int it, CpuDevice cpu)
    {
        var (rgb, unary) = Scene(s, l);
        var crf = new DenseCrf2D(s, s, l, cpu);
        crf.SetUnaryEnergy(unary);
        crf.AddPairwiseGaussian(3, 7);
        crf.AddPairwiseBilateral(50, 5, rgb, 10);
        crf.Inference(it);
    }

    private static float[] BilateralProbe(byte[] rgb, int s)
    {
        var f = new float[s * s * 5];
        for (int p = 0; p < s * s; p++)
        {
            f[5 * p] = p % s / 50f; f[5 * p + 1] = p / s / 50f;
            for (int c = 0; c < 3; c++) f[5 * p + 2 + c] = rgb[3 * p + c] / 5f;
        }
        return f;
    }

    /// <summary>A textured image with a few smooth shapes and CutLER-style unaries from a blocky (8×8) mask.</summary>
    internal static (byte[] Rgb, float[] Unary) Scene(int s, int labels)
    {
        var rgb = new byte[s * s * 3];
        var label = new int[s * s];
        var rng = new Random(7);
        for (int y = 0; y < s; y++)
            for (int x = 0; x < s; x++)
            {
                double u = (double)x / s, v = (double)y / s;
                int region = (u - 0.4) * (u - 0.4) + (v - 0.5) * (v - 0.5) < 0.06 ? 1 : (u > 0.7 && v < 0.4 ? 2 : 0);
                region %= labels;
                label[y * s + x] = region;
                int p = (y * s + x) * 3;
                double shade = 40 * Math.Sin(6 * u + 3 * v);
                rgb[p] = (byte)Math.Clamp(80 + 90 * region + shade + rng.Next(-12, 13), 0, 255);
                rgb[p + 1] = (byte)Math.Clamp(120 - 30 * region + shade / 2 + rng.Next(-12, 13), 0, 255);
                rgb[p + 2] = (byte)Math.Clamp(60 + 50 * (region % 2) + rng.Next(-12, 13), 0, 255);
            }
        // Unary: probability 0.7311 (softmax of a one-hot) on the label of the containing 8×8 block's centre.
        int n = s * s;
        var probs = new float[labels * n];
        float hi = 1f / (1f + (labels - 1) * MathF.Exp(-1f)), lo = (1 - hi) / (labels - 1);
        for (int y = 0; y < s; y++)
            for (int x = 0; x < s; x++)
            {
                int cy = Math.Min(s - 1, y / 8 * 8 + 4), cx = Math.Min(s - 1, x / 8 * 8 + 4);
                int lab = label[cy * s + cx];
                for (int l = 0; l < labels; l++) probs[l * n + y * s + x] = l == lab ? hi : lo;
            }
        return (rgb, DenseCrf2D.UnaryFromSoftmax(probs, labels));
    }
}
