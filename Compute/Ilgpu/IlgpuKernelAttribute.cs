namespace CrateIL.Compute.Ilgpu;

/// <summary>How a kernel is launched: implicitly grouped (IndexND entry) or explicitly grouped (KernelConfig).</summary>
public enum Grouping { Implicit, Explicit }

/// <summary>
/// Marks a static method as an ILGPU kernel. Tests find every marked method by reflection and compile it to
/// PTX (SM_80, SM_90) and OpenCL C, so each kernel is proven to lower without a GPU.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class IlgpuKernelAttribute(Grouping grouping) : Attribute
{
    public Grouping Grouping { get; } = grouping;
}
