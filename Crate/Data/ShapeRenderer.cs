namespace CrateIL.Crate.Data;

/// <summary>
/// The rasteriser behind <see cref="ShapesInClutter"/>: every layer is a region test evaluated on a supersampling grid
/// per pixel, blended into a float RGB canvas by its coverage. All randomness comes from the one sample stream, drawn in
/// a fixed order, so the image is a pure function of the stream's keys.
/// </summary>
internal static class ShapeRenderer
{
    private const double Tau = 2 * Math.PI;

    internal readonly record struct Rgb(double R, double G, double B)
    {
        public static Rgb Lerp(Rgb a, Rgb b, double t) => new(a.R + (b.R - a.R) * t, a.G + (b.G - a.G) * t, a.B + (b.B - a.B) * t);
        public double DistanceTo(Rgb o) => Math.Sqrt((R - o.R) * (R - o.R) + (G - o.G) * (G - o.G) + (B - o.B) * (B - o.B));
    }

    /// <summary>The one colour distribution that objects, backgrounds and distractors all draw from.</summary>
    internal static Rgb RandomColour(ref SampleRandom rng)
    {
        double h = rng.NextDouble() * 6, s = rng.Uniform(0.15, 1.0), v = rng.Uniform(0.2, 1.0);
        int sector = (int)h % 6;
        double f = h - Math.Floor(h), p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
        return sector switch
        {
            0 => new(v, t, p),
            1 => new(q, v, p),
            2 => new(p, v, t),
            3 => new(p, q, v),
            4 => new(t, p, v),
            _ => new(v, p, q),
        };
    }

    private static double Smooth(double t) => t * t * (3 - 2 * t);

    /// <summary>Smooth value noise in [0, 1): hashed lattice values, smoothstep-interpolated.</summary>
    internal static double ValueNoise(ulong key, double x, double y)
    {
        double fx = Math.Floor(x), fy = Math.Floor(y);
        long ix = (long)fx, iy = (long)fy;
        double tx = Smooth(x - fx), ty = Smooth(y - fy);
        double v00 = Lattice(key, ix, iy), v10 = Lattice(key, ix + 1, iy), v01 = Lattice(key, ix, iy + 1), v11 = Lattice(key, ix + 1, iy + 1);
        double a = v00 + (v10 - v00) * tx, b = v01 + (v11 - v01) * tx;
        return a + (b - a) * ty;
    }

    private static double Lattice(ulong key, long x, long y) => SampleRandom.For((long)key, x, y).NextDouble();

    /// <summary><see cref="ValueNoise"/> from a precomputed lattice (LatticeSide² values, non-negative coordinates).</summary>
    private static double GridNoise(ReadOnlySpan<double> lattice, double x, double y)
    {
        int ix = (int)x, iy = (int)y;
        double tx = Smooth(x - ix), ty = Smooth(y - iy);
        int o = iy * LatticeSide + ix;
        double a = lattice[o] + (lattice[o + 1] - lattice[o]) * tx;
        double b = lattice[o + LatticeSide] + (lattice[o + LatticeSide + 1] - lattice[o + LatticeSide]) * tx;
        return a + (b - a) * ty;
    }

