using System.Diagnostics;
using System.Globalization;
using CrateIL.Compute.Devices;
using CrateIL.Compute.Ops;
using static CrateIL.Compute.Verification.SampleData;

namespace CrateIL.Compute.Verification;

/// <summary>
/// The Compute half of <c>crate selftest</c>: every op, forward and backward, on the run's device against its float64
/// reference under <see cref="OpTolerances"/>, at odd sizes (1, 7, 65, 785) and, for GEMM, all four transposes.
/// </summary>
public static class OpSelfTest
{
    public static void Run(SelfTestRun run)
    {
        Gemms(run);
        ElementwiseOps(run);
        Activations(run);
        RowOps(run);
        Reductions(run);
    }

    /// <summary>
    /// The cost of the very first kernel call on a fresh device (a one-element add): cold (compilation, module load,
    /// first launch) and warm. Call it before anything else has run on the device.
    /// </summary>
    public static CaseJit FirstKernel(Device device)
    {
        using var x = device.FromHost([1f], 1);
        using var y = device.FromHost([2f], 1);
        using var z = device.Allocate(1);
        device.Synchronize();
        var times = new TimeSpan[2];
        for (int i = 0; i < 2; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            Elementwise.Add(x, y, z);
            device.Synchronize();
            times[i] = Stopwatch.GetElapsedTime(t0);
        }
        return new CaseJit("add (first kernel)", "1", times[0], times[1]);
    }

