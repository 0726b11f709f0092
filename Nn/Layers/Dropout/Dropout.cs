using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;

namespace CrateIL.Nn.Layers;

/// <summary>
/// Inverted dropout with a deterministic mask: in training, y_i = x_i/(1 − p) if element i is kept, else 0, where
/// "kept" is a hash of (seed, step, i) (<see cref="DropoutHash"/>); identical on every backend. Backward applies the
/// same mask, regenerated from the seed and the step of the last Forward (nothing is stored). p = 0 and evaluation
/// mode are the identity. No parameters.
/// </summary>
public sealed class Dropout
{
    private const string Layer = "Dropout";
    private long _step;
    private long _length = -1;
    private bool _applied;

    public Dropout(float p, ulong seed = 0)
    {
        if (!(p >= 0f && p < 1f)) throw new ArgumentOutOfRangeException(nameof(p), p, $"{Layer}: p must be in [0, 1)");
        P = p;
        Seed = seed;
    }

    /// <summary>Drop probability.</summary>
    public float P { get; }

    /// <summary>Seed of this layer's mask stream (give each dropout layer of a model its own).</summary>
    public ulong Seed { get; }

    /// <summary>In evaluation mode (false) the layer is the identity.</summary>
    public bool Training { get; set; } = true;

    /// <summary>y = dropout(x) with the mask of (<see cref="Seed"/>, <paramref name="step"/>). y may be x.</summary>
    public void Forward(Tensor x, Tensor y, long step)
    {
        Check(nameof(x), x, nameof(y), y);
        _step = step;
        _length = x.Length;
        _applied = Training && P > 0f;
        if (_applied) DropoutOp.Apply(x, y, P, Seed, step);
        else if (!ReferenceEquals(x, y)) x.CopyTo(y);
    }

    /// <summary>dx = dy ⊙ mask/(1 − p) with the mask of the last Forward (assigned; dx may be dy).</summary>
    public void Backward(Tensor dy, Tensor dx)
    {
        if (_length < 0) throw new InvalidOperationException($"{Layer}: Backward called before Forward");
        Check(nameof(dy), dy, nameof(dx), dx);
        if (dy.Length != _length) throw new ArgumentException($"{Layer}: dy{dy.Shape} has {dy.Length} elements but Forward saw {_length}", nameof(dy));
        if (_applied) DropoutOp.Apply(dy, dx, P, Seed, _step);
        else if (!ReferenceEquals(dy, dx)) dy.CopyTo(dx);
    }

    private static void Check(string nameIn, Tensor input, string nameOut, Tensor output)
    {
        ArgumentNullException.ThrowIfNull(input, nameIn);
        ArgumentNullException.ThrowIfNull(output, nameOut);
        if (input.Length != output.Length)
            throw new ArgumentException($"{Layer}: {nameOut}{output.Shape} must have as many elements as {nameIn}{input.Shape}", nameOut);
        if (!ReferenceEquals(input.Device, output.Device))
            throw new ArgumentException($"{Layer}: {nameIn} lives on {input.Device.Spec} but {nameOut} on {output.Device.Spec}", nameOut);
        if (input.Length > int.MaxValue)
            throw new ArgumentException($"{Layer}: {nameIn}{input.Shape} has more than {int.MaxValue} elements", nameIn);
    }
}

/// <summary>The masked, scaled copy shared by <see cref="Dropout.Forward"/> and <see cref="Dropout.Backward"/>.</summary>
internal static class DropoutOp
{
    /// <summary>y_i = keep(seed, step, i) ? x_i/(1 − p) : 0 for every i (y may be x).</summary>
    public static void Apply(Tensor x, Tensor y, float p, ulong seed, long step)
    {
        if (x.Length == 0) return;
        var (k0, k1) = DropoutHash.Key(seed, step);
        var args = new DropoutArgs(k0, k1, DropoutHash.Threshold(p), DropoutHash.Scale(p));
        switch (x.Device)
        {
            case CpuDevice cpu: DropoutCpu.Apply(cpu, x, y, args); break;
            case IlgpuDevice gpu: DropoutIlgpu.Apply(gpu, x, y, args); break;
            default: throw new NotSupportedException($"Dropout has no implementation for device {x.Device.Spec}");
        }
    }
}

/// <summary>Mask key, drop threshold and keep scale of one dropout call.</summary>
internal readonly struct DropoutArgs(uint k0, uint k1, uint threshold, float scale)
{
    public readonly uint K0 = k0;
    public readonly uint K1 = k1;
    public readonly uint Threshold = threshold;
    public readonly float Scale = scale;
}
