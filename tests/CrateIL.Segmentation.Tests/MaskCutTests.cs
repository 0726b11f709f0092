using CrateIL.Imaging;
using CrateIL.Segmentation.MaskCut;
using Xunit;

namespace CrateIL.Segmentation.Tests;

public class MaskCutTests
{
    private const int H = 20, W = 20, Dim = 32;

    [Theory]
    [InlineData(EigenSolverKind.Dense)]
    [InlineData(EigenSolverKind.Lanczos)]
    public void Normalized_cut_recovers_a_planted_object(EigenSolverKind solver)
    {
        var obj = new Box(5, 6, 13, 14);
        var f = SyntheticFeatures.Planted(H, W, Dim, new[] { obj }, noise: 0.3, seed: 1);
        var r = MaskCutter.Run(f, Dim, H, W, new MaskCutOptions { Objects = 1, Solver = solver });
        var first = r.Objects[0];
        Assert.Equal(SyntheticFeatures.BoxMask(obj, H, W), first.Mask);
        Assert.Equal(obj, first.PatchBox);
        Assert.False(first.Reversed);
        Assert.Equal(1, SyntheticFeatures.BoxMask(obj, H, W).Pixels[first.Seed]); // the seed lies in the object
    }

    [Fact]
    public void Two_planted_objects_are_found_in_turn_without_overlap()
    {
        var a = new Box(1, 2, 8, 10);
        var b = new Box(11, 9, 18, 17);
        var f = SyntheticFeatures.Planted(H, W, Dim, new[] { a, b }, noise: 0.3, seed: 2);
        var r = MaskCutter.Run(f, Dim, H, W, new MaskCutOptions { Objects = 2 });
        var masks = r.Objects.Select(o => o.Mask).ToArray();
        var ma = SyntheticFeatures.BoxMask(a, H, W);
        var mb = SyntheticFeatures.BoxMask(b, H, W);
        Assert.True((masks[0].Equals(ma) && masks[1].Equals(mb)) || (masks[0].Equals(mb) && masks[1].Equals(ma)),
            "the two objects should be recovered exactly, one per iteration");
        Assert.Equal(0, masks[0].IntersectionCount(masks[1])); // object masks do not overlap
    }

    /// <summary>
    /// One object on a uniform background. Iteration 2: the object's tokens are zeroed (all-ε edges), so the cut
    /// separates them again: IoU 1 with the previous mask ⇒ rejected. Iteration 3 (CutLER quirk): the graph is
    /// unchanged, "previous" is the empty rejected mask, so the same component is accepted, and then fully removed
    /// by the overlap subtraction (empty mask, no box).
    /// </summary>
    [Fact]
    public void Overlap_with_previous_mask_is_rejected_and_previous_objects_are_subtracted()
    {
        var obj = new Box(6, 6, 14, 14);
        var f = SyntheticFeatures.Planted(H, W, Dim, new[] { obj }, noise: 0.2, seed: 3);
        var r = MaskCutter.Run(f, Dim, H, W, new MaskCutOptions { Objects = 3 });
        var box = SyntheticFeatures.BoxMask(obj, H, W);
        Assert.Equal(box, r.Objects[0].Mask);
        Assert.Equal(MaskCutRejection.OverlapsPrevious, r.Objects[1].Rejection);
        Assert.Equal(box, r.Objects[1].Component);
        Assert.Null(r.Objects[1].PatchBox);
        Assert.Equal(MaskCutRejection.None, r.Objects[2].Rejection);
        Assert.Equal(box, r.Objects[2].Component);
        Assert.True(r.Objects[2].IsEmpty, "a component equal to an earlier object must be subtracted to nothing");
    }

    /// <summary>A 2×2 object is 4 of 400 tokens = 1 %: found in iteration 2, rejected as too small (≤ 1 %).</summary>
    [Fact]
    public void Object_of_at_most_one_percent_is_rejected()
    {
        var big = new Box(2, 2, 10, 10);
        var tiny = new Box(15, 14, 17, 16);
        var f = SyntheticFeatures.Planted(H, W, Dim, new[] { big, tiny }, noise: 0.1, seed: 4);
        var r = MaskCutter.Run(f, Dim, H, W, new MaskCutOptions { Objects = 2 });
        Assert.Equal(SyntheticFeatures.BoxMask(big, H, W), r.Objects[0].Mask);
        Assert.Equal(SyntheticFeatures.BoxMask(tiny, H, W), r.Objects[1].Component);
        Assert.Equal(MaskCutRejection.TooSmall, r.Objects[1].Rejection);
        Assert.True(r.Objects[1].IsEmpty);
    }

    [Fact]
    public void Corner_rule_reverses_a_side_that_covers_three_corners()
    {
        // 4×4 grid; v > mean on everything except the central 2×2 block ⇒ 4 corners ⇒ reverse: the object is the
        // block, seed = argmin v.
        var v = new double[16];
        for (int i = 0; i < 16; i++) v[i] = 1.0;
        foreach (int i in new[] { 5, 6, 9, 10 }) v[i] = -2.0;
        v[0] = 3.0;   // largest |v| positive (canonical sign) and on the corner side
        v[10] = -2.5; // the smallest value: the seed after reversal
        var (component, seed, reversed) = MaskCutter.SeedComponent(v, 4, 4);
        Assert.True(reversed);
        Assert.Equal(10, seed);
        for (int i = 0; i < 16; i++) Assert.Equal(i is 5 or 6 or 9 or 10, component.Pixels[i] != 0);
    }

