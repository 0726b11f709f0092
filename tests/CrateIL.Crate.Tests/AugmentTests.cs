using System.Runtime.CompilerServices;
using CrateIL.Crate.Data;
using CrateIL.Imaging;
using Xunit.Abstractions;
using Xunit;

namespace CrateIL.Crate.Tests;

public class AugmentTests(ITestOutputHelper output)
{
    private static string FixtureDirectory([CallerFilePath] string here = "") =>
        Path.Combine(Path.GetDirectoryName(here)!, "Fixtures", "resize");

    /// <summary>A transform with one fixed plan, to replay a given crop.</summary>
    private sealed class FixedPlan(ResamplePlan plan, int width, int height) : ImageTransform(0)
    {
        public override bool HasFixedSize => true;
        public override (int Width, int Height) OutputSize(int sourceWidth, int sourceHeight) => (width, height);
        public override ResamplePlan Plan(int sourceWidth, int sourceHeight, ref SampleRandom random) => plan;
    }

    public static TheoryData<string> PillowCases => ["down_16x16.png", "up_97x83.png", "crop_5_7_40x30_to_24.png", "eval_36_32.png", "flip_20x30.png"];

    [Theory]
    [MemberData(nameof(PillowCases))]
    public void Resampling_matches_pillow(string fixture)
    {
        // Fixtures/resize/make_fixtures.py wrote these with Pillow 9.4's BILINEAR resize, which torchvision uses on PIL
        // images. Pillow rounds to bytes after each pass; we keep floats, so up to one grey level apart.
        byte[] buffer = [], expectedBuffer = [];
        var source = ImageFile.LoadRgb(Path.Combine(FixtureDirectory(), "source.png"), ref buffer);
        var expected = ImageFile.LoadRgb(Path.Combine(FixtureDirectory(), fixture), ref expectedBuffer);
        int w = expected.Width, h = expected.Height;
        ImageTransform transform = fixture switch
        {
            "down_16x16.png" or "up_97x83.png" => new Resize(w, h),
            "crop_5_7_40x30_to_24.png" => new FixedPlan(new ResamplePlan(5, 7, 40, 30, 24, 24, 0, 0, false), 24, 24),
            "eval_36_32.png" => new ResizeCenterCrop(32, cropFraction: 32.0 / 36.0),
            "flip_20x30.png" => new Resize(w, h, flipProbability: 1),
            _ => throw new ArgumentException(fixture),
        };
        var pipeline = new ImagePipeline(transform, Normalization.UnitRange(3));
        Assert.Equal((w, h), pipeline.OutputSize(source.Width, source.Height));
        var dst = new float[3 * w * h];
        var rng = default(SampleRandom);
        pipeline.Run(source, dst, ref rng);
        double worst = 0, sum = 0;
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                {
                    double d = Math.Abs(dst[(c * h + y) * w + x] * 255.0 - expected[x, y, c]);
                    worst = Math.Max(worst, d);
                    sum += d;
                }
        output.WriteLine($"{fixture}: max |ours − Pillow| = {worst:F3} grey levels, mean {sum / (3 * w * h):F3}");
        Assert.InRange(worst, 0, 1.01);
    }

    private static float[] Run(ImagePipeline p, ImageView v, SampleRandom rng)
    {
        var (w, h) = p.OutputSize(v.Width, v.Height);
        var dst = new float[p.Channels * w * h];
        Array.Fill(dst, float.NaN);
        p.Run(v, dst, ref rng);
        return dst;
    }

    [Fact]
    public void Normalisation_matches_ToTensor_then_Normalize()
    {
        byte[] px = [0, 128, 255, 17, 200, 99];
        var view = ImageView.Interleaved(px, 2, 1, 3);
        var out3 = Run(new ImagePipeline(ImageTransform.None), view, default);
        var n = Normalization.ImageNet;
        for (int c = 0; c < 3; c++)
            for (int x = 0; x < 2; x++)
                Assert.Equal(DataTestHelpers.Normalised(px[x * 3 + c], n, c), out3[c * 2 + x], 5e-6);
        Assert.Equal((0 / 255.0 - 0.485) / 0.229, out3[0], 5e-6);
        Assert.Equal((255 / 255.0 - 0.406) / 0.225, out3[2 * 2 + 0], 5e-6);

        var unit = Run(new ImagePipeline(ImageTransform.None, Normalization.UnitRange(3)), view, default);
        for (int c = 0; c < 3; c++)
            for (int x = 0; x < 2; x++)
                Assert.Equal(px[x * 3 + c] / 255.0, unit[c * 2 + x], 1e-7);
    }