    /// <summary>A colour pattern over image coordinates: solid, stripes, checks, smooth noise or a linear gradient.</summary>
    internal readonly struct Texture
    {
        private readonly int _kind;
        private readonly Rgb _a, _b;
        private readonly double _cos, _sin, _period, _phase, _offset;
        private readonly ulong _key;

        private Texture(int kind, Rgb a, Rgb b, double angle, double period, double phase, double offset, ulong key)
        {
            _kind = kind;
            _a = a;
            _b = b;
            _cos = Math.Cos(angle);
            _sin = Math.Sin(angle);
            _period = period;
            _phase = phase;
            _offset = offset;
            _key = key;
        }

        public Rgb Mean => _kind == 0 ? _a : Rgb.Lerp(_a, _b, 0.5);

        public static Texture Random(ref SampleRandom rng, int side, Rgb a, Rgb b)
        {
            int kind = rng.NextInt(5);
            double angle = rng.Uniform(0, Math.PI);
            double period = rng.Uniform(3.0, Math.Max(4.0, side / 8.0));
            double phase = rng.Uniform(0, Tau);
            double offset = rng.Uniform(0.3, 0.7) * side;
            ulong key = rng.NextUInt64();
            return new Texture(kind, a, b, angle, period, phase, offset, key);
        }

        public Rgb At(double x, double y)
        {
            double u = x * _cos + y * _sin, v = -x * _sin + y * _cos;
            double t = _kind switch
            {
                0 => 0,
                1 => Math.Clamp(0.5 + 1.5 * Math.Sin(Tau * u / _period + _phase), 0, 1),
                2 => ((long)Math.Floor(u / _period) + (long)Math.Floor(v / _period)) % 2 == 0 ? 0 : 1,
                3 => Math.Clamp(1.4 * ValueNoise(_key, x / _period, y / _period) - 0.2, 0, 1),
                _ => Math.Clamp(0.5 + (u - _offset) / (3 * _period + 8), 0, 1),
            };
            return Rgb.Lerp(_a, _b, t);
        }
    }

    /// <summary>Half a pixel's diagonal: no point of a pixel is farther from its centre.</summary>
    private const double HalfDiagonal = 0.70710678118654757;

    internal interface IRegion
    {
        bool Contains(double x, double y);

        /// <summary>
        /// A shortcut for a whole pixel centred at (x, y): +1 when every point of it is inside, −1 when none is, 0 when
        /// the sub-samples must decide. It must never contradict <see cref="Contains"/>.
        /// </summary>
        int Classify(double x, double y);
    }

    /// <summary>A shape inscribed in the unit circle, placed by centre, radius and rotation.</summary>
    private readonly struct ObjectRegion(ShapeKind kind, double cx, double cy, double radius, double rotation) : IRegion
    {
        private readonly double _cos = Math.Cos(rotation), _sin = Math.Sin(rotation), _inv = 1 / radius;

        public bool Contains(double x, double y)
        {
            double dx = x - cx, dy = y - cy;
            double u = (dx * _cos + dy * _sin) * _inv, v = (-dx * _sin + dy * _cos) * _inv;
            return Shapes.Inside(kind, u, v);
        }

        public int Classify(double x, double y)
        {
            double dx = x - cx, dy = y - cy;
            double u = (dx * _cos + dy * _sin) * _inv, v = (-dx * _sin + dy * _cos) * _inv;
            return Shapes.Classify(kind, u, v, HalfDiagonal * _inv);
        }
    }

    /// <summary>An irregular blob: a circle whose radius wobbles with a few low harmonics of the angle.</summary>
    private readonly struct BlobRegion(double cx, double cy, double r0, double a2, double p2, double a3, double p3, double a5, double p5) : IRegion
    {
        public bool Contains(double x, double y)
        {
            double dx = x - cx, dy = y - cy, th = Math.Atan2(dy, dx);
            double r = r0 * (1 + a2 * Math.Sin(2 * th + p2) + a3 * Math.Sin(3 * th + p3) + a5 * Math.Sin(5 * th + p5));
            return dx * dx + dy * dy <= r * r;
        }

        /// <summary>The radius stays within r0·(1 ± (a2 + a3 + a5)).</summary>
        public double MaxRadius => r0 * (1 + a2 + a3 + a5);

        public int Classify(double x, double y)
        {
            double d = Math.Sqrt((x - cx) * (x - cx) + (y - cy) * (y - cy)), spread = r0 * (a2 + a3 + a5);
            return d > r0 + spread + HalfDiagonal ? -1 : d < r0 - spread - HalfDiagonal ? 1 : 0;
        }
    }

    private const int StrokeSegments = 12;

