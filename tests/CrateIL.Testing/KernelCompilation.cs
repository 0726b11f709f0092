using System.Reflection;
using System.Text.RegularExpressions;
using CrateIL.Compute.Ilgpu;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.OpenCL;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;
using Xunit;

namespace CrateIL.Testing;

/// <summary>
/// Lowers kernels to PTX and OpenCL C without any GPU: finds every method marked <see cref="IlgpuKernelAttribute"/>
/// in an assembly and compiles it with ILGPU's backends. Test projects feed <see cref="Names"/> to a theory so
/// that a failure names the kernel.
/// </summary>
public static partial class KernelCompilation
{
    private const BindingFlags AnyStatic = BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly;

    /// <summary>CUDA limit on static shared memory per group, which every kernel must respect.</summary>
    public const int MaxSharedBytes = 48 * 1024;

    private static readonly Lock Gate = new();
    private static Context? _context;
    private static readonly Dictionary<CudaArchitecture, PTXBackend> PtxBackends = [];
    private static CLBackend? _clBackend;

    /// <summary>Every [IlgpuKernel] method in <paramref name="assembly"/>, by "Type.Method" name.</summary>
    public static IReadOnlyDictionary<string, MethodInfo> Find(Assembly assembly)
    {
        var found = new SortedDictionary<string, MethodInfo>(StringComparer.Ordinal);
        foreach (var type in assembly.GetTypes())
            foreach (var method in type.GetMethods(AnyStatic))
            {
                if (method.GetCustomAttribute<IlgpuKernelAttribute>() is null) continue;
                foreach (var (suffix, kernel) in Instantiations(assembly, method))
                {
                    var name = $"{type.FullName}.{method.Name}{suffix}";
                    if (!found.TryAdd(name, kernel))
                        throw new InvalidOperationException($"Two kernels are named {name}; kernel methods must not be overloaded");
                }
            }
        return found;
    }

    /// <summary>
    /// A plain kernel as itself; a generic kernel over one struct type parameter (an operator kernel such as
    /// <c>UnaryKernel&lt;TOp&gt;</c>) once per non-generic struct of <paramref name="assembly"/> that satisfies its
    /// interface constraints, named <c>Kernel&lt;Op&gt;</c>: every operator the kernel can be launched with is lowered.
    /// </summary>
    private static IEnumerable<(string Suffix, MethodInfo Kernel)> Instantiations(Assembly assembly, MethodInfo method)
    {
        if (!method.IsGenericMethodDefinition)
        {
            yield return ("", method);
            yield break;
        }
        var parameters = method.GetGenericArguments();
        if (parameters.Length != 1)
            throw new InvalidOperationException($"{method.DeclaringType?.FullName}.{method.Name}: generic kernels take one operator type parameter");
        var constraints = parameters[0].GetGenericParameterConstraints().Where(c => c.IsInterface).ToArray();
        if (constraints.Length == 0)
            throw new InvalidOperationException($"{method.DeclaringType?.FullName}.{method.Name}: the operator type parameter needs an interface constraint");
        bool any = false;
        foreach (var op in assembly.GetTypes().Where(t => t.IsValueType && !t.IsGenericTypeDefinition && !t.IsEnum && constraints.All(c => c.IsAssignableFrom(t))).OrderBy(t => t.FullName, StringComparer.Ordinal))
        {
            any = true;
            yield return ($"<{op.Name}>", method.MakeGenericMethod(op));
        }
        if (!any) throw new InvalidOperationException($"{method.DeclaringType?.FullName}.{method.Name}: no operator struct satisfies its constraints");
    }

    /// <summary>Theory rows: one kernel name per row.</summary>
    public static TheoryData<string> Names(Assembly assembly)
    {
        var data = new TheoryData<string>();
        foreach (var name in Find(assembly).Keys) data.Add(name);
        return data;
    }

    public static MethodInfo Get(Assembly assembly, string name) =>
        Find(assembly).TryGetValue(name, out var m) ? m : throw new KeyNotFoundException($"No [IlgpuKernel] method {name} in {assembly.GetName().Name}");