    private static string Fmt(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    /// <summary>Element counts of the element-wise and activation checks.</summary>
    private static int[] Lengths(SelfTestRun run) => run.Reduced ? [1, 7, 65] : run.Quick ? [7, 785] : [1, 7, 65, 785, 4099];

    /// <summary>(rows, cols) of the row ops (softmax, LayerNorm, cross-entropy, bias, reductions).</summary>
    private static (int Rows, int Cols)[] RowShapes(SelfTestRun run) =>
        run.Reduced ? [(1, 7), (7, 65)] : run.Quick ? [(7, 65), (65, 785)] : [(1, 1), (1, 7), (7, 65), (65, 785), (3, 4099)];

    private static void Gemms(SelfTestRun run)
    {
        (int M, int N, int K)[] shapes = run.Reduced
            ? [(1, 1, 1), (7, 5, 9), (17, 18, 19)]
            : run.Quick
                ? [(1, 7, 65), (65, 7, 785), (127, 65, 33)]
                : [(1, 1, 1), (1, 7, 65), (7, 65, 1), (65, 785, 7), (785, 65, 65), (127, 785, 65), (65, 127, 785), (300, 257, 520)];
        foreach (var (m, n, k) in shapes)
            foreach (bool ta in new[] { false, true })
                foreach (bool tb in new[] { false, true })
                    Gemm(run, batch: 1, m, n, k, ta, tb, alpha: 1f, beta: 0f);
        // Batched, scaled and accumulating (β ≠ 0): the attention and gradient-accumulation path.
        var (bm, bn, bk) = run.Reduced ? (5, 7, 3) : (65, 33, 17);
        Gemm(run, batch: 3, bm, bn, bk, transA: false, transB: true, alpha: 0.5f, beta: 1f);
        Gemm(run, batch: 3, bm, bn, bk, transA: true, transB: false, alpha: -1.25f, beta: 0.5f);
    }

    private static void Gemm(SelfTestRun run, int batch, int m, int n, int k, bool transA, bool transB, float alpha, float beta)
    {
        string op = $"gemm {(transA ? 'T' : 'N')}{(transB ? 'T' : 'N')}" + (beta != 0f || alpha != 1f ? Fmt($" α={alpha} β={beta}") : "");
        string shape = batch == 1 ? $"{m}×{n}×{k}" : $"{batch}×{m}×{n}×{k}";
        run.Case("op", op, shape, c =>
        {
            var dev = run.Device;
            int[] aShape = transA ? [batch, k, m] : [batch, m, k], bShape = transB ? [batch, n, k] : [batch, k, n];
            var a = Uniform(11 + m, (long)batch * m * k);
            var b = Uniform(12 + n, (long)batch * k * n);
            var c0 = Uniform(13 + k, (long)batch * m * n);
            using var ta = dev.FromHost(a, aShape);
            using var tb = dev.FromHost(b, bShape);
            using var tc = dev.FromHost(beta == 0f ? Enumerable.Repeat(float.NaN, c0.Length).ToArray() : c0, batch, m, n);
            Ops.Gemm.MatMul(ta, tb, tc, transA, transB, alpha, beta);
            var expected = ToDouble(c0);
            var args = Ops.Gemm.Resolve(batch, m, n, k, alpha,
                new MatrixOperand(ta, 0, transA ? m : k, (long)m * k), transA,
                new MatrixOperand(tb, 0, transB ? k : n, (long)k * n), transB,
                beta, new MatrixOperand(tc, 0, n, (long)m * n));
            GemmReference.Run(args, a, b, expected);
            c.Compare("C", tc.ToArray(), expected, OpTolerances.Gemm(k));
        });
    }

    private static void ElementwiseOps(SelfTestRun run)
    {
        var dev = run.Device;
        foreach (int n in Lengths(run))
        {
            string shape = n.ToString(CultureInfo.InvariantCulture);
            var x = Uniform(21, n, -2f, 2f);
            var y = Uniform(22, n, -2f, 2f);
            run.Case("op", "add", shape, c =>
            {
                using var tx = dev.FromHost(x, n); using var ty = dev.FromHost(y, n); using var tz = dev.Allocate(n);
                Elementwise.Add(tx, ty, tz);
                c.Compare("z", tz.ToArray(), ElementwiseReference.Add(x, y), OpTolerances.Arithmetic);
            });
            run.Case("op", "multiply", shape, c =>
            {
                using var tx = dev.FromHost(x, n); using var ty = dev.FromHost(y, n); using var tz = dev.Allocate(n);
                Elementwise.Multiply(tx, ty, tz);
                c.Compare("z", tz.ToArray(), ElementwiseReference.Multiply(x, y), OpTolerances.Arithmetic);
            });
            run.Case("op", "scale", shape, c =>
            {
                using var tx = dev.FromHost(x, n); using var tz = dev.Allocate(n);
                Elementwise.Scale(tx, -1.75f, tz);
                c.Compare("y", tz.ToArray(), ElementwiseReference.Scale(x, -1.75), OpTolerances.Arithmetic);
            });
            run.Case("op", "axpy", shape, c =>
            {
                using var tx = dev.FromHost(x, n); using var ty = dev.FromHost(y, n);
                Elementwise.Axpy(0.625f, tx, ty);
                c.Compare("y", ty.ToArray(), ElementwiseReference.Axpy(0.625, x, y), OpTolerances.Arithmetic);
            });
        }
        foreach (var (rows, cols) in RowShapes(run))
        {
            var x = Uniform(23, (long)rows * cols, -2f, 2f);
            var bias = Uniform(24, cols);
            var dbias0 = Uniform(25, cols);
            run.Case("op", "bias add", $"{rows}×{cols}", c =>
            {
                using var tx = dev.FromHost(x, rows, cols); using var tb = dev.FromHost(bias, cols); using var ty = dev.Allocate(rows, cols);
                BiasAdd.Forward(tx, tb, ty);
                c.Compare("y", ty.ToArray(), ElementwiseReference.BiasAdd(x, bias), OpTolerances.Arithmetic);
            });
            run.Case("op", "bias add backward", $"{rows}×{cols}", c =>
            {
                using var tdy = dev.FromHost(x, rows, cols); using var tdb = dev.FromHost(dbias0, cols);
                BiasAdd.Backward(tdy, tdb);
                c.Compare("dbias (accumulated)", tdb.ToArray(), ElementwiseReference.BiasGrad(x, dbias0), OpTolerances.BiasGrad);
            });
        }
    }

    private static double[] Map(float[] x, Func<double, double> f) => x.Select(v => f(v)).ToArray();

    private static double[] Map(float[] x, float[] dy, Func<double, double> derivative) => x.Select((v, i) => dy[i] * derivative(v)).ToArray();

    private static void Activations(SelfTestRun run)
    {
        var dev = run.Device;
        const float T = 0.25f;
        foreach (int n in Lengths(run))
        {
            string shape = n.ToString(CultureInfo.InvariantCulture);
            var x = Uniform(31, n, -3f, 3f);
            var dy = Uniform(32, n);
            run.Case("op", "relu", shape, c =>
            {
                using var tx = dev.FromHost(x, n); using var ty = dev.Allocate(n); using var tdy = dev.FromHost(dy, n); using var tdx = dev.Allocate(n);
                Relu.Forward(tx, ty);
                Relu.Backward(tdy, tx, tdx);
                c.Compare("y", ty.ToArray(), Map(x, ActivationReference.Relu), OpTolerances.Threshold);
                c.Compare("dx", tdx.ToArray(), Map(x, dy, ActivationReference.ReluDerivative), OpTolerances.Threshold);
            });
            foreach (var kind in new[] { ThresholdKind.OneSided, ThresholdKind.Symmetric })
                run.Case("op", kind == ThresholdKind.OneSided ? "soft threshold" : "soft threshold (symmetric)", shape, c =>
                {
                    using var tx = dev.FromHost(x, n); using var ty = dev.Allocate(n); using var tdy = dev.FromHost(dy, n); using var tdx = dev.Allocate(n);
                    SoftThreshold.Forward(tx, ty, T, kind);
                    SoftThreshold.Backward(tdy, tx, tdx, T, kind);
                    c.Compare("y", ty.ToArray(), Map(x, v => ActivationReference.SoftThreshold(v, T, kind)), OpTolerances.Threshold);
                    c.Compare("dx", tdx.ToArray(), Map(x, dy, v => ActivationReference.SoftThresholdDerivative(v, T, kind)), OpTolerances.Threshold);
                });
            foreach (var form in new[] { GeluForm.Erf, GeluForm.Tanh })
                run.Case("op", form == GeluForm.Erf ? "gelu (erf)" : "gelu (tanh)", shape, c =>
                {
                    using var tx = dev.FromHost(x, n); using var ty = dev.Allocate(n); using var tdy = dev.FromHost(dy, n); using var tdx = dev.Allocate(n);
                    Gelu.Forward(tx, ty, form);
                    Gelu.Backward(tdy, tx, tdx, form);
                    c.Compare("y", ty.ToArray(), Map(x, v => ActivationReference.Gelu(v, form)), OpTolerances.GeluForward);
                    c.Compare("dx", tdx.ToArray(), Map(x, dy, v => ActivationReference.GeluDerivative(v, form)), OpTolerances.GeluBackward);
                });
        }
    }

    private static void RowOps(SelfTestRun run)
    {
        var dev = run.Device;
        foreach (var (rows, cols) in RowShapes(run))
        {
            string shape = $"{rows}×{cols}";
            var x = Normal(41 + cols, (long)rows * cols, 2f, 0.5f);
            var dy = Normal(42 + cols, (long)rows * cols);
            run.Case("op", "softmax", shape, c =>
            {
                const float scale = 0.7f;
                using var tx = dev.FromHost(x, rows, cols); using var ty = dev.Allocate(rows, cols);
                using var tdy = dev.FromHost(dy, rows, cols); using var tdx = dev.Allocate(rows, cols);
                Softmax.Forward(tx, ty, scale);
                var y = ty.ToArray();
                Softmax.Backward(ty, tdy, tdx, scale);
                c.Compare("y", y, SoftmaxReference.Forward(ToDouble(x), rows, cols, scale), OpTolerances.SoftmaxForward);
                // The backward is judged on the device's own y, so a forward error is not counted twice.
                c.Compare("dx", tdx.ToArray(), SoftmaxReference.Backward(ToDouble(y), ToDouble(dy), rows, cols, scale), OpTolerances.SoftmaxBackward);
            });
            run.Case("op", "layernorm", shape, c =>
            {
                var gamma = Uniform(43, cols, 0.5f, 1.5f);
                var beta = Uniform(44, cols, -0.3f, 0.3f);
                var dg0 = Uniform(45, cols);
                var db0 = Uniform(46, cols);
                using var tx = dev.FromHost(x, rows, cols); using var ty = dev.Allocate(rows, cols);
                using var tg = dev.FromHost(gamma, cols); using var tb = dev.FromHost(beta, cols);
                using var mean = dev.Allocate(rows); using var rstd = dev.Allocate(rows);
                using var tdy = dev.FromHost(dy, rows, cols); using var tdx = dev.Allocate(rows, cols);
                using var tdg = dev.FromHost(dg0, cols); using var tdb = dev.FromHost(db0, cols);
                LayerNorm.Forward(tx, tg, tb, ty, mean, rstd);
                LayerNorm.Backward(tdy, tx, tg, mean, rstd, tdx, tdg, tdb);
                var (ry, rmean, rrstd) = LayerNormReference.Forward(ToDouble(x), ToDouble(gamma), ToDouble(beta), rows, cols);
                var (rdx, rdg, rdb) = LayerNormReference.Backward(ToDouble(dy), ToDouble(x), ToDouble(gamma), rmean, rrstd, rows, cols);
                c.Compare("y", ty.ToArray(), ry, OpTolerances.LayerNormForward);
                c.Compare("dx", tdx.ToArray(), rdx, OpTolerances.LayerNormBackward);
                c.Compare("dγ (accumulated)", tdg.ToArray(), rdg.Select((v, i) => v + dg0[i]).ToArray(), OpTolerances.LayerNormBackward);
                c.Compare("dβ (accumulated)", tdb.ToArray(), rdb.Select((v, i) => v + db0[i]).ToArray(), OpTolerances.LayerNormBackward);
            });
            run.Case("op", "cross-entropy", shape, c =>
            {
                const float smoothing = 0.1f;
                var labels = Labels(47, rows, cols);
                using var tx = dev.FromHost(x, rows, cols); using var losses = dev.Allocate(rows); using var tdx = dev.Allocate(rows, cols);
                float mean = CrossEntropy.Forward(tx, labels, losses, smoothing);
                CrossEntropy.Backward(tx, labels, tdx, smoothing);
                var (rl, rmean) = CrossEntropyReference.Forward(ToDouble(x), labels, rows, cols, smoothing);
                c.Compare("losses", losses.ToArray(), rl, OpTolerances.CrossEntropyLoss);
                c.Compare("mean loss", mean, rmean, OpTolerances.CrossEntropyLoss);
                c.Compare("dlogits", tdx.ToArray(), CrossEntropyReference.Backward(ToDouble(x), labels, rows, cols, smoothing), OpTolerances.CrossEntropyGrad);
            });
        }
    }

    private static void Reductions(SelfTestRun run)
    {
        var dev = run.Device;
        foreach (var (rows, cols) in RowShapes(run))
            foreach (var op in new[] { ReduceOp.Sum, ReduceOp.Max, ReduceOp.L2Norm })
                run.Case("op", $"reduce {op.ToString().ToLowerInvariant()}", $"{rows}×{cols}", c =>
                {
                    var x = Uniform(51 + cols, (long)rows * cols);
                    using var tx = dev.FromHost(x, rows, cols); using var tr = dev.Allocate(rows); using var all = dev.Allocate(1);
                    Reduce.Rows(tx, tr, op);
                    Reduce.All(tx, all, op);
                    c.Compare("rows", tr.ToArray(), ReduceReference.Rows(ToDouble(x), rows, cols, op), OpTolerances.Reduction(op, cols));
                    c.Compare("all", all.ToArray(), [ReduceReference.Of(ToDouble(x), op)], OpTolerances.Reduction(op, (long)rows * cols));
                });
    }
}