    private static double SegmentDistance2(double x, double y, double px, double py, double qx, double qy)
    {
        double ex = qx - px, ey = qy - py, len2 = ex * ex + ey * ey;
        double t = len2 > 0 ? Math.Clamp(((x - px) * ex + (y - py) * ey) / len2, 0, 1) : 0;
        double dx = x - (px + t * ex), dy = y - (py + t * ey);
        return dx * dx + dy * dy;
    }

    private static double PolylineDistance2(ReadOnlySpan<double> pts, double x, double y)
    {
        double best = double.MaxValue;
        for (int i = 0; i < StrokeSegments; i++)
            best = Math.Min(best, SegmentDistance2(x, y, pts[2 * i], pts[2 * i + 1], pts[2 * i + 2], pts[2 * i + 3]));
        return best;
    }

    /// <summary>
    /// A thick quadratic Bézier stroke of one colour, as a 12-segment polyline. Each segment updates the squared
    /// centre distances only in its own box (so a long stroke costs its length, not its bounding box); pixels whose
    /// centre is more than half a diagonal from the edge are settled by it, the rest get 2×2 sub-samples.
    /// </summary>
    private static void FillStroke(Span<float> canvas, int side, double x0, double y0, double x1, double y1, double x2, double y2,
        double halfWidth, Rgb colour, Span<double> distance2)
    {
        Span<double> pts = stackalloc double[2 * (StrokeSegments + 1)];
        for (int i = 0; i <= StrokeSegments; i++)
        {
            double t = (double)i / StrokeSegments, m = 1 - t;
            pts[2 * i] = m * m * x0 + 2 * m * t * x1 + t * t * x2;
            pts[2 * i + 1] = m * m * y0 + 2 * m * t * y1 + t * t * y2;
        }
        double reach = halfWidth + 1;
        int bx0 = Math.Max(0, (int)Math.Floor(Math.Min(x0, Math.Min(x1, x2)) - reach));
        int by0 = Math.Max(0, (int)Math.Floor(Math.Min(y0, Math.Min(y1, y2)) - reach));
        int bx1 = Math.Min(side - 1, (int)Math.Ceiling(Math.Max(x0, Math.Max(x1, x2)) + reach));
        int by1 = Math.Min(side - 1, (int)Math.Ceiling(Math.Max(y0, Math.Max(y1, y2)) + reach));
        if (bx0 > bx1 || by0 > by1) return;
        for (int y = by0; y <= by1; y++) distance2.Slice(y * side + bx0, bx1 - bx0 + 1).Fill(double.MaxValue);
        for (int i = 0; i < StrokeSegments; i++)
        {
            double px = pts[2 * i], py = pts[2 * i + 1], qx = pts[2 * i + 2], qy = pts[2 * i + 3];
            int sx0 = Math.Max(bx0, (int)Math.Floor(Math.Min(px, qx) - reach)), sx1 = Math.Min(bx1, (int)Math.Ceiling(Math.Max(px, qx) + reach));
            int sy0 = Math.Max(by0, (int)Math.Floor(Math.Min(py, qy) - reach)), sy1 = Math.Min(by1, (int)Math.Ceiling(Math.Max(py, qy) + reach));
            for (int y = sy0; y <= sy1; y++)
                for (int x = sx0; x <= sx1; x++)
                {
                    ref double d = ref distance2[y * side + x];
                    d = Math.Min(d, SegmentDistance2(x + 0.5, y + 0.5, px, py, qx, qy));
                }
        }
        double outer = (halfWidth + HalfDiagonal) * (halfWidth + HalfDiagonal);
        double inner = halfWidth > HalfDiagonal ? (halfWidth - HalfDiagonal) * (halfWidth - HalfDiagonal) : -1;
        double hw2 = halfWidth * halfWidth;
        for (int y = by0; y <= by1; y++)
            for (int x = bx0; x <= bx1; x++)
            {
                double d = distance2[y * side + x];
                if (d > outer) continue;
                int inside = 4;
                if (d >= inner)
                {
                    inside = 0;
                    for (int sy = 0; sy < 2; sy++)
                        for (int sx = 0; sx < 2; sx++)
                            if (PolylineDistance2(pts, x + 0.25 + 0.5 * sx, y + 0.25 + 0.5 * sy) <= hw2) inside++;
                    if (inside == 0) continue;
                }
                double coverage = inside / 4.0;
                int o = (y * side + x) * 3;
                canvas[o] += (float)((colour.R - canvas[o]) * coverage);
                canvas[o + 1] += (float)((colour.G - canvas[o + 1]) * coverage);
                canvas[o + 2] += (float)((colour.B - canvas[o + 2]) * coverage);
            }
    }