    /// <summary>The PTX assembly of <paramref name="kernel"/> for <paramref name="architecture"/>.</summary>
    public static string ToPtx(MethodInfo kernel, CudaArchitecture architecture)
    {
        var entry = EntryPoint(kernel);
        var context = Context;
        lock (Gate)
        {
            if (!PtxBackends.TryGetValue(architecture, out var backend))
            {
                backend = new PTXBackend(context, new CudaCapabilityContext(architecture), architecture, CudaInstructionSet.ISA_80, null);
                PtxBackends.Add(architecture, backend);
            }
            return ((PTXCompiledKernel)backend.Compile(entry, default)).PTXAssembly;
        }
    }

    /// <summary>The OpenCL C source of <paramref name="kernel"/> (OpenCL C 2.0, no sub-groups, as CrateIL's kernels use).</summary>
    public static string ToOpenClC(MethodInfo kernel)
    {
        var entry = EntryPoint(kernel);
        var context = Context;
        lock (Gate)
        {
            _clBackend ??= new CLBackend(context,
                new CLCapabilityContext(false, true, true, true, false),
                CLDeviceVendor.Other, CLCVersion.CL20);
            return ((CLCompiledKernel)_clBackend.Compile(entry, default)).Source;
        }
    }

    /// <summary>
    /// The body of every project's kernel-lowering theory: the named kernel compiles to PTX for SM_80 and SM_90
    /// within <see cref="MaxSharedBytes"/> of shared memory, and to OpenCL C.
    /// </summary>
    public static void AssertLowers(Assembly assembly, string kernel)
    {
        var method = Get(assembly, kernel);
        foreach (var arch in new[] { CudaArchitecture.SM_80, CudaArchitecture.SM_90 })
        {
            var ptx = ToPtx(method, arch);
            Assert.Contains(".entry", ptx);
            long shared = SharedBytes(ptx);
            Assert.True(shared <= MaxSharedBytes, $"{kernel} declares {shared} bytes of shared memory for {arch}; the limit is {MaxSharedBytes}");
        }
        Assert.Contains("kernel", ToOpenClC(method));
    }

    /// <summary>Bytes of statically allocated shared memory declared in a PTX module.</summary>
    public static long SharedBytes(string ptx)
    {
        long total = 0;
        foreach (Match m in SharedDeclaration().Matches(ptx))
            total += long.Parse(m.Groups["bytes"].Value) * ElementBytes(m.Groups["type"].Value);
        return total;
    }

    private static int ElementBytes(string ptxType) => ptxType switch
    {
        "b8" or "u8" or "s8" => 1,
        "b16" or "u16" or "s16" or "f16" => 2,
        "b32" or "u32" or "s32" or "f32" => 4,
        _ => 8,
    };

    [GeneratedRegex(@"\.shared\s+(?:\.align\s+\d+\s+)?\.(?<type>[a-z]+\d+)\s+[\w$]+\[(?<bytes>\d+)\]")]
    private static partial Regex SharedDeclaration();

    private static EntryPointDescription EntryPoint(MethodInfo kernel)
    {
        var attribute = (kernel.IsGenericMethod ? kernel.GetGenericMethodDefinition() : kernel).GetCustomAttribute<IlgpuKernelAttribute>()
            ?? throw new ArgumentException($"{kernel.DeclaringType?.FullName}.{kernel.Name} is not marked [IlgpuKernel]");
        return attribute.Grouping == Grouping.Explicit
            ? EntryPointDescription.FromExplicitlyGroupedKernel(kernel)
            : EntryPointDescription.FromImplicitlyGroupedKernel(kernel);
    }

    /// <summary>A device-less context with the same optimisation settings as DeviceRegistry's.</summary>
    private static Context Context
    {
        get
        {
            lock (Gate)
                return _context ??= ILGPU.Context.Create(b => b.EnableAlgorithms().Optimize(OptimizationLevel.O2));
        }
    }
}
