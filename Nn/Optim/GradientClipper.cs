using CrateIL.Compute.Devices;
using CrateIL.Compute.Ops;
using CrateIL.Compute.Tensors;
using CrateIL.Nn.Parameters;

namespace CrateIL.Nn.Optim;

/// <summary>
/// Global gradient-norm clipping as <c>torch.nn.utils.clip_grad_norm_</c>: the L2 norm over all gradients (one
/// deterministic reduction over the store's contiguous gradient buffer), then every gradient scaled by
/// min(1, max_norm/(norm + 1e-6)). The norm (before clipping) doubles as the NaN/Inf guard: when it is not finite the
/// gradients are left untouched and the caller should stop.
/// <para>
/// Two ways to call it. The overloads that take a <c>norm</c> tensor stay on the device: the norm is reduced into that
/// one-element tensor and the clip coefficient is computed and applied by a kernel that reads it there (on the CPU
/// device it is host memory anyway), so a training step never waits for the device; the caller reads the norm when it
/// wants it (the trainer: once per logging interval). The overloads that return a float do the same into the clipper's
/// own one-element buffer and read it back (they wait for the device). Both give the same bits.
/// </para>
/// Allocates nothing per step.
/// </summary>
public sealed class GradientClipper : IDisposable
{
    private readonly Tensor _norm;

    public GradientClipper(Device device)
    {
        ArgumentNullException.ThrowIfNull(device);
        _norm = device.Allocate(1);
    }

    public Device Device => _norm.Device;

    /// <summary>torch's clip coefficient, in float32 as torch computes it on float32 gradients.</summary>
    public static float Coefficient(float norm, float maxNorm) => Math.Min(1f, maxNorm / (norm + 1e-6f));

    /// <summary>The L2 norm of <paramref name="grads"/> without changing them (waits for the device).</summary>
    public float Norm(Tensor grads)
    {
        Norm(grads, _norm);
        return Read(_norm);
    }

    /// <summary>The L2 norm of <paramref name="grads"/> into the one-element <paramref name="norm"/>, left on the device.</summary>
    public void Norm(Tensor grads, Tensor norm)
    {
        CheckGrads(grads);
        Reduce.All(grads, norm, ReduceOp.L2Norm);
    }

    /// <summary>Clips <paramref name="grads"/> to a global L2 norm of at most <paramref name="maxNorm"/>; returns the norm before clipping (waits for the device).</summary>
    public float Clip(Tensor grads, float maxNorm)
    {
        Clip(grads, maxNorm, _norm);
        return Read(_norm);
    }

    /// <summary>
    /// Clips <paramref name="grads"/> to a global L2 norm of at most <paramref name="maxNorm"/> without waiting for the
    /// device: the norm before clipping goes into the one-element <paramref name="norm"/> and the coefficient is applied
    /// on the device from there; a non-finite norm leaves the gradients untouched.
    /// </summary>
    public void Clip(Tensor grads, float maxNorm, Tensor norm)
    {
        if (!(maxNorm > 0) || float.IsInfinity(maxNorm))
            throw new ArgumentOutOfRangeException(nameof(maxNorm), maxNorm, "GradientClipper: max norm must be finite and positive");
        Norm(grads, norm);
        switch (grads.Device)
        {
            case CpuDevice:
                // Host memory: the norm is simply there.
                float value = norm.AsSpan()[0];
                if (!float.IsFinite(value)) return;
                float coefficient = Coefficient(value, maxNorm);
                if (coefficient < 1f) Elementwise.Scale(grads, coefficient, grads);
                break;
            case IlgpuDevice gpu:
                GradientClipKernels.Apply(gpu, grads, norm, maxNorm);
                break;
            default:
                throw new NotSupportedException($"GradientClipper has no implementation for device {grads.Device.Spec}");
        }
    }

    /// <summary>Clips every gradient of <paramref name="store"/> together; returns the norm before clipping (waits for the device).</summary>
    public float Clip(ParameterStore store, float maxNorm)
    {
        Clip(store, maxNorm, _norm);
        return Read(_norm);
    }

    /// <summary>Clips every gradient of <paramref name="store"/> together, the norm into <paramref name="norm"/> on the device.</summary>
    public void Clip(ParameterStore store, float maxNorm, Tensor norm)
    {
        ArgumentNullException.ThrowIfNull(store);
        if (!store.IsBuilt) throw new InvalidOperationException("GradientClipper: the parameter store is not built");
        Clip(store.Grads, maxNorm, norm);
    }

    private void CheckGrads(Tensor grads)
    {
        ArgumentNullException.ThrowIfNull(grads);
        if (!ReferenceEquals(grads.Device, Device))
            throw new ArgumentException($"GradientClipper: gradients live on {grads.Device.Spec} but the clipper on {Device.Spec}", nameof(grads));
    }

    private static float Read(Tensor norm)
    {
        Span<float> value = stackalloc float[1];
        norm.CopyTo(value);
        return value[0];
    }

    public void Dispose() => _norm.Dispose();
}