    /// <summary>
    /// Blends a region into the canvas: per pixel in the box, the fraction of ss×ss sub-samples inside is the coverage;
    /// the texture colour at the pixel centre is mixed in by it. Writes mask = coverage ≥ 1/2 when a mask is given.
    /// </summary>
    private static void Fill<TRegion>(Span<float> canvas, int side, double xMin, double yMin, double xMax, double yMax,
        in TRegion region, in Texture texture, int ss, Span<byte> mask) where TRegion : struct, IRegion
    {
        int x0 = Math.Max(0, (int)Math.Floor(xMin)), y0 = Math.Max(0, (int)Math.Floor(yMin));
        int x1 = Math.Min(side - 1, (int)Math.Ceiling(xMax)), y1 = Math.Min(side - 1, (int)Math.Ceiling(yMax));
        double step = 1.0 / ss;
        for (int y = y0; y <= y1; y++)
        {
            for (int x = x0; x <= x1; x++)
            {
                int verdict = region.Classify(x + 0.5, y + 0.5), inside = 0;
                if (verdict < 0) continue;
                if (verdict > 0) inside = ss * ss;
                else
                {
                    for (int sy = 0; sy < ss; sy++)
                        for (int sx = 0; sx < ss; sx++)
                            if (region.Contains(x + (sx + 0.5) * step, y + (sy + 0.5) * step)) inside++;
                }
                if (inside == 0) continue;
                double coverage = (double)inside / (ss * ss);
                var c = texture.At(x + 0.5, y + 0.5);
                int o = (y * side + x) * 3;
                canvas[o] += (float)((c.R - canvas[o]) * coverage);
                canvas[o + 1] += (float)((c.G - canvas[o + 1]) * coverage);
                canvas[o + 2] += (float)((c.B - canvas[o + 2]) * coverage);
                if (!mask.IsEmpty) mask[y * side + x] = 2 * inside >= ss * ss ? (byte)1 : (byte)0;
            }
        }
    }

    public static ShapePlacement Render(int side, ShapesInClutterSettings settings, ref SampleRandom rng, Span<float> canvas, Span<double> scratch,
        Span<byte> rgb, Span<byte> mask)
    {
        // The label is the stream's first draw, so GetLabel needs no rendering.
        var kind = settings.Classes[rng.NextInt(settings.Classes.Count)];

        Clutter(side, settings.MinBlobs, settings.MaxBlobs, settings.MinStrokes, settings.MaxStrokes, ref rng, canvas, scratch);

        // The object: bounding circle MinDiameter–MaxDiameter of the side across, entirely inside the frame.
        double radius = rng.Uniform(settings.MinDiameter, settings.MaxDiameter) * side / 2;
        double ocx = rng.Uniform(radius + 1, side - radius - 1), ocy = rng.Uniform(radius + 1, side - radius - 1);
        double rotation = rng.Uniform(0, Tau);
        var local = MeanColour(canvas, side, ocx - radius, ocy - radius, ocx + radius, ocy + radius);
        // Colours from the same distribution, redrawn (up to ContrastAttempts times) until the object's mean colour stands
        // off the clutter under it, so the shape is visible without making colour a give-away.
        Texture objectTexture = default;
        for (int attempt = 0; attempt < settings.ContrastAttempts; attempt++)
        {
            objectTexture = Texture.Random(ref rng, side, RandomColour(ref rng), RandomColour(ref rng));
            if (objectTexture.Mean.DistanceTo(local) >= settings.MinContrast) break;
        }
        mask.Slice(0, side * side).Clear();
        Fill(canvas, side, ocx - radius, ocy - radius, ocx + radius, ocy + radius,
            new ObjectRegion(kind, ocx, ocy, radius, rotation), objectTexture, 4, mask);

        AddNoiseAndQuantise(side, ref rng, canvas, rgb);
        return new ShapePlacement(kind, ocx, ocy, radius, rotation);
    }

