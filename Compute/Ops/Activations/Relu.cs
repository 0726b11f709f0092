using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;

namespace CrateIL.Compute.Ops;

/// <summary>ReLU, y = max(x, 0), and its backward pass. Tensors are treated as flat arrays of equal length.</summary>
public static class Relu
{
    /// <summary>y = max(x, 0). <paramref name="y"/> may be <paramref name="x"/> (in place).</summary>
    public static void Forward(Tensor x, Tensor y)
    {
        ElementwiseChecks.SameLength("Relu.Forward", "x", x, "y", y);
        if (x.Length == 0) return;
        switch (x.Device)
        {
            case CpuDevice cpu: ActivationsCpu.Relu(cpu, x, y); break;
            case IlgpuDevice gpu: ActivationsIlgpu.Relu(gpu, x, y); break;
            default: throw ElementwiseChecks.Unsupported("Relu.Forward", x.Device);
        }
    }

    /// <summary>
    /// dx = dy ⊙ [saved > 0] (assigns dx). <paramref name="saved"/> may be the forward input x or the forward
    /// output y = ReLU(x): x > 0 ⇔ y > 0, so a layer may keep whichever it has. The gradient at x = 0 is 0.
    /// <paramref name="dx"/> may be <paramref name="dy"/>.
    /// </summary>
    public static void Backward(Tensor dy, Tensor saved, Tensor dx)
    {
        ElementwiseChecks.SameLength("Relu.Backward", "dy", dy, "saved", saved, "dx", dx);
        if (dy.Length == 0) return;
        switch (dy.Device)
        {
            case CpuDevice cpu: ActivationsCpu.ReluBackward(cpu, dy, saved, dx); break;
            case IlgpuDevice gpu: ActivationsIlgpu.PositiveMask(gpu, dy, saved, dx); break;
            default: throw ElementwiseChecks.Unsupported("Relu.Backward", dy.Device);
        }
    }
}
