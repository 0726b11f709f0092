using CrateIL.Compute.Ops;

namespace CrateIL.Nn.Layers;

/// <summary>
/// Float64 ground truth for <see cref="IstaBlock"/>: LayerNorm, then the ISTA step (no residual), and the backward
/// pass through both, composed from <see cref="LayerNormReference"/> and <see cref="IstaReference"/>.
/// </summary>
public static class IstaBlockReference
{
    public sealed record Result(double[] Y, double[] Dx, double[] DGamma, double[] DBeta, double[] DDict);

    public static Result Run(double[] x, double[] gamma, double[] beta, double[] dict, double[] dy,
        int rows, int dim, double eta, double lambda, bool symmetric)
    {
        var (z, mean, rstd) = LayerNormReference.Forward(x, gamma, beta, rows, dim);
        var y = IstaReference.Forward(z, dict, rows, dim, eta, lambda, symmetric);
        var (dz, ddict) = IstaReference.Backward(z, dict, dy, rows, dim, eta, lambda, symmetric);
        var (dx, dg, db) = LayerNormReference.Backward(dz, x, gamma, mean, rstd, rows, dim);
        return new Result(y, dx, dg, db, ddict);
    }
}
