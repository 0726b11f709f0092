using System.Diagnostics;
using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;
using CrateIL.Imaging;

namespace CrateIL.Segmentation.MaskCut;

/// <summary>MaskCut parameters (defaults: CutLER README / the CRATE emergence paper: τ = 0.15, 3 objects).</summary>
public sealed record MaskCutOptions
{
    /// <summary>Cosine-similarity threshold τ of the binary affinity.</summary>
    public double Tau { get; init; } = 0.15;

    /// <summary>Number of NCut iterations (objects sought).</summary>
    public int Objects { get; init; } = 3;

    /// <summary>Weight ε of sub-threshold edges.</summary>
    public double Eps { get; init; } = 1e-5;

    public EigenSolverKind Solver { get; init; } = EigenSolverKind.Auto;

    /// <summary>Lanczos stopping tolerance on the relative residual.</summary>
    public double EigenTolerance { get; init; } = 1e-10;

    /// <summary>From the second object on, reject when IoU with the previous object's mask exceeds this.</summary>
    public double RejectIou { get; init; } = 0.5;

    /// <summary>From the second object on, reject when the object covers at most this fraction of the grid.</summary>
    public double MinAreaFraction { get; init; } = 0.01;
}

public enum MaskCutRejection
{
    None,
    /// <summary>IoU with the previous iteration's mask &gt; <see cref="MaskCutOptions.RejectIou"/>.</summary>
    OverlapsPrevious,
    /// <summary>Area ≤ <see cref="MaskCutOptions.MinAreaFraction"/> of the grid.</summary>
    TooSmall,
}

/// <summary>
/// One MaskCut iteration. <see cref="Mask"/> is the patch-grid mask after subtracting earlier objects
/// (CutLER's <c>bipartition_masked</c>; empty when rejected); <see cref="Component"/> is the seed's component
/// before rejection and subtraction; <see cref="Eigenvector"/> the canonical-sign Fiedler vector.
/// </summary>
public sealed record MaskCutObject(
    int Iteration, BinaryMask Mask, BinaryMask Component, int Seed, bool Reversed, double[] Eigenvector, double Eigenvalue,
    MaskCutRejection Rejection, Box? PatchBox)
{
    public bool IsEmpty => PatchBox is null;
}

public sealed record MaskCutResult(int GridHeight, int GridWidth, IReadOnlyList<MaskCutObject> Objects,
    double AffinityMilliseconds, double EigenMilliseconds, int MatVecs)
{
    /// <summary>Object <paramref name="index"/>'s mask at image resolution (PyTorch 'nearest' upsampling).</summary>
    public BinaryMask PixelMask(int index, int imageHeight, int imageWidth) => Objects[index].Mask.ResizeNearest(imageHeight, imageWidth);
}

/// <summary>
/// MaskCut (Wang et al., CutLER; Algorithm 4 of the CRATE emergence paper) on token features [N, D], N = h·w,
/// following CutLER's <c>maskcut_forward</c> (crate-reference §5.2–5.4):
/// for each iteration: binary affinity graph of the L2-normalised features (previous objects' tokens zeroed,
/// cumulatively), Fiedler vector v of (D − A)v = λDv, bipartition v &gt; mean(v), seed = argmax|v|, corner/seed
/// reversal rule, the 4-connected component containing the seed; from the second iteration on the component
/// is dropped if its IoU with the previous iteration's mask is &gt; 0.5 or its area ≤ 1 %; finally pixels of
/// earlier objects are subtracted.
/// <para>
/// Eigenvector sign. LAPACK's sign is arbitrary, and CutLER's rule is sign-invariant except when the side
/// holding argmax|v| covers ≥ 3 grid corners: with that side positive the corner rule flips to the other side;
/// with it negative the seed rule flips back onto it. We canonicalise v so that its entry of largest magnitude
/// (first on ties) is positive and then apply CutLER's rule verbatim, so a side covering ≥ 3 corners (almost
/// always the background) is never returned as the object when the other side exists. Exact parity with scipy
/// is therefore impossible only in that case (and for degenerate λ).
/// </para>
/// <para>
/// Quirk kept from CutLER: a rejected iteration leaves the graph unchanged and becomes "the previous mask" as
/// an empty mask, so an object rejected for overlap can be accepted by the next iteration (same graph, IoU
/// against an empty mask is 0). The unchanged graph's eigenvector is reused instead of being recomputed.
/// </para>
/// </summary>
public static class MaskCutter
{
    /// <summary>Runs MaskCut on features [N, D] (N = gridHeight·gridWidth, row-major patch order). The graph's
    /// mat-vecs run on <paramref name="cpu"/> (null: the features' device when it is a CPU, else the calling thread).</summary>
    public static MaskCutResult Run(Tensor features, int gridHeight, int gridWidth, MaskCutOptions? options = null, CpuDevice? cpu = null)
    {
        options ??= new MaskCutOptions();
        if (features.Rank != 2) throw new ArgumentException($"features must be [tokens, dim], got {features.Shape}", nameof(features));
        if ((long)gridHeight * gridWidth != features.Shape[0])
            throw new ArgumentException($"grid {gridHeight}×{gridWidth} does not match {features.Shape[0]} tokens", nameof(gridHeight));
        if (options.Objects < 1) throw new ArgumentOutOfRangeException(nameof(options), options.Objects, "Objects must be at least 1");
        var sw = Stopwatch.StartNew();
        var graph = AffinityGraph.FromFeatures(features, options.Tau, options.Eps, cpu);
        double affinityMs = sw.Elapsed.TotalMilliseconds;
        return Run(graph, gridHeight, gridWidth, options, affinityMs);
    }

