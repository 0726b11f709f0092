using System.Reflection;
using CrateIL.Compute.Devices;
using CrateIL.Compute.Ilgpu;
using CrateIL.Compute.Ops;
using CrateIL.Compute.Tensors;
using CrateIL.Testing;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.OpenCL;
using ILGPU.Backends.PTX;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;
using Xunit;

namespace CrateIL.Compute.Tests;

public class ElementwiseTests
{
    private static int[] Sizes(string backend) =>
        Backends.IsSimulator(backend) ? [1, 7, 65, 127, 785, 1027] : [1, 7, 65, 127, 785, 1027, 100_003];

    /// <summary>(rows, cols) for bias ops; off the simulator one shape large enough to split across CPU threads.</summary>
    private static (int Rows, int Cols)[] BiasShapes(string backend) =>
        Backends.IsSimulator(backend)
            ? [(1, 1), (7, 5), (13, 65), (33, 127), (3, 785), (5, 1027)]
            : [(1, 1), (7, 5), (13, 65), (33, 127), (3, 785), (5, 1027), (600, 1027)];

    private static readonly Tolerance Arith = OpTolerances.Arithmetic;

    private static Tensor Poisoned(Device dev, params int[] shape)
    {
        var t = dev.Allocate(shape);
        t.Fill(float.NaN);
        return t;
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void AddMultiplyScaleAxpyMatchReference(string backend)
    {
        var dev = Backends.Get(backend);
        foreach (int n in Sizes(backend))
        {
            var x = TestData.Uniform(n, n, -2f, 2f);
            var y = TestData.Uniform(n + 1, n, -2f, 2f);
            using var tx = dev.FromHost(x, n);
            using var ty = dev.FromHost(y, n);
            using var tz = Poisoned(dev, n);

            Elementwise.Add(tx, ty, tz);
            Check.Close(tz.ToArray(), ElementwiseReference.Add(x, y), Arith, $"{backend} add n={n}");
            tz.Fill(float.NaN);
            Elementwise.Multiply(tx, ty, tz);
            Check.Close(tz.ToArray(), ElementwiseReference.Multiply(x, y), Arith, $"{backend} multiply n={n}");
            tz.Fill(float.NaN);
            Elementwise.Scale(tx, -1.75f, tz);
            Check.Close(tz.ToArray(), ElementwiseReference.Scale(x, -1.75), Arith, $"{backend} scale n={n}");

            // Axpy accumulates into y (nonzero on entry).
            Elementwise.Axpy(0.625f, tx, ty);
            Check.Close(ty.ToArray(), ElementwiseReference.Axpy(0.625, x, y), Arith, $"{backend} axpy n={n}");

            // In place: z is x.
            ty.CopyFrom(y);
            Elementwise.Add(tx, ty, tx);
            Check.Close(tx.ToArray(), ElementwiseReference.Add(x, y), Arith, $"{backend} add in place n={n}");
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void BiasAddMatchesReference(string backend)
    {
        var dev = Backends.Get(backend);
        foreach (var (rows, cols) in BiasShapes(backend))
        {
            var x = TestData.Uniform(rows, rows * cols);
            var b = TestData.Uniform(cols, cols);
            using var tx = dev.FromHost(x, rows, cols);
            using var tb = dev.FromHost(b, cols);
            using var ty = Poisoned(dev, rows, cols);
            BiasAdd.Forward(tx, tb, ty);
            var expected = ElementwiseReference.BiasAdd(x, b);
            Check.Close(ty.ToArray(), expected, Arith, $"{backend} bias add {rows}x{cols}");
            BiasAdd.Forward(tx, tb, tx);
            Check.Close(tx.ToArray(), expected, Arith, $"{backend} bias add in place {rows}x{cols}");
        }
        // A 3-D activation [batch, tokens, channels] with a per-channel bias.
        var x3 = TestData.Uniform(5, 2 * 5 * 7);
        var b3 = TestData.Uniform(6, 7);
        using var t3 = dev.FromHost(x3, 2, 5, 7);
        using var tb3 = dev.FromHost(b3, 7);
        using var ty3 = Poisoned(dev, 2, 5, 7);
        BiasAdd.Forward(t3, tb3, ty3);
        Check.Close(ty3.ToArray(), ElementwiseReference.BiasAdd(x3, b3), Arith, $"{backend} bias add 2x5x7");
    }

    /// <summary>dbias += Σ_r dy: pre-filled dbias must be kept and added to.</summary>
    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void BiasBackwardAccumulatesColumnSums(string backend)
    {
        var dev = Backends.Get(backend);
        foreach (var (rows, cols) in BiasShapes(backend))
        {
            var dy = TestData.Uniform(rows + 7, rows * cols);
            var prior = TestData.Uniform(cols + 7, cols, 0.5f, 1.5f);
            using var tdy = dev.FromHost(dy, rows, cols);
            using var tdb = dev.FromHost(prior, cols);
            BiasAdd.Backward(tdy, tdb);
            var expected = ElementwiseReference.BiasGrad(dy, prior);
            // Float sums of up to 600 values in [-1, 1].
            Check.Close(tdb.ToArray(), expected, OpTolerances.BiasGrad, $"{backend} bias grad {rows}x{cols}");
            BiasAdd.Backward(tdy, tdb);
            var twice = ElementwiseReference.BiasGrad(dy, prior).Select((v, c) => v + (v - prior[c])).ToArray();
            Check.Close(tdb.ToArray(), twice, new Tolerance(2e-5, 1e-5), $"{backend} bias grad accumulated twice {rows}x{cols}");
        }
    }

    /// <summary>The same inputs give the same bits: run to run, and on the CPU for any thread count.</summary>
    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void BiasBackwardIsDeterministic(string backend)
    {
        var dev = Backends.Get(backend);
        (int rows, int cols) = Backends.IsSimulator(backend) ? (67, 45) : (1001, 131);
        var dy = TestData.Normal(3, rows * cols);
        float[] Run(Device d)
        {
            using var tdy = d.FromHost(dy, rows, cols);
            using var tdb = d.Zeros(cols);
            BiasAdd.Backward(tdy, tdb);
            return tdb.ToArray();
        }
        var first = Run(dev);
        Assert.Equal(first, Run(dev));
        if (dev is CpuDevice)
        {
            using var single = CpuDevice.Create(1);
            using var many = CpuDevice.Create(8);
            Assert.Equal(first, Run(single));
            Assert.Equal(first, Run(many));
        }
    }

    /// <summary>The bias reference gradient against central differences of L(b) = Σ w ⊙ (x + b).</summary>
    [Fact]
    public void BiasReferenceGradientMatchesFiniteDifferences()
    {
        const int rows = 6, cols = 5;
        var x = TestData.Uniform(1, rows * cols);
        var w = TestData.ToDouble(TestData.Uniform(2, rows * cols));
        var wf = w.Select(v => (float)v).ToArray();
        var b = TestData.ToDouble(TestData.Uniform(3, cols));
        double Loss(double[] bias)
        {
            double s = 0;
            for (int i = 0; i < x.Length; i++) s += w[i] * ((double)x[i] + bias[i % cols]);
            return s;
        }
        var numeric = FiniteDifference.Gradient(Loss, b);
        var analytic = ElementwiseReference.BiasGrad(wf, new float[cols]);
        Check.Close(analytic, numeric, new Tolerance(1e-6, 1e-6), "bias reference gradient");
    }

    [Fact]
    public void CpuSingleThreadedPathDoesNotAllocate()
    {
        using var dev = CpuDevice.Create(2);
        using var x = dev.FromHost(TestData.Uniform(1, 64 * 48), 64, 48);
        using var y = dev.Allocate(64, 48);
        using var b = dev.Zeros(48);
        void Run()
        {
            Elementwise.Add(x, x, y);
            Elementwise.Multiply(x, x, y);
            Elementwise.Scale(x, 2f, y);
            Elementwise.Axpy(2f, x, y);
            BiasAdd.Forward(x, b, y);
            BiasAdd.Backward(x, b);
        }
        Run();
        long before = GC.GetAllocatedBytesForCurrentThread();
        Run();
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void BadArgumentsAreClearErrors()
    {
        using var dev = CpuDevice.Create(1);
        using var x = dev.Allocate(4, 6);
        using var bias5 = dev.Allocate(5);
        var e = Assert.Throws<ArgumentException>(() => BiasAdd.Forward(x, bias5, x));
        Assert.Contains("last dimension 6", e.Message);
        using var bias2d = dev.Allocate(1, 6);
        Assert.Contains("1-D", Assert.Throws<ArgumentException>(() => BiasAdd.Backward(x, bias2d)).Message);
        using var small = dev.Allocate(23);
        Assert.Contains("Elementwise.Add", Assert.Throws<ArgumentException>(() => Elementwise.Add(x, x, small)).Message);
        Assert.Throws<ArgumentException>(() => Elementwise.Axpy(1f, small, x));
    }

    [SkippableFact]
    public void TensorsOnDifferentDevicesAreRejected()
    {
        var sim = Backends.Get(Backends.IlgpuCpu);
        using var cpu = CpuDevice.Create(1);
        using var a = cpu.Allocate(8);
        using var b = sim.Allocate(8);
        var e = Assert.Throws<ArgumentException>(() => Elementwise.Add(a, b, a));
        Assert.Contains("lives on", e.Message);
    }

    public static TheoryData<string> KernelNames()
    {
        var data = new TheoryData<string>();
        foreach (var m in KernelMethods()) data.Add($"{m.DeclaringType!.Name}.{m.Name}");
        return data;
    }

    private static IEnumerable<MethodInfo> KernelMethods() =>
        new[] { typeof(ElementwiseKernels) }
            .SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public))
            .Where(m => m.GetCustomAttribute<IlgpuKernelAttribute>() is not null);
    // The generic activation kernels are lowered once per operator struct by KernelCompilationTests.

    /// <summary>Every elementwise/activation kernel lowers to PTX (SM_80, SM_90) and OpenCL C without a device.</summary>
    [Theory]
    [MemberData(nameof(KernelNames))]
    public void KernelLowersToPtxAndOpenClC(string kernel)
    {
        var method = KernelMethods().Single(m => $"{m.DeclaringType!.Name}.{m.Name}" == kernel);
        Assert.Equal(Grouping.Explicit, method.GetCustomAttribute<IlgpuKernelAttribute>()!.Grouping);
        var entry = EntryPointDescription.FromExplicitlyGroupedKernel(method);
        using var context = Context.Create(b => b.EnableAlgorithms().Optimize(OptimizationLevel.O2));
        foreach (var arch in new[] { CudaArchitecture.SM_80, CudaArchitecture.SM_90 })
        {
            using var ptx = new PTXBackend(context, new CudaCapabilityContext(arch), arch, CudaInstructionSet.ISA_80, nvvmAPI: null);
            var compiled = (PTXCompiledKernel)ptx.Compile(entry, default);
            Assert.Contains(".entry", compiled.PTXAssembly);
        }
        var caps = new CLCapabilityContext(float16: false, float64: true, genericAddressSpace: true, int64_Atomics: true, subGroups: false);
        using var cl = new CLBackend(context, caps, CLDeviceVendor.Other, CLCVersion.CL20);
        var source = ((CLCompiledKernel)cl.Compile(entry, default)).Source;
        Assert.Contains("kernel", source);
    }
}
