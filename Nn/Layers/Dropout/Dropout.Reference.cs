namespace CrateIL.Nn.Layers;

/// <summary>
/// Float64 reference of <see cref="Dropout"/>. The mask is defined by <see cref="DropoutHash"/> (it is the
/// specification, not an implementation detail), evaluated here one element at a time.
/// </summary>
public static class DropoutReference
{
    public static bool[] Mask(int length, float p, ulong seed, long step)
    {
        var (k0, k1) = DropoutHash.Key(seed, step);
        uint threshold = DropoutHash.Threshold(p);
        var keep = new bool[length];
        for (int i = 0; i < length; i++) keep[i] = DropoutHash.Hash((uint)i, k0, k1) >= threshold;
        return keep;
    }

    /// <summary>y = x ⊙ mask/(1 − p); the backward pass is the same map applied to dy.</summary>
    public static double[] Forward(double[] x, float p, ulong seed, long step)
    {
        var keep = Mask(x.Length, p, seed, step);
        double scale = 1.0 / (1.0 - p);
        var y = new double[x.Length];
        for (int i = 0; i < x.Length; i++) y[i] = keep[i] ? x[i] * scale : 0;
        return y;
    }
}