    /// <summary>Runs MaskCut on host features [N·D]: the GEMM and the mat-vecs run on <paramref name="cpu"/>
    /// (null: the calling thread only).</summary>
    public static MaskCutResult Run(ReadOnlySpan<float> features, int dim, int gridHeight, int gridWidth, MaskCutOptions? options = null, CpuDevice? cpu = null)
    {
        if (dim < 1 || features.Length % dim != 0) throw new ArgumentException($"{features.Length} values do not split into rows of {dim}", nameof(features));
        var device = SegmentationCpu.Resolve(cpu);
        using var t = device.FromHost(features, features.Length / dim, dim);
        return Run(t, gridHeight, gridWidth, options, device);
    }

    /// <summary>Runs MaskCut on a prepared graph (the graph is modified: object tokens are masked out).</summary>
    public static MaskCutResult Run(AffinityGraph graph, int gridHeight, int gridWidth, MaskCutOptions options, double affinityMilliseconds = 0)
    {
        int n = graph.Size;
        if ((long)gridHeight * gridWidth != n) throw new ArgumentException($"grid {gridHeight}×{gridWidth} does not match {n} tokens", nameof(gridHeight));
        var cut = new NormalizedCut();
        var painting = new BinaryMask(gridHeight, gridWidth);
        BinaryMask? current = null;      // previous iteration's (possibly rejected ⇒ empty) component
        var covered = new BinaryMask(gridHeight, gridWidth); // union of earlier objects
        var newly = new BinaryMask(gridHeight, gridWidth);
        var objects = new List<MaskCutObject>();
        FiedlerVector? fiedler = null;
        bool graphChanged = true;
        double eigenMs = 0;
        int matvecs = 0;
        var sw = new Stopwatch();
        for (int it = 0; it < options.Objects; it++)
        {
            if (it > 0)
            {
                var cur = current!.Pixels;
                var paint = painting.Pixels;
                var fresh = newly.Pixels;
                bool any = false;
                for (int i = 0; i < n; i++)
                {
                    fresh[i] = (byte)(cur[i] & (paint[i] ^ 1));
                    paint[i] |= cur[i];
                    any |= fresh[i] != 0;
                }
                if (any) { graph.MaskTokens(newly); graphChanged = true; }
            }
            if (graphChanged || fiedler is null)
            {
                sw.Restart();
                fiedler = cut.Solve(graph, options.Solver, options.EigenTolerance);
                eigenMs += sw.Elapsed.TotalMilliseconds;
                matvecs += fiedler.MatVecs;
                graphChanged = false;
            }
            var v = fiedler.Vector;
            var (component, seed, reversed) = SeedComponent(v, gridHeight, gridWidth);
            var rejection = MaskCutRejection.None;
            var pseudo = component;
            if (it >= 1)
            {
                double ratio = (double)pseudo.Area / n;
                double iou = current!.Iou(pseudo);                  // NaN (both empty) compares false
                if (iou > options.RejectIou) rejection = MaskCutRejection.OverlapsPrevious;
                else if (ratio <= options.MinAreaFraction) rejection = MaskCutRejection.TooSmall;
                if (rejection != MaskCutRejection.None) pseudo = new BinaryMask(gridHeight, gridWidth);
            }
            current = pseudo;
            var mask = new BinaryMask(gridHeight, gridWidth);
            var m = mask.Pixels;
            var p = pseudo.Pixels;
            var c = covered.Pixels;
            for (int i = 0; i < n; i++)
            {
                m[i] = (byte)(p[i] & (c[i] ^ 1));
                c[i] |= p[i];
            }
            objects.Add(new MaskCutObject(it, mask, component, seed, reversed, v, fiedler.Eigenvalue, rejection,
                BinaryMasks.BoundingBox(mask)));
        }
        return new MaskCutResult(gridHeight, gridWidth, objects, affinityMilliseconds, eigenMs, matvecs);
    }

    /// <summary>
    /// CutLER's bipartition of a (canonical-sign) eigenvector: v &gt; mean(v); seed = argmax|v|; reverse when ≥ 3
    /// grid corners are foreground or the seed is background; after reversal the seed is argmin v, otherwise
    /// argmax v (first occurrence); the result is the seed's 4-connected component.
    /// </summary>
    public static (BinaryMask Component, int Seed, bool Reversed) SeedComponent(ReadOnlySpan<double> v, int gridHeight, int gridWidth)
    {
        int n = v.Length;
        BinaryMasks.Check(n, gridHeight, gridWidth, nameof(v));
        double mean = 0;
        foreach (double x in v) mean += x;
        mean /= n;
        var bipartition = new BinaryMask(gridHeight, gridWidth);
        var bip = bipartition.Pixels;
        int absMax = 0;
        for (int i = 0; i < n; i++)
        {
            bip[i] = v[i] > mean ? (byte)1 : (byte)0;
            if (Math.Abs(v[i]) > Math.Abs(v[absMax])) absMax = i;
        }
        int corners = 0;
        foreach (int c in new[] { 0, gridWidth - 1, (gridHeight - 1) * gridWidth, n - 1 })
            corners += bip[c];
        bool reverse = corners >= 3 || bip[absMax] == 0;
        int seed = 0;
        if (reverse)
        {
            for (int i = 0; i < n; i++) { bip[i] ^= 1; if (v[i] < v[seed]) seed = i; }
        }
        else
        {
            for (int i = 1; i < n; i++) if (v[i] > v[seed]) seed = i;
        }
        return (BinaryMasks.ComponentContaining(bipartition, seed), seed, reverse);
    }
}
