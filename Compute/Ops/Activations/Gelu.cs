using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;

namespace CrateIL.Compute.Ops;

/// <summary>Which GELU formula.</summary>
public enum GeluForm
{
    /// <summary>0.5x(1 + tanh(√(2/π)(x + 0.044715x³))): the common fast approximation.</summary>
    Tanh,
    /// <summary>x·Φ(x) = 0.5x(1 + erf(x/√2)) with a float erf approximation (Abramowitz–Stegun 7.1.26, |Δerf| ≤ 1.5e-7).</summary>
    Erf,
}

/// <summary>GELU forward and backward (the exact derivative of each form). Tensors are flat arrays of equal length.</summary>
public static class Gelu
{
    /// <summary>y = GELU(x). <paramref name="y"/> may be <paramref name="x"/>.</summary>
    public static void Forward(Tensor x, Tensor y, GeluForm form = GeluForm.Erf)
    {
        ElementwiseChecks.SameLength("Gelu.Forward", "x", x, "y", y);
        CheckForm(form);
        if (x.Length == 0) return;
        switch (x.Device)
        {
            case CpuDevice cpu: ActivationsCpu.Gelu(cpu, x, y, form); break;
            case IlgpuDevice gpu: ActivationsIlgpu.Gelu(gpu, x, y, form); break;
            default: throw ElementwiseChecks.Unsupported("Gelu.Forward", x.Device);
        }
    }

    /// <summary>dx = dy ⊙ GELU'(x) from the forward input x (assigns dx). <paramref name="dx"/> may be <paramref name="dy"/>.</summary>
    public static void Backward(Tensor dy, Tensor x, Tensor dx, GeluForm form = GeluForm.Erf)
    {
        ElementwiseChecks.SameLength("Gelu.Backward", "dy", dy, "x", x, "dx", dx);
        CheckForm(form);
        if (dy.Length == 0) return;
        switch (dy.Device)
        {
            case CpuDevice cpu: ActivationsCpu.GeluBackward(cpu, dy, x, dx, form); break;
            case IlgpuDevice gpu: ActivationsIlgpu.GeluBackward(gpu, dy, x, dx, form); break;
            default: throw ElementwiseChecks.Unsupported("Gelu.Backward", dy.Device);
        }
    }

    private static void CheckForm(GeluForm form)
    {
        if (form is not (GeluForm.Tanh or GeluForm.Erf))
            throw new ArgumentOutOfRangeException(nameof(form), form, "unknown GELU form");
    }
}