    [Fact]
    public void Grey_images_replicate_to_three_channels_or_stay_one()
    {
        byte[] px = [0, 64, 128, 255, 3, 9];
        var view = ImageView.Interleaved(px, 3, 2, 1);
        var three = Run(new ImagePipeline(ImageTransform.None), view, default);
        Assert.Equal(18, three.Length);
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 6; i++)
                Assert.Equal(DataTestHelpers.Normalised(px[i], Normalization.ImageNet, c), three[c * 6 + i], 5e-6);
        var one = Run(new ImagePipeline(ImageTransform.None, new Normalization([0.1307f], [0.3081f])), view, default);
        Assert.Equal(6, one.Length);
        for (int i = 0; i < 6; i++) Assert.Equal((px[i] / 255.0 - 0.1307) / 0.3081, one[i], 5e-6);
        var rgbBytes = new byte[12];
        Assert.Throws<ArgumentException>(() => Run(new ImagePipeline(ImageTransform.None, Normalization.ImageNetGrey), ImageView.Interleaved(rgbBytes, 2, 2, 3), default));
    }

    [Fact]
    public void Planar_and_interleaved_views_of_the_same_image_agree()
    {
        const int W = 7, H = 5;
        var hwc = DataTestHelpers.Pixels(W, H, 3, 3);
        var chw = new byte[hwc.Length];
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int c = 0; c < 3; c++) chw[c * W * H + y * W + x] = hwc[(y * W + x) * 3 + c];
        var p = new ImagePipeline(new RandomResizedCrop(4));
        var a = Run(p, ImageView.Interleaved(hwc, W, H, 3), SampleRandom.For(1, 2, 3));
        var b = Run(p, ImageView.Planar(chw, W, H, 3), SampleRandom.For(1, 2, 3));
        Assert.Equal(a, b);
    }

    [Fact]
    public void Upscaling_is_bilinear_with_pil_pixel_centres()
    {
        // A 2-pixel row [0, 255] resized to 4: centres 0.25, 0.75, 1.25, 1.75 → 0, 63.75, 191.25, 255.
        byte[] px = [0, 255];
        var p = new ImagePipeline(new Resize(4, 1), Normalization.UnitRange(1));
        var o = Run(p, ImageView.Interleaved(px, 2, 1, 1), default);
        double[] expected = [0, 63.75, 191.25, 255];
        for (int i = 0; i < 4; i++) Assert.Equal(expected[i] / 255, o[i], 1e-6);
    }

    [Fact]
    public void Downscaling_is_antialiased()
    {
        // A one-pixel checkerboard halved: a plain bilinear sample would pick single pixels (0 or 255); the
        // antialiased filter (support 2) averages them to mid-grey everywhere.
        const int N = 16;
        var px = new byte[N * N];
        for (int y = 0; y < N; y++)
            for (int x = 0; x < N; x++) px[y * N + x] = (byte)((x + y) % 2 == 0 ? 0 : 255);
        var o = Run(new ImagePipeline(new Resize(N / 2, N / 2), Normalization.UnitRange(1)), ImageView.Interleaved(px, N, N, 1), default);
        foreach (float v in o) Assert.InRange(v, 0.35f, 0.65f);
        // Interior pixels see whole symmetric filter footprints: exactly one half.
        Assert.Equal(0.5, o[3 * (N / 2) + 3], 1e-6);
        // A constant image stays constant under any resize.
        var flat = Enumerable.Repeat((byte)77, 37 * 23 * 3).ToArray();
        var f = Run(new ImagePipeline(new Resize(11, 29), Normalization.UnitRange(3)), ImageView.Interleaved(flat, 37, 23, 3), default);
        foreach (float v in f) Assert.Equal(77 / 255.0, v, 1e-6);
    }

    [Fact]
    public void RandomResizedCrop_is_deterministic_for_a_stream_and_writes_the_whole_output()
    {
        var px = DataTestHelpers.Pixels(50, 37, 3, 1);
        var view = ImageView.Interleaved(px, 50, 37, 3);
        var p = new ImagePipeline(new RandomResizedCrop(24));
        var a = Run(p, view, SampleRandom.For(42, 0, 5));
        var b = Run(p, view, SampleRandom.For(42, 0, 5));
        var c = Run(p, view, SampleRandom.For(42, 0, 6));
        Assert.Equal(3 * 24 * 24, a.Length);
        Assert.All(a, v => Assert.True(float.IsFinite(v)));
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        var rect = Run(new ImagePipeline(new RandomResizedCrop(13, 9)), view, SampleRandom.For(1, 1, 1));
        Assert.Equal(3 * 13 * 9, rect.Length);
        Assert.All(rect, v => Assert.True(float.IsFinite(v)));
    }

    [Theory]
    [InlineData(224, 224)]
    [InlineData(500, 375)]
    [InlineData(31, 200)]
    [InlineData(300, 20)]
    public void RandomResizedCrop_parameters_stay_in_range(int width, int height)
    {
        var rrc = new RandomResizedCrop(32);
        int fallbacks = 0, n = 3000;
        double minArea = double.MaxValue, maxArea = 0, minRatio = double.MaxValue, maxRatio = 0;
        for (int i = 0; i < n; i++)
        {
            var rng = SampleRandom.For(9, width, i);
            var (left, top, w, h) = rrc.SampleCrop(width, height, ref rng, out bool fallback);
            Assert.InRange(w, 1, width);
            Assert.InRange(h, 1, height);
            Assert.InRange(left, 0, width - w);
            Assert.InRange(top, 0, height - h);
            if (fallback)
            {
                fallbacks++;
                Assert.Equal(((width - w) / 2, (height - h) / 2), (left, top));
                Assert.True(w == width || h == height);
                continue;
            }
            // w and h were rounded from the drawn real sizes w', h' (|w − w'| ≤ 1/2): the drawn area fraction and
            // ratio must be reachable within that rounding.
            double s = (double)width * height;
            Assert.True((w + 0.5) * (h + 0.5) >= 0.08 * s && (w - 0.5) * (h - 0.5) <= s, $"crop {w}×{h} of {width}×{height}");
            Assert.True((w + 0.5) / (h - 0.5) >= 0.75 && (w - 0.5) / (h + 0.5) <= 4.0 / 3, $"crop {w}×{h}");
            minArea = Math.Min(minArea, w * h / s);
            maxArea = Math.Max(maxArea, w * h / s);
            minRatio = Math.Min(minRatio, (double)w / h);
            maxRatio = Math.Max(maxRatio, (double)w / h);
        }
        if (width * 3 < height || height * 3 < width)
        {
            // Far outside the ratio range: most draws fail 10 times and fall back to the central crop clamped to the
            // range: 31×200 → width 31, height round(31 / 0.75) = 41, top (200 − 41) / 2 = 79;
            // 300×20 → height 20, width round(20·4/3) = 27, left (300 − 27) / 2 = 136.
            Assert.True(fallbacks > n / 4, $"{fallbacks} fallbacks");
            var expected = width == 300 ? (136, 0, 27, 20) : (0, 79, 31, 41);
            for (int i = 0; i < 100; i++)
            {
                var r = SampleRandom.For(9, width, i);
                var crop = rrc.SampleCrop(width, height, ref r, out bool fb);
                if (fb) Assert.Equal(expected, crop);
            }
        }
        else
        {
            Assert.True(fallbacks < n / 50, $"{fallbacks} fallbacks");
            // The draws cover the ranges.
            Assert.True(minArea < 0.15 && maxArea > 0.85, $"areas {minArea}..{maxArea}");
            Assert.True(minRatio < 0.8 && maxRatio > 1.25, $"ratios {minRatio}..{maxRatio}");
        }
    }

    [Fact]
    public void RandomResizedCrop_fallback_for_a_tall_image_clamps_to_the_lowest_ratio()
    {
        // 10×300 (ratio 1/30): no attempt fits, central crop width 10, height round(10 / (3/4)) = 13, top (300 − 13) / 2.
        var rrc = new RandomResizedCrop(8);
        var rng = SampleRandom.For(2, 2, 2);
        var crop = rrc.SampleCrop(10, 300, ref rng, out bool fallback);
        Assert.True(fallback);
        Assert.Equal((0, 143, 10, 13), crop);
    }

    [Fact]
    public void Full_image_crop_at_the_same_size_is_the_identity()
    {
        var px = DataTestHelpers.Pixels(19, 19, 3, 5);
        var view = ImageView.Interleaved(px, 19, 19, 3);
        var rrc = new RandomResizedCrop(19, 19, minScale: 1, maxScale: 1, minRatio: 1, maxRatio: 1, flipProbability: 0);
        var rng = SampleRandom.For(3, 3, 3);
        Assert.Equal((0, 0, 19, 19), rrc.SampleCrop(19, 19, ref rng));
        var o = Run(new ImagePipeline(rrc, Normalization.UnitRange(3)), view, SampleRandom.For(1, 2, 3));
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 19 * 19; i++)
                Assert.Equal(px[i * 3 + c] / 255.0, o[c * 19 * 19 + i], 1e-7); // one multiply by 1/255: within an ulp
    }

    [Fact]
    public void Horizontal_flip_mirrors_columns()
    {
        const int W = 9, H = 4;
        var px = DataTestHelpers.Pixels(W, H, 3, 8);
        var view = ImageView.Interleaved(px, W, H, 3);
        var plain = Run(new ImagePipeline(new KeepSize(0)), view, default);
        var flipped = Run(new ImagePipeline(new KeepSize(1)), view, default);
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                    Assert.Equal(plain[(c * H + y) * W + x], flipped[(c * H + y) * W + W - 1 - x]);

        // The flip is drawn after the crop: with p = 1 the same stream gives the mirror of the p = 0 output.
        var big = DataTestHelpers.Pixels(40, 30, 3, 2);
        var bigView = ImageView.Interleaved(big, 40, 30, 3);
        var a = Run(new ImagePipeline(new RandomResizedCrop(16, 16, flipProbability: 0)), bigView, SampleRandom.For(5, 5, 5));
        var b = Run(new ImagePipeline(new RandomResizedCrop(16, 16, flipProbability: 1)), bigView, SampleRandom.For(5, 5, 5));
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 16; y++)
                for (int x = 0; x < 16; x++)
                    Assert.Equal(a[(c * 16 + y) * 16 + x], b[(c * 16 + y) * 16 + 15 - x]);

        // p = 0.5 flips about half the time.
        var half = new KeepSize(0.5);
        int flips = 0;
        for (int i = 0; i < 2000; i++)
        {
            var rng = SampleRandom.For(1, 0, i);
            if (half.Plan(10, 10, ref rng).Flip) flips++;
        }
        Assert.InRange(flips, 900, 1100);
    }

    [Fact]
    public void ResizeCenterCrop_follows_torchvision_sizes_and_offsets()
    {
        var eval = new ResizeCenterCrop(224);
        Assert.Equal(256, eval.ResizeTo);
        var rng = default(SampleRandom);
        // 500×375: shorter side 375 → 256, longer ⌊256·500/375⌋ = 341; left round(58.5) = 58 (half to even), top 16.
        Assert.Equal(new ResamplePlan(0, 0, 500, 375, 341, 256, 58, 16, false), eval.Plan(500, 375, ref rng));
        Assert.Equal(new ResamplePlan(0, 0, 375, 500, 256, 341, 16, 58, false), eval.Plan(375, 500, ref rng));
        Assert.Equal(36, new ResizeCenterCrop(32).ResizeTo);

        // A centred square of colour survives resize + centre crop as the whole output.
        const int W = 60, H = 40;
        var px = new byte[W * H];
        var o = Run(new ImagePipeline(new ResizeCenterCrop(14), Normalization.UnitRange(1)), ImageView.Interleaved(px, W, H, 1), default);
        Assert.Equal(14 * 14, o.Length);
        Assert.All(o, v => Assert.Equal(0f, v));
    }

    [Fact]
    public void Constructors_reject_bad_ranges()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new RandomResizedCrop(8, 8, minScale: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RandomResizedCrop(8, 8, minScale: 0.5, maxScale: 0.4));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RandomResizedCrop(8, 8, minRatio: 2, maxRatio: 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new KeepSize(1.5));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ResizeCenterCrop(8, 1.5));
        Assert.Throws<ArgumentException>(() => new Normalization([0.5f, 0.5f], [0.5f]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Normalization([0.5f], [0f]));
    }
}
