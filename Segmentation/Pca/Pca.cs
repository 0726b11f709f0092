using CrateIL.Compute.Cpu;
using CrateIL.Compute.Devices;
using CrateIL.Segmentation.Linalg;

namespace CrateIL.Segmentation.Pca;

/// <summary>
/// Principal component analysis in float64: mean-centred covariance (1/(R − 1)) and the dense symmetric
/// eigensolver (<see cref="SymmetricEigen"/>). Components are sorted by decreasing variance; each component's
/// sign is canonicalised so that its loading of largest magnitude is positive (what sklearn ≥ 1.5's
/// svd_flip(u_based_decision=False) does; older sklearn flipped on the scores instead).
/// </summary>
public sealed class PrincipalComponents
{
    private PrincipalComponents(int dim, double[] mean, double[] components, double[] variances)
    {
        Dim = dim; Mean = mean; Components = components; Variances = variances;
    }

    public int Dim { get; }
    public int Count => Variances.Length;

    /// <summary>Column means [D].</summary>
    public double[] Mean { get; }

    /// <summary>Unit components, one per row [Count, D].</summary>
    public double[] Components { get; }

    /// <summary>Explained variance per component (eigenvalues of the covariance).</summary>
    public double[] Variances { get; }

    /// <summary>Fits on <paramref name="rows"/> row vectors [R, D] (R ≥ 2); the covariance runs on
    /// <paramref name="cpu"/>'s threads (null: the calling thread).</summary>
    public static PrincipalComponents Fit(ReadOnlySpan<float> data, int rows, int dim, int components, CpuDevice? cpu = null)
    {
        if (rows < 2) throw new ArgumentException($"PCA needs at least 2 rows, got {rows}", nameof(rows));
        if (dim < 1 || data.Length != (long)rows * dim) throw new ArgumentException($"data has {data.Length} values, {rows}×{dim} expected", nameof(data));
        if (components < 1 || components > dim) throw new ArgumentOutOfRangeException(nameof(components), components, $"components must be in 1..{dim}");
        var mean = new double[dim];
        for (int r = 0; r < rows; r++)
        {
            var row = data.Slice(r * dim, dim);
            for (int k = 0; k < dim; k++)
            {
                if (!float.IsFinite(row[k])) throw new ArgumentException($"data[{r}, {k}] is {row[k]}", nameof(data));
                mean[k] += row[k];
            }
        }
        for (int k = 0; k < dim; k++) mean[k] /= rows;
        // Centred columns, dimension-major [D, R], so each covariance entry is one contiguous dot product.
        var cols = new double[(long)dim * rows];
        for (int r = 0; r < rows; r++)
            for (int k = 0; k < dim; k++) cols[(long)k * rows + r] = data[r * dim + k] - mean[k];
        var cov = new double[(long)dim * dim];
        CpuParallel.For(SegmentationCpu.Resolve(cpu), (dim + 1) / 2, Math.Max(1, (1 << 16) / Math.Max(1, rows)),
            new CovarianceKernel(cols, cov, rows, dim, 1.0 / (rows - 1)));
        var values = SymmetricEigen.Decompose(cov, dim, out var vectors);   // ascending, canonical signs
        var comp = new double[(long)components * dim];
        var variances = new double[components];
        for (int c = 0; c < components; c++)
        {
            int src = dim - 1 - c;
            Array.Copy(vectors, (long)src * dim, comp, (long)c * dim, dim);
            variances[c] = Math.Max(values[src], 0);
        }
        return new PrincipalComponents(dim, mean, comp, variances);
    }

    /// <summary>Scores [R, Count] = (x − mean)·componentsᵀ.</summary>
    public double[] Transform(ReadOnlySpan<float> data, int rows)
    {
        if (data.Length != (long)rows * Dim) throw new ArgumentException($"data has {data.Length} values, {rows}×{Dim} expected", nameof(data));
        var scores = new double[(long)rows * Count];
        var centred = new double[Dim];
        for (int r = 0; r < rows; r++)
        {
            for (int k = 0; k < Dim; k++) centred[k] = data[r * Dim + k] - Mean[k];
            for (int c = 0; c < Count; c++)
                scores[(long)r * Count + c] = LanczosSolver.Dot(centred, new ReadOnlySpan<double>(Components, c * Dim, Dim));
        }
        return scores;
    }

    /// <summary>
    /// Lower-triangle covariance rows, mirrored. Unit u does rows u and D−1−u (u + 1 and D − u dot products), so
    /// every unit costs about D + 1 dot products and contiguous unit ranges balance across threads.
    /// </summary>
    private readonly struct CovarianceKernel(double[] cols, double[] cov, int rows, int dim, double scale) : IRangeKernel
    {
        public void Execute(int start, int count)
        {
            for (int u = start; u < start + count; u++)
            {
                Row(u);
                if (dim - 1 - u != u) Row(dim - 1 - u);
            }
        }

        private void Row(int a)
        {
            var ca = new ReadOnlySpan<double>(cols, a * rows, rows);
            for (int b = 0; b <= a; b++)
            {
                double c = LanczosSolver.Dot(ca, new ReadOnlySpan<double>(cols, b * rows, rows)) * scale;
                cov[(long)a * dim + b] = c;
                cov[(long)b * dim + a] = c;
            }
        }
    }
}