    /// <summary>
    /// The scene without the object: a smooth background, then [minBlobs, maxBlobs] distractor blobs and
    /// [minStrokes, maxStrokes] strokes, all coloured from <see cref="RandomColour"/>.
    /// </summary>
    internal static void Clutter(int side, int minBlobs, int maxBlobs, int minStrokes, int maxStrokes, ref SampleRandom rng,
        Span<float> canvas, Span<double> scratch)
    {
        Background(side, ref rng, canvas, scratch);

        int blobs = rng.NextInt(minBlobs, maxBlobs);
        for (int b = 0; b < blobs; b++)
        {
            // Blobs are kept smaller than most objects and clearly lumpy, so that none passes for a disk.
            double cx = rng.Uniform(0, side), cy = rng.Uniform(0, side), r0 = rng.Uniform(0.05, 0.12) * side;
            var region = new BlobRegion(cx, cy, r0, rng.Uniform(0.15, 0.35), rng.Uniform(0, Tau), rng.Uniform(0.1, 0.25), rng.Uniform(0, Tau),
                rng.Uniform(0, 0.12), rng.Uniform(0, Tau));
            var tex = Texture.Random(ref rng, side, RandomColour(ref rng), RandomColour(ref rng));
            double reach = region.MaxRadius + 1;
            Fill(canvas, side, cx - reach, cy - reach, cx + reach, cy + reach, region, tex, 2, default);
        }

        int strokes = rng.NextInt(minStrokes, maxStrokes);
        for (int k = 0; k < strokes; k++)
        {
            double x0 = rng.Uniform(-0.1, 1.1) * side, y0 = rng.Uniform(-0.1, 1.1) * side;
            double x2 = rng.Uniform(-0.1, 1.1) * side, y2 = rng.Uniform(-0.1, 1.1) * side;
            double x1 = rng.Uniform(0, side), y1 = rng.Uniform(0, side);
            double half = rng.Uniform(0.5, Math.Max(1.0, 0.025 * side));
            FillStroke(canvas, side, x0, y0, x1, y1, x2, y2, half, RandomColour(ref rng), scratch.Slice(StrokeScratchOffset(side), side * side));
        }
    }

    /// <summary>Adds pixel noise of a random level (1–4 % of full scale) and rounds the canvas to bytes.</summary>
    internal static void AddNoiseAndQuantise(int side, ref SampleRandom rng, ReadOnlySpan<float> canvas, Span<byte> rgb)
    {
        // Pixel noise, close to Gaussian and cheap: four 16-bit uniforms from one draw, summed (Irwin–Hall) and scaled
        // to unit variance.
        double noise = rng.Uniform(0.01, 0.04), unit = Math.Sqrt(3.0) / 65536.0;
        for (int i = 0; i < side * side * 3; i++)
        {
            ulong bits = rng.NextUInt64();
            double sum = (bits & 0xFFFF) + ((bits >> 16) & 0xFFFF) + ((bits >> 32) & 0xFFFF) + (bits >> 48);
            double g = (sum - 2 * 65535.0) * unit;
            rgb[i] = (byte)Math.Clamp((int)Math.Round((canvas[i] + noise * g) * 255), 0, 255);
        }
    }

