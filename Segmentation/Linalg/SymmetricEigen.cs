namespace CrateIL.Segmentation.Linalg;

/// <summary>
/// Dense symmetric eigensolver in float64, written for CrateIL (no external linear-algebra package):
/// Householder reduction to tridiagonal form followed by the implicit QL iteration with Wilkinson-type shifts.
/// O(n³); meant for n up to about a thousand (PCA covariances, small MaskCut graphs) and as the test oracle of
/// <see cref="LanczosSolver"/>.
/// </summary>
public static class SymmetricEigen
{
    /// <summary>
    /// Eigen-decomposes the symmetric n×n matrix <paramref name="matrix"/> (row-major; only its values are read,
    /// symmetry is assumed). Returns the eigenvalues in ascending order and the eigenvectors as the ROWS of
    /// <paramref name="vectors"/> (row i ↔ values[i]), unit length. Eigenvector signs are canonicalised: the entry
    /// of largest magnitude (first on ties) is positive.
    /// </summary>
    public static double[] Decompose(ReadOnlySpan<double> matrix, int n, out double[] vectors)
    {
        if (n < 0) throw new ArgumentOutOfRangeException(nameof(n), n, "matrix order must be non-negative");
        if (matrix.Length != (long)n * n) throw new ArgumentException($"matrix has {matrix.Length} elements, an {n}×{n} matrix needs {(long)n * n}", nameof(matrix));
        var a = matrix.ToArray();
        for (int i = 0; i < a.Length; i++)
            if (!double.IsFinite(a[i])) throw new ArgumentException($"matrix element [{i / n}, {i % n}] is {a[i]}", nameof(matrix));
        var d = new double[n];
        var e = new double[n];
        vectors = new double[(long)n * n];
        Tridiagonalize(a, n, d, e, vectors);
        TridiagonalQl(d, e, n, vectors);
        SortAscending(d, vectors, n);
        CanonicalizeSigns(vectors, n, n);
        return d;
    }

    /// <summary>Eigenvalues only (ascending).</summary>
    public static double[] Eigenvalues(ReadOnlySpan<double> matrix, int n) => Decompose(matrix, n, out _);

    /// <summary>
    /// Eigen-decomposition of the symmetric tridiagonal matrix with diagonal <paramref name="diagonal"/> (length n)
    /// and off-diagonal <paramref name="offDiagonal"/> (length ≥ n−1; entry i couples i and i+1).
    /// Eigenvectors are the rows of <paramref name="vectors"/> (n×n), eigenvalues ascending.
    /// </summary>
    public static double[] DecomposeTridiagonal(ReadOnlySpan<double> diagonal, ReadOnlySpan<double> offDiagonal, int n, double[] vectors)
    {
        if (diagonal.Length < n || offDiagonal.Length < Math.Max(0, n - 1) || vectors.Length < (long)n * n)
            throw new ArgumentException($"tridiagonal of order {n}: diagonal {diagonal.Length}, off-diagonal {offDiagonal.Length}, vectors {vectors.Length}");
        var d = diagonal[..n].ToArray();
        var e = new double[n];
        offDiagonal[..Math.Max(0, n - 1)].CopyTo(e);
        Array.Clear(vectors, 0, n * n);
        for (int i = 0; i < n; i++) vectors[i * n + i] = 1;
        TridiagonalQl(d, e, n, vectors);
        SortAscending(d, vectors, n);
        return d;
    }

