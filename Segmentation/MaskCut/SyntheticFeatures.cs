using CrateIL.Imaging;
namespace CrateIL.Segmentation.MaskCut;

/// <summary>
/// Planted-object token features for tests and benchmarks: every token gets a background direction, tokens
/// inside object rectangle k get direction k instead (the directions are orthonormal), all plus isotropic Gaussian noise (per-entry standard
/// deviation noise/√dim, so the noise norm is ≈ noise). Directions: Gram–Schmidt of random Gaussian vectors (fixed seed). Later rectangles win on overlap.
/// </summary>
public static class SyntheticFeatures
{
    /// <summary>Returns features [h·w, dim] (row-major tokens).</summary>
    /// <param name="backgroundWaves">
    /// 0: one background direction (the background is a clique of the τ-graph). &gt; 0: the background direction
    /// varies smoothly over the grid, b0 + cos(2π·waves·x/w)·b1 + sin(2π·waves·y/h)·b2 (normalised), so that
    /// distant background tokens fall below τ and the graph is geometric like real images' (needs dim ≥ objects + 4).
    /// </param>
    public static float[] Planted(int gridHeight, int gridWidth, int dim, IReadOnlyList<Box> objects, double noise, int seed, double backgroundWaves = 0)
    {
        if (gridHeight < 1 || gridWidth < 1 || dim < 1) throw new ArgumentOutOfRangeException(nameof(dim), "grid and dim must be positive");
        var rng = new Random(seed);
        double Gauss()
        {
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
        }
        int extra = backgroundWaves > 0 ? 2 : 0;
        if (dim < objects.Count + 1 + extra) throw new ArgumentException($"dim {dim} is too small for {objects.Count} objects plus background (orthogonal directions)", nameof(dim));
        var dirs = new double[objects.Count + 1 + extra][];
        for (int k = 0; k < dirs.Length; k++)
        {
            dirs[k] = new double[dim];
            for (int i = 0; i < dim; i++) dirs[k][i] = Gauss();
            // Gram–Schmidt: directions are orthonormal, so different regions have cosine ≈ 0 (below any τ ≥ 0.15
            // for modest noise) and the same region cosine ≈ 1/(1 + noise²).
            for (int l = 0; l < k; l++)
            {
                double c = 0;
                for (int i = 0; i < dim; i++) c += dirs[k][i] * dirs[l][i];
                for (int i = 0; i < dim; i++) dirs[k][i] -= c * dirs[l][i];
            }
            double s = 0;
            for (int i = 0; i < dim; i++) s += dirs[k][i] * dirs[k][i];
            for (int i = 0; i < dim; i++) dirs[k][i] /= Math.Sqrt(s);
        }
        int n = gridHeight * gridWidth;
        var f = new float[(long)n * dim];
        double sigma = noise / Math.Sqrt(dim);
        for (int y = 0; y < gridHeight; y++)
            for (int x = 0; x < gridWidth; x++)
            {
                int owner = 0;
                for (int k = 0; k < objects.Count; k++)
                {
                    var b = objects[k];
                    if (x >= b.X0 && x < b.X1 && y >= b.Y0 && y < b.Y1) owner = k + 1;
                }
                int t = y * gridWidth + x;
                double wa = 0, wb = 0, norm = 1;
                if (owner == 0 && extra > 0)
                {
                    wa = Math.Cos(2 * Math.PI * backgroundWaves * x / gridWidth);
                    wb = Math.Sin(2 * Math.PI * backgroundWaves * y / gridHeight);
                    norm = Math.Sqrt(1 + wa * wa + wb * wb);
                }
                for (int i = 0; i < dim; i++)
                {
                    double v = dirs[owner][i];
                    if (owner == 0 && extra > 0) v = (v + wa * dirs[^2][i] + wb * dirs[^1][i]) / norm;
                    f[(long)t * dim + i] = (float)(v + sigma * Gauss());
                }
            }
        return f;
    }

    /// <summary>The mask [h·w] of a box on the grid.</summary>
    public static BinaryMask BoxMask(Box box, int gridHeight, int gridWidth)
    {
        var m = new BinaryMask(gridHeight, gridWidth);
        m.FillRectangle(box.X0, box.Y0, box.X1, box.Y1);
        return m;
    }
}
