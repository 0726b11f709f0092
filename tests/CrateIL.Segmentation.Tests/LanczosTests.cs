using CrateIL.Segmentation.Linalg;
using CrateIL.Segmentation.MaskCut;
using CrateIL.Testing;
using Xunit;

namespace CrateIL.Segmentation.Tests;

public class LanczosTests
{
    private static double[] RandomSymmetric(int seed, int n)
    {
        var r = TestData.Normal(seed, (long)n * n);
        var a = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) a[i * n + j] = 0.5 * (r[i * n + j] + r[j * n + i]);
        return a;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(7)]
    [InlineData(65)]
    public void Dense_eigen_satisfies_Av_equals_lambda_v_with_orthonormal_vectors(int n) =>
        CheckDecomposition(RandomSymmetric(11 + n, n), n);

    /// <summary>
    /// The tridiagonal of a real rank-deficient covariance (PCA of a CI model's key features over the labelme photos):
    /// many eigenvalues at rounding level (~1e-14) coupled by ~1e-24, which a purely local deflation test never
    /// accepted — the QL iteration gave up after 100 sweeps and `crate pca` crashed. Checks T·v = λ·v and orthonormality.
    /// </summary>
    [Fact]
    public void Tridiagonal_QL_converges_on_a_rank_deficient_pca_covariance()
    {
        var rows = File.ReadAllLines(Path.Combine(AppContext.BaseDirectory, "EigenFixtures", "pca_tridiagonal_192.txt"))
            .Where(l => !l.StartsWith('#')).Select(l => l.Split(' ').Select(v => double.Parse(v, System.Globalization.CultureInfo.InvariantCulture)).ToArray()).ToArray();
        int n = rows.Length;
        Assert.Equal(192, n);
        double[] d = rows.Select(r => r[0]).ToArray(), e = rows.Select(r => r[1]).ToArray();
        var vectors = new double[n * n];
        var values = SymmetricEigen.DecomposeTridiagonal(d, e, n, vectors);
        double scale = values.Max(Math.Abs);
        for (int k = 0; k < n; k++)
        {
            for (int i = 0; i < n; i++)
            {
                double tv = d[i] * vectors[k * n + i];
                if (i > 0) tv += e[i - 1] * vectors[k * n + i - 1];
                if (i + 1 < n) tv += e[i] * vectors[k * n + i + 1];
                Check.Close(tv, values[k] * vectors[k * n + i], new Tolerance(1e-12 * scale, 0), $"(T v_{k})[{i}]");
            }
            double norm = 0;
            for (int j = 0; j < n; j++) norm += vectors[k * n + j] * vectors[k * n + j];
            Check.Close(norm, 1, new Tolerance(1e-12 * n, 0), $"|v_{k}|²");
        }
    }

    private static double[] CheckDecomposition(double[] a, int n)
    {
        var values = SymmetricEigen.Decompose(a, n, out var vectors);
        double scale = 0;
        foreach (double x in a) scale = Math.Max(scale, Math.Abs(x));
        for (int k = 0; k < n; k++)
        {
            if (k > 0) Assert.True(values[k] >= values[k - 1], $"eigenvalues not ascending at {k}");
            for (int i = 0; i < n; i++)
            {
                double av = 0;
                for (int j = 0; j < n; j++) av += a[i * n + j] * vectors[k * n + j];
                Check.Close(av, values[k] * vectors[k * n + i], new Tolerance(1e-11 * n * scale, 0), $"(A v_{k})[{i}]");
            }
            for (int l = 0; l <= k; l++)
            {
                double dot = 0;
                for (int j = 0; j < n; j++) dot += vectors[k * n + j] * vectors[l * n + j];
                Check.Close(dot, k == l ? 1 : 0, new Tolerance(1e-12 * n, 0), $"v_{k}·v_{l}");
            }
        }
        return values;
    }

    [Fact]
    public void Tridiagonal_path_graph_laplacian_has_known_spectrum()
    {
        // T = tridiag(−1, 2, −1) of order n: λ_k = 2 − 2cos(kπ/(n+1)), k = 1..n.
        const int n = 33;
        var d = Enumerable.Repeat(2.0, n).ToArray();
        var e = Enumerable.Repeat(-1.0, n - 1).ToArray();
        var values = SymmetricEigen.DecomposeTridiagonal(d, e, n, new double[n * n]);
        for (int k = 1; k <= n; k++)
            Check.Close(values[k - 1], 2 - 2 * Math.Cos(k * Math.PI / (n + 1)), new Tolerance(1e-13, 0), $"λ_{k}");
    }

    private sealed class DenseOperator(double[] a, int n) : ISymmetricOperator
    {
        public int Size => n;

        public void Apply(ReadOnlySpan<double> x, Span<double> y)
        {
            for (int i = 0; i < n; i++)
            {
                double s = 0;
                for (int j = 0; j < n; j++) s += a[i * n + j] * x[j];
                y[i] = s;
            }
        }
    }

    [Fact]
    public void Lanczos_with_deflation_finds_the_second_largest_eigenpair_of_a_dense_matrix()
    {
        const int n = 127;
        var a = RandomSymmetric(5, n);
        var values = SymmetricEigen.Decompose(a, n, out var vectors);
        var top = vectors.AsSpan((n - 1) * n, n).ToArray();
        var x = new double[n];
        var r = new LanczosSolver(n, maxBasis: 40) { Tolerance = 1e-11 }.Largest(new DenseOperator(a, n), x, top);
        Assert.True(r.Converged, $"Lanczos did not converge: residual {r.Residual}, {r.MatVecs} matvecs, {r.Restarts} restarts");
        Check.Close(r.Value, values[n - 2], new Tolerance(1e-9, 1e-9), "second largest eigenvalue");
        double dot = Math.Abs(LanczosSolver.Dot(x, vectors.AsSpan((n - 2) * n, n)));
        Check.Close(dot, 1, new Tolerance(1e-7, 0), "|⟨Lanczos vector, dense vector⟩|");
    }

    /// <summary>Random binary affinity graphs: the Lanczos Fiedler vector equals the dense oracle's.</summary>
    [Theory]
    [InlineData(1, 300, 0.15)]
    [InlineData(2, 401, 0.3)]
    [InlineData(3, 257, 0.0)]
    public void Lanczos_fiedler_vector_matches_dense_solver_on_random_graphs(int seed, int n, double tau)
    {
        // Features from a few random centres plus noise: clustered but irregular graphs.
        const int dim = 16;
        var centres = TestData.Normal(seed, 4 * dim);
        var noise = TestData.Normal(seed + 100, (long)n * dim, 0.9f);
        var rng = new Random(seed);
        var f = new float[n * dim];
        for (int i = 0; i < n; i++)
        {
            int c = rng.Next(4);
            for (int k = 0; k < dim; k++) f[i * dim + k] = centres[c * dim + k] + noise[i * dim + k];
        }
        AffinityGraph.NormalizeRows(f, n, dim);
        var cos = new float[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                float s = 0;
                for (int k = 0; k < dim; k++) s += f[i * dim + k] * f[j * dim + k];
                cos[i * n + j] = s;
            }
        var graph = AffinityGraph.FromCosine(cos, n, tau);
        var cut = new NormalizedCut();
        var dense = cut.Solve(graph, EigenSolverKind.Dense);
        var lanczos = cut.Solve(graph, EigenSolverKind.Lanczos, 1e-12);
        Assert.True(lanczos.Converged);
        Check.Close(lanczos.Eigenvalue, dense.Eigenvalue, new Tolerance(1e-10, 1e-8), "Fiedler eigenvalue");
        // Both vectors are D-normalised with canonical sign, so they must agree entry-wise.
        double vmax = dense.Vector.Max(Math.Abs);
        Check.Close(lanczos.Vector, dense.Vector, new Tolerance(1e-6 * vmax, 0), "Fiedler vector");
        // And satisfy the generalized problem (D − A)v = λDv.
        var av = new double[n];
        graph.MultiplyAffinity(dense.Vector, av);
        for (int i = 0; i < n; i++)
        {
            double d = graph.Degree[i];
            Check.Close(d * dense.Vector[i] - av[i], dense.Eigenvalue * d * dense.Vector[i], new Tolerance(1e-9 * d * vmax, 0), $"((D − A)v)[{i}]");
        }
    }
}
