using CrateIL.Compute.Devices;
using CrateIL.Compute.Ops;
using CrateIL.Compute.Tensors;
using CrateIL.Nn.Parameters;

namespace CrateIL.Nn.Optim;

/// <summary>
/// Global gradient-norm clipping as <c>torch.nn.utils.clip_grad_norm_</c>: the L2 norm over all gradients (one
/// deterministic reduction over the store's contiguous gradient buffer), then every gradient scaled by
/// min(1, max_norm/(norm + 1e-6)). The returned norm (before clipping) doubles as the NaN/Inf guard: when it is
/// not finite the gradients are left untouched and the caller should skip the step.
/// Owns a one-element device buffer for the norm, so clipping allocates nothing per step.
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
        ArgumentNullException.ThrowIfNull(grads);
        if (!ReferenceEquals(grads.Device, Device))
            throw new ArgumentException($"GradientClipper: gradients live on {grads.Device.Spec} but the clipper on {Device.Spec}", nameof(grads));
        Reduce.All(grads, _norm, ReduceOp.L2Norm);
        Span<float> value = stackalloc float[1];
        _norm.CopyTo(value);
        return value[0];
    }

    /// <summary>Clips <paramref name="grads"/> to a global L2 norm of at most <paramref name="maxNorm"/>; returns the norm before clipping.</summary>
    public float Clip(Tensor grads, float maxNorm)
    {
        if (!(maxNorm > 0) || float.IsInfinity(maxNorm))
            throw new ArgumentOutOfRangeException(nameof(maxNorm), maxNorm, "GradientClipper: max norm must be finite and positive");
        float norm = Norm(grads);
        if (!float.IsFinite(norm)) return norm;
        float coefficient = Coefficient(norm, maxNorm);
        if (coefficient < 1f) Elementwise.Scale(grads, coefficient, grads);
        return norm;
    }

    /// <summary>Clips every gradient of <paramref name="store"/> together.</summary>
    public float Clip(ParameterStore store, float maxNorm)
    {
        ArgumentNullException.ThrowIfNull(store);
        if (!store.IsBuilt) throw new InvalidOperationException("GradientClipper: the parameter store is not built");
        return Clip(store.Grads, maxNorm);
    }

    public void Dispose() => _norm.Dispose();
}