    /// <summary>
    /// Householder tridiagonalisation A = Q·T·Qᵀ. On return d = diag(T), e[i] = T[i, i+1] (e[n−1] = 0) and
    /// <paramref name="qt"/> holds Qᵀ (row i = column i of Q), the start of the eigenvector accumulation.
    /// Each step k zeroes column k below the sub-diagonal with H = I − τ·v·vᵀ applied on both sides of the
    /// trailing block: B ← B − v·wᵀ − w·vᵀ with p = τ·B·v, w = p − (τ/2)(pᵀv)·v.
    /// </summary>
    private static void Tridiagonalize(double[] a, int n, double[] d, double[] e, double[] qt)
    {
        var v = new double[n];
        var p = new double[n];
        var taus = new double[n];
        var hv = new double[(long)n * n]; // Householder vectors, row k holds v of step k (entries k+1..n−1)
        for (int k = 0; k + 2 < n; k++)
        {
            int len = n - k - 1;
            double scale = 0;
            for (int i = k + 1; i < n; i++) scale = Math.Max(scale, Math.Abs(a[(long)i * n + k]));
            double tail = 0;
            for (int i = k + 2; i < n; i++) { double t = a[(long)i * n + k] / (scale == 0 ? 1 : scale); tail += t * t; }
            if (scale == 0 || tail == 0) { taus[k] = 0; continue; } // column already tridiagonal
            double x0 = a[(long)(k + 1) * n + k] / scale;
            double norm = Math.Sqrt(x0 * x0 + tail);
            double alpha = x0 > 0 ? -norm : norm;
            // v = x/scale − α·e1 (the scale cancels in τ·v·vᵀ)
            v[k + 1] = x0 - alpha;
            for (int i = k + 2; i < n; i++) v[i] = a[(long)i * n + k] / scale;
            double vtv = v[k + 1] * v[k + 1] + tail;
            double tau = 2.0 / vtv;
            taus[k] = tau;
            for (int i = k + 1; i < n; i++) hv[(long)k * n + i] = v[i];
            // p = τ·B·v over the trailing block rows/cols k+1..n−1
            double ptv = 0;
            for (int i = k + 1; i < n; i++)
            {
                double s = 0;
                long row = (long)i * n;
                for (int j = k + 1; j < n; j++) s += a[row + j] * v[j];
                p[i] = tau * s;
                ptv += p[i] * v[i];
            }
            double half = 0.5 * tau * ptv;
            for (int i = k + 1; i < n; i++) p[i] -= half * v[i]; // p is now w
            for (int i = k + 1; i < n; i++)
            {
                long row = (long)i * n;
                double vi = v[i], wi = p[i];
                for (int j = k + 1; j < n; j++) a[row + j] -= vi * p[j] + wi * v[j];
            }
            a[(long)(k + 1) * n + k] = alpha * scale;
            a[(long)k * n + k + 1] = alpha * scale;
            for (int i = k + 2; i < n; i++) { a[(long)i * n + k] = 0; a[(long)k * n + i] = 0; }
            _ = len;
        }
        for (int i = 0; i < n; i++)
        {
            d[i] = a[(long)i * n + i];
            e[i] = i + 1 < n ? a[(long)(i + 1) * n + i] : 0;
        }
        // Qᵀ = H_{n−3}·…·H_0: apply the reflectors from the left to the identity, first H_0.
        Array.Clear(qt);
        for (int i = 0; i < n; i++) qt[(long)i * n + i] = 1;
        var dot = new double[n];
        for (int k = 0; k + 2 < n; k++)
        {
            double tau = taus[k];
            if (tau == 0) continue;
            long hk = (long)k * n;
            Array.Clear(dot);
            for (int i = k + 1; i < n; i++)
            {
                double vi = hv[hk + i];
                long row = (long)i * n;
                for (int j = 0; j < n; j++) dot[j] += vi * qt[row + j];
            }
            for (int i = k + 1; i < n; i++)
            {
                double f = tau * hv[hk + i];
                long row = (long)i * n;
                for (int j = 0; j < n; j++) qt[row + j] -= f * dot[j];
            }
        }
    }

