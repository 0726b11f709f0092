namespace CrateIL.Segmentation.Linalg;

/// <summary>A symmetric linear operator y = M·x on float64 vectors (matrix-free).</summary>
public interface ISymmetricOperator
{
    int Size { get; }

    /// <summary>y = M·x; x and y have length <see cref="Size"/> and do not overlap.</summary>
    void Apply(ReadOnlySpan<double> x, Span<double> y);
}

/// <summary>Result of an iterative eigen-solve.</summary>
public readonly record struct LanczosResult(double Value, int MatVecs, int Restarts, double Residual, bool Converged);

/// <summary>
/// Lanczos iteration with full re-orthogonalisation (classical Gram–Schmidt, applied twice) in float64, for the
/// largest algebraic eigenpair of a symmetric operator restricted to the orthogonal complement of given
/// deflation vectors (e.g. the trivial eigenvector D^½·1 of a normalised graph affinity).
/// Written for CrateIL. The workspace (Krylov basis) is allocated once per solver and reused across solves.
/// Restarts explicitly from the current Ritz vector when the Krylov dimension reaches <see cref="MaxBasis"/>.
/// </summary>
public sealed class LanczosSolver
{
    private readonly int _n;
    private readonly double[] _basis;     // MaxBasis rows of length n
    private readonly double[] _w;
    private readonly double[] _alpha;
    private readonly double[] _beta;
    private readonly double[] _ritz;      // MaxBasis×MaxBasis
    private readonly double[] _coeffs;

    public LanczosSolver(int size, int maxBasis = 160)
    {
        if (size < 1) throw new ArgumentOutOfRangeException(nameof(size), size, "operator size must be positive");
        if (maxBasis < 4) throw new ArgumentOutOfRangeException(nameof(maxBasis), maxBasis, "the Krylov basis needs at least 4 vectors");
        _n = size;
        MaxBasis = Math.Min(maxBasis, size);
        _basis = new double[(long)MaxBasis * size];
        _w = new double[size];
        _alpha = new double[MaxBasis];
        _beta = new double[MaxBasis];
        _ritz = new double[MaxBasis * MaxBasis];
        _coeffs = new double[MaxBasis + 4];
    }

    public int Size => _n;

    /// <summary>Largest Krylov dimension before an explicit restart.</summary>
    public int MaxBasis { get; }

    /// <summary>Relative residual ‖M·x − θx‖ ≤ Tolerance·max(1, |θ|) stops the iteration.</summary>
    public double Tolerance { get; init; } = 1e-10;

    /// <summary>Upper bound on operator applications per solve.</summary>
    public int MaxMatVecs { get; init; } = 4000;