    [Fact]
    public void Seed_component_is_the_4_connected_component_containing_the_seed_not_the_largest()
    {
        // 3×5 grid: foreground {0,1,5,6,10} (large, touches 2 corners) and {3,4... } — the seed is in the small one.
        var v = new double[15];
        for (int i = 0; i < 15; i++) v[i] = -1;
        foreach (int i in new[] { 0, 5, 10, 1, 6 }) v[i] = 1;
        v[8] = 2; v[9] = 1.5;                      // small component {8, 9}; 8 is argmax
        v[7] = -1; v[13] = -1;                     // diagonal neighbours don't connect
        var (component, seed, reversed) = MaskCutter.SeedComponent(v, 3, 5);
        Assert.False(reversed);
        Assert.Equal(8, seed);
        for (int i = 0; i < 15; i++) Assert.Equal(i is 8 or 9, component.Pixels[i] != 0);
    }

    [Fact]
    public void Fill_holes_and_labels_use_4_connectivity()
    {
        // 5×5 ring with a diagonal gap: the hole is enclosed under 4-connectivity (diagonal steps don't leak).
        var m = new BinaryMask(5, 5);
        foreach (int i in new[] { 1, 2, 3, 5, 9, 10, 14, 15, 19, 21, 22, 23 }) m.Pixels[i] = 1;
        var filled = BinaryMasks.FillHoles(m);
        foreach (int i in new[] { 6, 7, 8, 11, 12, 13, 16, 17, 18 }) Assert.True(filled.Pixels[i] == 1, $"pixel {i} is a hole");
        Assert.False(filled[0, 0]);
        Assert.False(filled[4, 4]);
        var labels = new int[25];
        Assert.Equal(1, BinaryMasks.Label4(filled, labels));
        Assert.Equal(5, BinaryMasks.Label4(MaskBits.Of(3, 3, [true, false, true, false, true, false, true, false, true]), new int[9]));
    }

    [Fact]
    public void Pixel_masks_are_nearest_upsampled_patch_blocks_and_iou_of_empty_masks_is_nan()
    {
        var obj = new Box(5, 6, 13, 14);
        var f = SyntheticFeatures.Planted(H, W, Dim, new[] { obj }, noise: 0.3, seed: 1);
        var r = MaskCutter.Run(f, Dim, H, W, new MaskCutOptions { Objects = 1 });
        var px = r.PixelMask(0, H * 8, W * 8);
        Assert.Equal(new Box(40, 48, 104, 112), BinaryMasks.BoundingBox(px));
        Assert.Equal(64 * 64, px.Area);
        Assert.True(double.IsNaN(new BinaryMask(2, 2).Iou(new BinaryMask(2, 2))));
    }

    [Fact]
    public void Crf_refinement_snaps_a_blocky_mask_to_the_image_edge()
    {
        // 64×64 image: a bright disc (radius 20) on a dark background; the bipartition is the disc's 8×8-block
        // approximation. The refined mask must match the disc better than the blocky mask.
        const int S = 64, P = 8;
        var rgb = new byte[S * S * 3];
        var disc = new BinaryMask(S, S);
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++)
            {
                bool inside = (x - 31.5) * (x - 31.5) + (y - 31.5) * (y - 31.5) < 20 * 20;
                disc[y, x] = inside;
                byte v = (byte)(inside ? 200 : 40);
                rgb[(y * S + x) * 3] = v; rgb[(y * S + x) * 3 + 1] = v; rgb[(y * S + x) * 3 + 2] = (byte)(v / 2);
            }
        var patches = new BinaryMask(S / P, S / P);
        for (int py = 0; py < S / P; py++)
            for (int px = 0; px < S / P; px++)
            {
                int c = 0;
                for (int y = 0; y < P; y++) for (int x = 0; x < P; x++) if (disc[py * P + y, px * P + x]) c++;
                patches[py, px] = c * 2 > P * P;
            }
        var blocky = patches.ResizeNearest(S, S);
        var refined = MaskCutRefiner.Refine(blocky, rgb);
        Assert.NotNull(refined.Mask);
        double before = blocky.Iou(disc), after = refined.Mask.Iou(disc);
        Assert.True(after > before + 0.03 && after > 0.95, $"CRF IoU with the disc {after:F3} vs blocky {before:F3}");
        Assert.True(refined.Iou >= 0.5);
    }

    [Fact]
    public void Crf_refinement_rejects_masks_that_move_too_far()
    {
        // Uniform image: the CRF erases a thin one-pixel stripe ⇒ IoU(bipartition, refined) < 0.5 ⇒ rejected.
        const int S = 32;
        var rgb = new byte[S * S * 3];
        var stripe = new BinaryMask(S, S);
        stripe.FillRectangle(16, 0, 17, S);
        var refined = MaskCutRefiner.Refine(stripe, rgb);
        Assert.Null(refined.Mask);
        Assert.True(refined.Iou < 0.5);
    }

    [Fact]
    public void Bad_inputs_give_clear_errors()
    {
        var f = new float[10 * 4];
        var e = Assert.Throws<ArgumentException>(() => MaskCutter.Run(f, 4, 3, 3));
        Assert.Contains("grid 3×3", e.Message);
        Assert.Throws<ArgumentException>(() => MaskCutter.Run(f, 3, 2, 5));
    }
}