    /// <summary>The mean canvas colour over a box (clipped to the image).</summary>
    internal static Rgb MeanColour(Span<float> canvas, int side, double xMin, double yMin, double xMax, double yMax)
    {
        int x0 = Math.Max(0, (int)xMin), y0 = Math.Max(0, (int)yMin), x1 = Math.Min(side - 1, (int)xMax), y1 = Math.Min(side - 1, (int)yMax);
        double r = 0, g = 0, b = 0;
        int n = 0;
        for (int y = y0; y <= y1; y++)
            for (int x = x0; x <= x1; x++, n++)
            {
                int o = (y * side + x) * 3;
                r += canvas[o];
                g += canvas[o + 1];
                b += canvas[o + 2];
            }
        return n == 0 ? new Rgb(0.5, 0.5, 0.5) : new Rgb(r / n, g / n, b / n);
    }

    /// <summary>Doubles of scratch space <see cref="Render"/> needs for a side.</summary>
    public static int ScratchLength(int side) => StrokeScratchOffset(side) + side * side;

    private const int LatticeSide = 16;

    private static int LatticeOffset(int side) => 4 * Waves * side;

    private static int StrokeScratchOffset(int side) => LatticeOffset(side) + 2 * LatticeSide * LatticeSide;

    private const int Waves = 4;

    /// <summary>
    /// A smooth random field (sum of low-frequency sinusoids, or two octaves of value noise) through a 3-colour gradient.
    /// Each wave sin(a·x + b·y + φ) is expanded as sin(a·x)·cos(b·y + φ) + cos(a·x)·sin(b·y + φ) from per-column and
    /// per-row tables.
    /// </summary>
    private static void Background(int side, ref SampleRandom rng, Span<float> canvas, Span<double> scratch)
    {
        Rgb c0 = RandomColour(ref rng), c1 = RandomColour(ref rng), c2 = RandomColour(ref rng);
        bool sinusoids = rng.Bernoulli(0.5);
        Span<double> amp = stackalloc double[Waves];
        Span<double> sinX = scratch.Slice(0, Waves * side), cosX = scratch.Slice(Waves * side, Waves * side);
        Span<double> sinY = scratch.Slice(2 * Waves * side, Waves * side), cosY = scratch.Slice(3 * Waves * side, Waves * side);
        double ampSum = 0;
        for (int k = 0; k < Waves; k++)
        {
            double f = rng.Uniform(0.5, 3.0) / side, angle = rng.Uniform(0, Math.PI);
            double fx = f * Math.Cos(angle), fy = f * Math.Sin(angle), phase = rng.Uniform(0, Tau);
            amp[k] = rng.Uniform(0.3, 1.0);
            ampSum += amp[k];
            for (int i = 0; i < side; i++)
            {
                (sinX[k * side + i], cosX[k * side + i]) = Math.SinCos(Tau * fx * i);
                (sinY[k * side + i], cosY[k * side + i]) = Math.SinCos(Tau * fy * i + phase);
            }
        }
        ulong key = rng.NextUInt64();
        double cell = side / rng.Uniform(2.0, 5.0);
        // Lattice values of both octaves, looked up instead of hashed per pixel (x / cell < 5, 2x / cell < 10).
        Span<double> coarse = scratch.Slice(LatticeOffset(side), LatticeSide * LatticeSide);
        Span<double> fine = scratch.Slice(LatticeOffset(side) + LatticeSide * LatticeSide, LatticeSide * LatticeSide);
        if (!sinusoids)
        {
            for (int j = 0; j < LatticeSide; j++)
                for (int i = 0; i < LatticeSide; i++)
                {
                    coarse[j * LatticeSide + i] = Lattice(key, i, j);
                    fine[j * LatticeSide + i] = Lattice(key ^ 0x9E37, i, j);
                }
        }
        for (int y = 0; y < side; y++)
        {
            for (int x = 0; x < side; x++)
            {
                double t;
                if (sinusoids)
                {
                    double sum = 0;
                    for (int k = 0; k < Waves; k++)
                        sum += amp[k] * (sinX[k * side + x] * cosY[k * side + y] + cosX[k * side + x] * sinY[k * side + y]);
                    t = Math.Clamp(0.5 + 0.9 * sum / ampSum, 0, 1);
                }
                else
                {
                    t = 0.65 * GridNoise(coarse, x / cell, y / cell) + 0.35 * GridNoise(fine, 2 * x / cell, 2 * y / cell);
                    t = Math.Clamp((t - 0.5) * 1.6 + 0.5, 0, 1);
                }
                var c = t < 0.5 ? Rgb.Lerp(c0, c1, 2 * t) : Rgb.Lerp(c1, c2, 2 * t - 1);
                int o = (y * side + x) * 3;
                canvas[o] = (float)c.R;
                canvas[o + 1] = (float)c.G;
                canvas[o + 2] = (float)c.B;
            }
        }
    }
}

