using System.Diagnostics;
using CrateIL.Compute.Devices;

namespace CrateIL.Compute.Verification;

/// <summary>One compared output of a self-test case: op, shape, errors, the bound and the verdict.</summary>
/// <param name="Group">"op", "block", "optim" or "model".</param>
/// <param name="Check">What ran, e.g. "gemm NT" or "layernorm backward".</param>
/// <param name="Output">The compared tensor, e.g. "C", "dx", "dγ"; "error" when the case threw.</param>
/// <param name="Error">The exception message when the case threw (then <paramref name="Passed"/> is false).</param>
public sealed record SelfTestRow(string Group, string Check, string Shape, string Output, double MaxAbsError, double MaxRelError,
    double WorstRatio, Tolerance Tolerance, bool Passed, string? Error = null);

/// <summary>
/// Collects the rows of <c>crate selftest</c> on one device: each case runs an op (or block, or model step) on the
/// device and compares its outputs with the float64 reference (or the CPU path) under the tolerance the unit tests use.
/// A case that throws becomes a failing row, so one broken kernel does not hide the others.
/// </summary>
public sealed class SelfTestRun(Device device, bool quick, bool measureJit = false)
{
    private readonly List<SelfTestRow> _rows = [];
    private readonly List<CaseJit> _jit = [];
    private bool _muted;

    public Device Device { get; } = device;

    /// <summary>Fewer shapes (a quick check of every op rather than every shape).</summary>
    public bool Quick { get; } = quick;

    /// <summary>
    /// The ILGPU CPU accelerator runs one OS thread per group thread: shapes are shrunk there (the report says so).
    /// </summary>
    public bool Reduced => Device.Kind == DeviceKind.IlgpuCpu;

    public IReadOnlyList<SelfTestRow> Rows => _rows;

    public bool Passed => _rows.Count > 0 && _rows.All(r => r.Passed);

    /// <summary>Wall time of the cases so far (device work, references and comparisons).</summary>
    public TimeSpan Elapsed { get; private set; }

    /// <summary>
    /// Whether each case runs a second time (unrecorded) so that the first run's extra time, the kernel compilation
    /// (ILGPU to PTX/OpenCL C, then the driver's JIT), can be estimated as cold − warm.
    /// </summary>
    public bool MeasureJit { get; } = measureJit;

    /// <summary>Cold − warm time of each case (when <see cref="MeasureJit"/>), in run order.</summary>
    public IReadOnlyList<CaseJit> Jit => _jit;

    /// <summary>Runs one case; its comparisons become rows, and an exception a failing row naming it.</summary>
    public void Case(string group, string check, string shape, Action<SelfTestCase> body)
    {
        var c = new SelfTestCase(this, group, check, shape);
        long t0 = Stopwatch.GetTimestamp();
        bool threw = false;
        try
        {
            body(c);
            Device.Synchronize();
        }
        catch (Exception e)
        {
            threw = true;
            _rows.Add(new SelfTestRow(group, check, shape, "error", double.NaN, double.NaN, double.NaN, default, false,
                $"{e.GetType().Name}: {e.Message}".ReplaceLineEndings(" ")));
        }
        var cold = Stopwatch.GetElapsedTime(t0);
        Elapsed += cold;
        if (!MeasureJit || threw) return;
        long t1 = Stopwatch.GetTimestamp();
        _muted = true;
        try
        {
            body(c);
            Device.Synchronize();
        }
        catch (Exception e)
        {
            // The cold run passed, so a failure on the second, identical run is a bug of its own (state kept between
            // calls, a cache, a race): report it as a failing row rather than losing it to the timing pass.
            threw = true;
            _rows.Add(new SelfTestRow(group, check, shape, "error (second run)", double.NaN, double.NaN, double.NaN, default, false,
                $"{e.GetType().Name}: {e.Message}".ReplaceLineEndings(" ")));
        }
        finally { _muted = false; }
        var warm = Stopwatch.GetElapsedTime(t1);
        Elapsed += warm;
        if (!threw) _jit.Add(new CaseJit(check, shape, cold, warm));
    }

    internal void Add(SelfTestRow row)
    {
        if (!_muted) _rows.Add(row);
    }
}

/// <summary>A case's first (cold) and second (warm) wall time; the difference is mostly kernel compilation.</summary>
public sealed record CaseJit(string Check, string Shape, TimeSpan Cold, TimeSpan Warm)
{
    public TimeSpan Compilation => Cold > Warm ? Cold - Warm : TimeSpan.Zero;
}

/// <summary>The comparisons of one self-test case.</summary>
public sealed class SelfTestCase
{
    private readonly SelfTestRun _run;
    private readonly string _group, _check, _shape;

    internal SelfTestCase(SelfTestRun run, string group, string check, string shape)
    {
        _run = run; _group = group; _check = check; _shape = shape;
    }

    public void Compare(string output, ReadOnlySpan<float> actual, ReadOnlySpan<double> expected, Tolerance tol)
    {
        var c = Comparison.Of(actual, expected, tol);
        string? error = actual.Length != expected.Length ? $"length {actual.Length}, expected {expected.Length}" : null;
        _run.Add(new SelfTestRow(_group, _check, _shape, output, c.MaxAbsError, c.MaxRelError, c.WorstRatio, tol, c.Passed, error));
    }

    /// <summary>
    /// Many tensors (e.g. every parameter gradient of a model), each under its own tolerance, as one row: the one
    /// with the largest error relative to its bound is reported, and the row passes only if every tensor does.
    /// </summary>
    public void CompareEach(string output, IEnumerable<(string Name, float[] Actual, double[] Expected, Tolerance Tol)> tensors)
    {
        int count = 0, failed = 0;
        (string Name, Comparison C, Tolerance Tol)? worst = null;
        foreach (var (name, actual, expected, tol) in tensors)
        {
            var c = Comparison.Of(actual, expected, tol);
            count++;
            if (!c.Passed) failed++;
            if (worst is null || !(c.WorstRatio <= worst.Value.C.WorstRatio)) worst = (name, c, tol);
        }
        if (worst is not { } w)
        {
            _run.Add(new SelfTestRow(_group, _check, _shape, output, double.NaN, double.NaN, double.NaN, default, false, "no tensors to compare"));
            return;
        }
        string label = $"{output} ({count} tensors; worst {w.Name}{(failed > 0 ? $"; {failed} fail" : "")})";
        _run.Add(new SelfTestRow(_group, _check, _shape, label, w.C.MaxAbsError, w.C.MaxRelError, w.C.WorstRatio, w.Tol, failed == 0));
    }

    public void Compare(string output, double actual, double expected, Tolerance tol) =>
        Compare(output, [(float)actual], [expected], tol);
}