    /// <summary>
    /// Implicit QL iteration on the tridiagonal (d, e), e[i] coupling i and i+1. The plane rotations are
    /// accumulated into the ROWS of <paramref name="zt"/> (rows i and i+1 per rotation: contiguous memory).
    /// </summary>
    private static void TridiagonalQl(double[] d, double[] e, int n, double[] zt)
    {
        if (n > 0) e[n - 1] = 0;
        double norm = 0;
        for (int i = 0; i < n; i++) norm = Math.Max(norm, Math.Abs(d[i]) + Math.Abs(e[i]) + (i > 0 ? Math.Abs(e[i - 1]) : 0));
        double negligible = 2.220446049250313e-16 * norm;   // machine epsilon × ‖T‖∞
        for (int l = 0; l < n; l++)
        {
            int iterations = 0;
            while (true)
            {
                int m = l;
                while (m < n - 1)
                {
                    double dd = Math.Abs(d[m]) + Math.Abs(d[m + 1]);
                    // Negligible next to its neighbours, or next to the whole matrix: eigenvalues are only determined
                    // to eps·‖T‖ anyway, and a purely local test never deflates a cluster of eigenvalues at ~1e-15 of a
                    // rank-deficient covariance (PCA of real key features: e ≈ 1e-24 against d ≈ 1e-14 stalled for 100 sweeps).
                    if (Math.Abs(e[m]) <= double.Epsilon || dd + Math.Abs(e[m]) == dd || Math.Abs(e[m]) <= negligible) break;
                    m++;
                }
                if (m == l) break;
                if (++iterations > 100)
                    throw new ArithmeticException($"Tridiagonal QL did not converge for eigenvalue {l} of {n}");
                // Shift from the leading 2×2 block (l, l+1): the eigenvalue closer to d[l].
                double g = (d[l + 1] - d[l]) / (2.0 * e[l]);
                double r = Hypot(g, 1.0);
                g = d[m] - d[l] + e[l] / (g + (g >= 0 ? r : -r));
                double s = 1, c = 1, p = 0;
                bool early = false;
                for (int i = m - 1; i >= l; i--)
                {
                    double f = s * e[i], b = c * e[i];
                    r = Hypot(f, g);
                    e[i + 1] = r;
                    if (r == 0)
                    {
                        d[i + 1] -= p;
                        e[m] = 0;
                        early = true;
                        break;
                    }
                    s = f / r;
                    c = g / r;
                    g = d[i + 1] - p;
                    r = (d[i] - g) * s + 2.0 * c * b;
                    p = s * r;
                    d[i + 1] = g + p;
                    g = c * r - b;
                    RotateRows(zt, n, i, s, c);
                }
                if (early) continue;
                d[l] -= p;
                e[l] = g;
                e[m] = 0;
            }
        }
    }

    /// <summary>Rows (i, i+1) ← (c·row_i − s·row_{i+1}, s·row_i + c·row_{i+1}).</summary>
    private static void RotateRows(double[] zt, int n, int i, double s, double c)
    {
        var ri = zt.AsSpan(i * n, n);
        var rj = zt.AsSpan((i + 1) * n, n);
        for (int k = 0; k < n; k++)
        {
            double zi = ri[k], zj = rj[k];
            rj[k] = s * zi + c * zj;
            ri[k] = c * zi - s * zj;
        }
    }

    private static double Hypot(double a, double b)
    {
        a = Math.Abs(a); b = Math.Abs(b);
        if (a < b) (a, b) = (b, a);
        if (a == 0) return 0;
        double t = b / a;
        return a * Math.Sqrt(1 + t * t);
    }

    private static void SortAscending(double[] d, double[] zt, int n)
    {
        // Selection sort on eigenvalues with row swaps: O(n²) swaps of rows, negligible next to QL.
        var tmp = new double[n];
        for (int i = 0; i < n; i++)
        {
            int k = i;
            for (int j = i + 1; j < n; j++) if (d[j] < d[k]) k = j;
            if (k == i) continue;
            (d[i], d[k]) = (d[k], d[i]);
            var ri = zt.AsSpan(i * n, n);
            var rk = zt.AsSpan(k * n, n);
            ri.CopyTo(tmp);
            rk.CopyTo(ri);
            tmp.AsSpan(0, n).CopyTo(rk);
        }
    }

    /// <summary>Flips each row so that its entry of largest magnitude (first on ties) is positive.</summary>
    internal static void CanonicalizeSigns(double[] rows, int count, int length)
    {
        for (int r = 0; r < count; r++)
        {
            var row = rows.AsSpan(r * length, length);
            if (CanonicalSign(row) < 0)
                for (int k = 0; k < length; k++) row[k] = -row[k];
        }
    }

    /// <summary>+1 if the entry of largest magnitude (first on ties) is ≥ 0, else −1.</summary>
    public static int CanonicalSign(ReadOnlySpan<double> v)
    {
        int best = 0;
        double bestAbs = -1;
        for (int k = 0; k < v.Length; k++)
        {
            double a = Math.Abs(v[k]);
            if (a > bestAbs) { bestAbs = a; best = k; }
        }
        return v.Length == 0 || v[best] >= 0 ? 1 : -1;
    }
}