/// <summary>Point tests for the shapes in their unit frame (each inscribed in the unit circle).</summary>
internal static class Shapes
{
    private const double S = 0.70710678118654757;

    private static readonly (double X, double Y)[] s_square = [(-S, -S), (S, -S), (S, S), (-S, S)];
    private static readonly (double X, double Y)[] s_triangle = Regular(3, 1.0, -Math.PI / 2);
    private static readonly (double X, double Y)[] s_hexagon = Regular(6, 1.0, 0);
    private static readonly (double X, double Y)[] s_star = Star(5, 1.0, 0.42);
    private static readonly (double X, double Y)[] s_cross =
        [(-0.3, -0.95), (0.3, -0.95), (0.3, -0.3), (0.95, -0.3), (0.95, 0.3), (0.3, 0.3),
         (0.3, 0.95), (-0.3, 0.95), (-0.3, 0.3), (-0.95, 0.3), (-0.95, -0.3), (-0.3, -0.3)];
    private static readonly (double X, double Y)[] s_arrow =
        [(-0.95, -0.2), (0.2, -0.2), (0.2, -0.62), (0.95, 0), (0.2, 0.62), (0.2, 0.2), (-0.95, 0.2)];

    private const double RingInner = 0.55, CrescentCutX = 0.45, CrescentCutY = -0.1, CrescentCutRadius = 0.8;

    // The heart: a square standing on a corner (half-diagonal H, centre (0, C)) with a disk on each upper side; C centres
    // the outline vertically and every point stays within 0.97 of the origin.
    private const double HeartH = 0.72, HeartC = 0.0745;
    private static readonly double s_heartRadius = HeartH / Math.Sqrt(2);
    private static readonly (double X, double Y)[] s_heartSquare = [(0, HeartC - HeartH), (HeartH, HeartC), (0, HeartC + HeartH), (-HeartH, HeartC)];

    private static double HeartLobeDistance(double u, double v, double side)
    {
        double du = u - side * HeartH / 2, dv = v - (HeartC - HeartH / 2);
        return Math.Sqrt(du * du + dv * dv);
    }

    private static (double, double)[] Regular(int n, double r, double start) =>
        Enumerable.Range(0, n).Select(i => (r * Math.Cos(start + 2 * Math.PI * i / n), r * Math.Sin(start + 2 * Math.PI * i / n))).ToArray();

    private static (double, double)[] Star(int points, double outer, double inner) =>
        Enumerable.Range(0, 2 * points).Select(i =>
        {
            double a = -Math.PI / 2 + Math.PI * i / points, r = i % 2 == 0 ? outer : inner;
            return (r * Math.Cos(a), r * Math.Sin(a));
        }).ToArray();