    /// <summary>
    /// Computes the largest algebraic eigenvalue of <paramref name="op"/> on the complement of the orthonormal
    /// <paramref name="deflation"/> vectors (each of length n; pass none for the plain problem) and writes its unit
    /// eigenvector to <paramref name="vector"/>. The start vector is a fixed pseudo-random vector, so results
    /// are deterministic. The sign of the vector is not canonicalised here.
    /// </summary>
    public LanczosResult Largest(ISymmetricOperator op, Span<double> vector, params double[][] deflation)
    {
        if (op.Size != _n) throw new ArgumentException($"operator has size {op.Size}, solver was made for {_n}", nameof(op));
        if (vector.Length != _n) throw new ArgumentException($"vector has length {vector.Length}, expected {_n}", nameof(vector));
        foreach (var q in deflation)
            if (q.Length != _n) throw new ArgumentException($"deflation vector has length {q.Length}, expected {_n}", nameof(deflation));
        int free = _n - deflation.Length;
        if (free < 1) throw new ArgumentException($"nothing left after deflating {deflation.Length} vectors of an operator of size {_n}");

        // Deterministic start: xorshift pseudo-random entries in [-0.5, 0.5), made orthogonal to the deflation.
        var start = _basis.AsSpan(0, _n);
        ulong state = 0x9E3779B97F4A7C15UL;
        for (int i = 0; i < _n; i++)
        {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            start[i] = (state >> 11) * (1.0 / (1UL << 53)) - 0.5;
        }
        int matvecs = 0, restarts = 0;
        double theta = double.NaN, residual = double.PositiveInfinity;
        while (true)
        {
            Orthogonalize(start, deflation, 0);
            Orthogonalize(start, deflation, 0);
            double norm = Norm(start);
            if (norm == 0 || !double.IsFinite(norm))
                throw new ArithmeticException("Lanczos start vector vanished after deflation (operator size too small?)");
            Scale(start, 1 / norm);

            int m = 0;
            bool exhausted = false;
            int limit = Math.Min(MaxBasis, free);
            while (m < limit)
            {
                var q = _basis.AsSpan(m * _n, _n);
                op.Apply(q, _w);
                matvecs++;
                var w = _w.AsSpan();
                double a = Dot(q, w);
                _alpha[m] = a;
                // Full re-orthogonalisation against the whole basis and the deflation vectors, twice.
                Orthogonalize(w, deflation, m + 1);
                Orthogonalize(w, deflation, m + 1);
                double b = Norm(w);
                _beta[m] = b;
                m++;
                bool check = m == limit || m % 5 == 0 || b <= 1e-13 * Math.Max(1, Math.Abs(a));
                if (check)
                {
                    (theta, residual) = RitzLargest(m);
                    if (residual <= Tolerance * Math.Max(1, Math.Abs(theta)) || b <= 1e-13 * Math.Max(1, Math.Abs(a)))
                    {
                        exhausted = true;
                        break;
                    }
                }
                if (m == limit || matvecs >= MaxMatVecs) break;
                var next = _basis.AsSpan(m * _n, _n);
                for (int i = 0; i < _n; i++) next[i] = w[i] / b;
            }
            // Ritz vector x = Σ_j y_j q_j from the eigenvector y of T_m (stored in _coeffs).
            if (!exhausted) (theta, residual) = RitzLargest(m);
            vector.Clear();
            for (int j = 0; j < m; j++)
            {
                double c = _coeffs[j];
                var q = _basis.AsSpan(j * _n, _n);
                for (int i = 0; i < _n; i++) vector[i] += c * q[i];
            }
            double vn = Norm(vector);
            Scale(vector, 1 / vn);
            bool converged = residual <= Tolerance * Math.Max(1, Math.Abs(theta)) || exhausted;
            if (converged || matvecs >= MaxMatVecs || m >= free)
                return new LanczosResult(theta, matvecs, restarts, residual, converged);
            restarts++;
            vector.CopyTo(start);
        }
    }

    /// <summary>Largest eigenpair of T_m; the eigenvector goes to _coeffs; returns (θ, |β_m·y_m|).</summary>
    private (double Theta, double Residual) RitzLargest(int m)
    {
        var values = SymmetricEigen.DecomposeTridiagonal(_alpha.AsSpan(0, m), _beta.AsSpan(0, Math.Max(0, m - 1)), m, _ritz);
        int top = m - 1;
        for (int j = 0; j < m; j++) _coeffs[j] = _ritz[top * m + j];
        return (values[top], Math.Abs(_beta[m - 1] * _coeffs[m - 1]));
    }

    private void Orthogonalize(Span<double> w, double[][] deflation, int basisCount)
    {
        foreach (var d in deflation)
        {
            double c = Dot(d, w);
            for (int i = 0; i < _n; i++) w[i] -= c * d[i];
        }
        for (int j = 0; j < basisCount; j++)
        {
            var q = _basis.AsSpan(j * _n, _n);
            double c = Dot(q, w);
            for (int i = 0; i < _n; i++) w[i] -= c * q[i];
        }
    }

    internal static double Dot(ReadOnlySpan<double> a, ReadOnlySpan<double> b) => System.Numerics.Tensors.TensorPrimitives.Dot(a, b);

    private static double Norm(ReadOnlySpan<double> a) => Math.Sqrt(Dot(a, a));

    private static void Scale(Span<double> a, double s)
    {
        for (int i = 0; i < a.Length; i++) a[i] *= s;
    }
}
