using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using CrateIL.Compute.Cpu;
using CrateIL.Compute.Devices;
using CrateIL.Compute.Verification;
using CrateIL.Crate.Verification;
using CrateIL.Nn.Verification;

namespace CrateIL.Cli.Commands;

/// <summary>
/// <c>crate selftest</c>: "do these kernels work on my card?" without the test suite or an SDK. Runs every Compute
/// op, every Nn block and a CRATE-T and ViT-T training step on one device against the float64 references (the
/// model step against the CPU path), under the tolerances the unit tests use; prints the device, the kernel
/// compilation cost and one row per compared tensor; exits 1 on any failure, 2 on bad arguments.
/// </summary>
internal static class SelftestCommand
{
    public static Command Create()
    {
        var device = new Option<string?>("--device") { Description = "cpu, cuda, opencl or ilgpu-cpu[:index] (default: the best available, as for other commands)" };
        var quick = new Option<bool>("--quick") { Description = "One or two shapes per op instead of the full set (about a third of the time)" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of the table" };
        var threads = new Option<int>("--threads") { DefaultValueFactory = _ => Environment.ProcessorCount, Description = "CPU threads (the CPU device and the CPU reference)" };
        var cmd = new Command("selftest", "Check every op, block and a model step on a device against the float64 references; exit 1 on any failure")
            { device, quick, json, threads };
        cmd.SetAction(parse =>
        {
            // Only opening the device can fail on the user's account; a failure inside the checks is a bug to see whole.
            Device? dev = null;
            int exit = CliErrors.Run(() =>
            {
                if (parse.GetValue(threads) < 1) throw new ArgumentException($"--threads {parse.GetValue(threads)}: must be at least 1");
                dev = CliErrors.OpenDevice(parse.GetValue(device), parse.GetValue(threads));
                return 0;
            });
            if (dev is null) return exit;
            using (dev)
            {
                var report = Run(dev, parse.GetValue(quick));
                if (parse.GetValue(json)) Console.WriteLine(ToJson(report));
                else PrintTable(report);
                return report.Run.Passed ? 0 : 1;
            }
        });
        return cmd;
    }

    internal sealed record Report(SelfTestRun Run, CaseJit? FirstKernel, TimeSpan Total);

    internal static Report Run(Device device, bool quick)
    {
        bool ilgpu = device is IlgpuDevice;
        var total = Stopwatch.StartNew();
        // Only ILGPU devices compile kernels at run time; the CPU path is plain .NET, so no cold/warm double run there.
        CaseJit? first = ilgpu ? OpSelfTest.FirstKernel(device) : null;
        var run = new SelfTestRun(device, quick, measureJit: ilgpu);
        OpSelfTest.Run(run);
        LayerSelfTest.Run(run);
        ModelSelfTest.Run(run);
        return new Report(run, first, total.Elapsed);
    }

    internal static string Backend(Device device) => device.Kind switch
    {
        DeviceKind.Cpu => $"CrateIL CPU SIMD (no ILGPU; GEMM kernel {CpuSgemm.KernelName})",
        DeviceKind.Cuda => "ILGPU CUDA (PTX, JIT-compiled by the driver)",
        DeviceKind.OpenCL => "ILGPU OpenCL (OpenCL C, compiled by the driver)",
        DeviceKind.IlgpuCpu => "ILGPU CPU accelerator (a correctness simulator)",
        _ => device.Kind.ToString(),
    };

    private static string F(double v) =>
        double.IsNaN(v) ? "—" : double.IsPositiveInfinity(v) ? "inf" : v.ToString("0.00e+00", CultureInfo.InvariantCulture);

    private static string Ms(TimeSpan t) => t.TotalMilliseconds.ToString("F1", CultureInfo.InvariantCulture) + " ms";

    private static void PrintTable(Report r)
    {
        var run = r.Run;
        var dev = run.Device;
        Console.WriteLine($"device:  {dev.Spec}  {dev.Name}");
        Console.WriteLine($"backend: {Backend(dev)}");
        foreach (var p in dev.Info.Properties) Console.WriteLine($"         {p.Key}: {p.Value}");
        if (run.Reduced) Console.WriteLine("shapes:  reduced for the ILGPU CPU simulator (one OS thread per group thread); every op still runs");
        else if (run.Quick) Console.WriteLine("shapes:  --quick (one or two per op)");
        if (r.FirstKernel is { } fk)
            Console.WriteLine($"first kernel call: {Ms(fk.Cold)} (warm {Ms(fk.Warm)}): the cost of the first call on this device");
        if (run.MeasureJit)
        {
            var jit = run.Jit.Aggregate(TimeSpan.Zero, (a, j) => a + j.Compilation);
            Console.WriteLine($"kernel compilation, all kernels (cold − warm over every case): {Ms(jit)}");
            foreach (var j in run.Jit.OrderByDescending(j => j.Compilation).Take(3))
                Console.WriteLine($"    {j.Check} {j.Shape}: {Ms(j.Compilation)}");
        }
        Console.WriteLine();
        string header = string.Format(CultureInfo.InvariantCulture, "{0,-5} {1,-28} {2,-30} {3,-44} {4,10} {5,10} {6,8}  {7,-22} {8}",
            "group", "check", "shape", "output", "max abs", "max rel", "/bound", "tolerance", "pass");
        Console.WriteLine(header);
        foreach (var row in run.Rows)
        {
            string tol = row.Error is not null && row.Output == "error" ? "" : row.Tolerance.ToString();
            Console.WriteLine(string.Format(CultureInfo.InvariantCulture, "{0,-5} {1,-28} {2,-30} {3,-44} {4,10} {5,10} {6,8}  {7,-22} {8}",
                row.Group, row.Check, row.Shape, row.Output, F(row.MaxAbsError), F(row.MaxRelError),
                double.IsNaN(row.WorstRatio) ? "—" : row.WorstRatio.ToString("F3", CultureInfo.InvariantCulture), tol, row.Passed ? "ok" : "FAIL"));
            if (row.Error is not null) Console.WriteLine($"      {row.Error}");
        }
        int failed = run.Rows.Count(x => !x.Passed);
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"selftest on {dev.Spec}: {run.Rows.Count - failed} of {run.Rows.Count} checks passed, {failed} failed in {r.Total.TotalSeconds:F1} s"));
        Console.WriteLine("max rel = max|a − e| / max|e|; /bound = max over elements of |a − e| / (abs + rel·|e|), ≤ 1 to pass");
    }

    /// <summary>NaN and infinity are not JSON numbers: they become null.</summary>
    private static double? Num(double v) => double.IsFinite(v) ? v : null;

    internal static string ToJson(Report r)
    {
        var run = r.Run;
        var dev = run.Device;
        var payload = new
        {
            device = new
            {
                spec = dev.Spec,
                name = dev.Name,
                kind = dev.Kind.ToSpec(),
                backend = Backend(dev),
                properties = dev.Info.Properties.ToDictionary(p => p.Key, p => p.Value),
            },
            quick = run.Quick,
            reduced_shapes = run.Reduced,
            first_kernel_ms = r.FirstKernel is { } fk ? fk.Cold.TotalMilliseconds : (double?)null,
            first_kernel_warm_ms = r.FirstKernel is { } fw ? fw.Warm.TotalMilliseconds : (double?)null,
            all_kernels_compile_ms = run.MeasureJit ? run.Jit.Sum(j => j.Compilation.TotalMilliseconds) : (double?)null,
            elapsed_s = r.Total.TotalSeconds,
            checks = run.Rows.Count,
            failed = run.Rows.Count(x => !x.Passed),
            passed = run.Passed,
            rows = run.Rows.Select(x => new
            {
                group = x.Group,
                check = x.Check,
                shape = x.Shape,
                output = x.Output,
                max_abs_error = Num(x.MaxAbsError),
                max_rel_error = Num(x.MaxRelError),
                worst_ratio = Num(x.WorstRatio),
                tolerance_abs = x.Tolerance.Abs,
                tolerance_rel = x.Tolerance.Rel,
                passed = x.Passed,
                error = x.Error,
            }),
            compile = run.Jit.Select(j => new { check = j.Check, shape = j.Shape, cold_ms = j.Cold.TotalMilliseconds, warm_ms = j.Warm.TotalMilliseconds }),
        };
        // Relaxed escaping keeps ×, γ and ² readable; the output is never embedded in HTML.
        return JsonSerializer.Serialize(payload, new JsonSerializerOptions { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
    }
}