    private static (double X, double Y)[]? Polygon(ShapeKind kind) => kind switch
    {
        ShapeKind.Square => s_square,
        ShapeKind.Triangle => s_triangle,
        ShapeKind.Star => s_star,
        ShapeKind.Cross => s_cross,
        ShapeKind.Hexagon => s_hexagon,
        ShapeKind.Arrow => s_arrow,
        _ => null,
    };

    /// <summary>Even–odd crossing test.</summary>
    private static bool InPolygon((double X, double Y)[] p, double x, double y)
    {
        bool inside = false;
        for (int i = 0, j = p.Length - 1; i < p.Length; j = i++)
        {
            if ((p[i].Y > y) != (p[j].Y > y) && x < (p[j].X - p[i].X) * (y - p[i].Y) / (p[j].Y - p[i].Y) + p[i].X)
                inside = !inside;
        }
        return inside;
    }

    private static double DistanceToEdges((double X, double Y)[] p, double x, double y)
    {
        double best = double.MaxValue;
        for (int i = 0, j = p.Length - 1; i < p.Length; j = i++)
        {
            double ex = p[i].X - p[j].X, ey = p[i].Y - p[j].Y;
            double t = Math.Clamp(((x - p[j].X) * ex + (y - p[j].Y) * ey) / (ex * ex + ey * ey), 0, 1);
            double dx = x - (p[j].X + t * ex), dy = y - (p[j].Y + t * ey);
            best = Math.Min(best, dx * dx + dy * dy);
        }
        return Math.Sqrt(best);
    }

    public static bool Inside(ShapeKind kind, double u, double v)
    {
        double r2 = u * u + v * v;
        if (r2 > 1.0) return false;
        if (Polygon(kind) is { } polygon) return InPolygon(polygon, u, v);
        switch (kind)
        {
            case ShapeKind.Disk: return true;
            case ShapeKind.Ring: return r2 >= RingInner * RingInner;
            case ShapeKind.Crescent:
                {
                    double du = u - CrescentCutX, dv = v - CrescentCutY;
                    return du * du + dv * dv > CrescentCutRadius * CrescentCutRadius;
                }
            case ShapeKind.Heart:
                return Math.Abs(u) + Math.Abs(v - HeartC) <= HeartH
                    || HeartLobeDistance(u, v, -1) <= s_heartRadius || HeartLobeDistance(u, v, 1) <= s_heartRadius;
            default: throw new ArgumentOutOfRangeException(nameof(kind), $"unknown shape {kind}");
        }
    }

    /// <summary>
    /// +1 / −1 when every point within <paramref name="margin"/> of (u, v) is inside / outside, 0 when unsure. Uses a
    /// lower bound of the distance to the boundary: the polygon edges and the circles the round shapes are made of
    /// (a union's or difference's boundary lies on its parts' boundaries), and the unit circle that clips every shape.
    /// </summary>
    public static int Classify(ShapeKind kind, double u, double v, double margin)
    {
        double r = Math.Sqrt(u * u + v * v);
        double d = Math.Abs(1 - r);
        if (Polygon(kind) is { } polygon) d = Math.Min(d, DistanceToEdges(polygon, u, v));
        else if (kind == ShapeKind.Ring) d = Math.Min(d, Math.Abs(r - RingInner));
        else if (kind == ShapeKind.Crescent)
            d = Math.Min(d, Math.Abs(Math.Sqrt((u - CrescentCutX) * (u - CrescentCutX) + (v - CrescentCutY) * (v - CrescentCutY)) - CrescentCutRadius));
        else if (kind == ShapeKind.Heart)
        {
            d = Math.Min(d, DistanceToEdges(s_heartSquare, u, v));
            d = Math.Min(d, Math.Abs(HeartLobeDistance(u, v, -1) - s_heartRadius));
            d = Math.Min(d, Math.Abs(HeartLobeDistance(u, v, 1) - s_heartRadius));
        }
        if (d <= margin) return 0;
        return Inside(kind, u, v) ? 1 : -1;
    }
}
