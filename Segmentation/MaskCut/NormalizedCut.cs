using CrateIL.Segmentation.Linalg;

namespace CrateIL.Segmentation.MaskCut;

/// <summary>Which eigensolver computes the Fiedler vector.</summary>
public enum EigenSolverKind
{
    /// <summary>Dense for graphs up to <see cref="NormalizedCut.DenseLimit"/> nodes, Lanczos above.</summary>
    Auto,
    /// <summary>Householder tridiagonalisation + QL on the dense normalised Laplacian (O(N³)).</summary>
    Dense,
    /// <summary>Lanczos with full re-orthogonalisation on D^(-½)AD^(-½), deflating D^(½)·1 (matrix-free).</summary>
    Lanczos,
}

/// <summary>The Fiedler vector and its eigenvalue λ of (D − A)v = λDv.</summary>
public sealed record FiedlerVector(double[] Vector, double Eigenvalue, int MatVecs, bool Converged);

/// <summary>
/// Normalised cut (Shi &amp; Malik): the second-smallest generalised eigenpair of (D − A)v = λDv, solved as the
/// standard problem L_sym·u = λu with L_sym = I − D^(-½)AD^(-½), v = D^(-½)u, ‖u‖ = 1 (so vᵀDv = 1 as in
/// scipy.linalg.eigh(D − A, D)). Sign: canonicalised so that the entry of largest |v| is positive (first on
/// ties); see <see cref="MaskCutter"/> for why that is the sign CutLER's corner rule needs.
/// </summary>
public sealed class NormalizedCut
{
    /// <summary>Graphs up to this many nodes use the dense solver under <see cref="EigenSolverKind.Auto"/>.</summary>
    public const int DenseLimit = 256;

    private LanczosSolver? _lanczos;

    public FiedlerVector Solve(AffinityGraph graph, EigenSolverKind kind = EigenSolverKind.Auto, double tolerance = 1e-10)
    {
        int n = graph.Size;
        bool dense = kind == EigenSolverKind.Dense || (kind == EigenSolverKind.Auto && n <= DenseLimit);
        double[] u;
        double lambda;
        int matvecs;
        bool converged = true;
        if (dense)
        {
            var values = SymmetricEigen.Decompose(graph.DenseNormalizedLaplacian(), n, out var vectors);
            u = vectors.AsSpan(n, n).ToArray();   // second smallest (the smallest, 0, is D^½·1)
            lambda = values[1];
            matvecs = 0;
        }
        else
        {
            if (_lanczos is null || _lanczos.Size != n || _lanczos.Tolerance != tolerance) _lanczos = new LanczosSolver(n) { Tolerance = tolerance };
            u = new double[n];
            var r = _lanczos.Largest(graph, u, graph.TrivialEigenvector());
            lambda = 1 - r.Value;
            matvecs = r.MatVecs;
            converged = r.Converged;
        }
        var v = new double[n];
        var degree = graph.Degree;
        for (int i = 0; i < n; i++) v[i] = u[i] / Math.Sqrt(degree[i]);
        if (SymmetricEigen.CanonicalSign(v) < 0)
            for (int i = 0; i < n; i++) v[i] = -v[i];
        return new FiedlerVector(v, lambda, matvecs, converged);
    }
}
