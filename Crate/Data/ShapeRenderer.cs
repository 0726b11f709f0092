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

        public int Classify(double x, double y) => 0;
    }

    /// <summary>A thick quadratic Bézier stroke, tested against a 12-segment polyline of it.</summary>
    private readonly struct StrokeRegion(double x0, double y0, double x1, double y1, double x2, double y2, double halfWidth) : IRegion
    {
        public bool Contains(double x, double y) => SquaredDistance(x, y) <= halfWidth * halfWidth;

        // Every point of the pixel lies within half a diagonal of its centre, so the centre's distance settles most pixels.
        public int Classify(double x, double y)
        {
            double d = Math.Sqrt(SquaredDistance(x, y));
            return d > halfWidth + HalfDiagonal ? -1 : d < halfWidth - HalfDiagonal ? 1 : 0;
        }

        private double SquaredDistance(double x, double y)
        {
            const int Segments = 12;
            double px = x0, py = y0, best = double.MaxValue;
            for (int i = 1; i <= Segments; i++)
            {
                double t = (double)i / Segments, m = 1 - t;
                double qx = m * m * x0 + 2 * m * t * x1 + t * t * x2, qy = m * m * y0 + 2 * m * t * y1 + t * t * y2;
                double ex = qx - px, ey = qy - py, len2 = ex * ex + ey * ey;
                double s = len2 > 0 ? Math.Clamp(((x - px) * ex + (y - py) * ey) / len2, 0, 1) : 0;
                double ddx = x - (px + s * ex), ddy = y - (py + s * ey);
                best = Math.Min(best, ddx * ddx + ddy * ddy);
                px = qx;
                py = qy;
            }
            return best;
        }
    }

    /// <summary>
    /// Blends a region into the canvas: per pixel in the box, the fraction of ss×ss sub-samples inside is the coverage;
    /// the texture colour at the pixel centre is mixed in by it. Writes mask = coverage ≥ 1/2 when a mask is given.
    /// </summary>
    private static void Fill<TRegion>(Span<float> canvas, int side, double xMin, double yMin, double xMax, double yMax,
        in TRegion region, in Texture texture, int ss, Span<bool> mask) where TRegion : struct, IRegion
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
                if (!mask.IsEmpty) mask[y * side + x] = 2 * inside >= ss * ss;
            }
        }
    }

    public static ShapePlacement Render(int side, ref SampleRandom rng, Span<float> canvas, Span<double> scratch, Span<byte> rgb, Span<bool> mask)
    {
        // The label is the stream's first draw, so GetLabel needs no rendering.
        var kind = (ShapeKind)rng.NextInt(ShapesInClutter.ShapeCount);

        Background(side, ref rng, canvas, scratch);

        int blobs = rng.NextInt(1, 3);
        for (int b = 0; b < blobs; b++)
        {
            // Blobs are kept smaller than most objects and clearly lumpy, so that none passes for a disk.
            double cx = rng.Uniform(0, side), cy = rng.Uniform(0, side), r0 = rng.Uniform(0.05, 0.12) * side;
            var region = new BlobRegion(cx, cy, r0, rng.Uniform(0.15, 0.35), rng.Uniform(0, Tau), rng.Uniform(0.1, 0.25), rng.Uniform(0, Tau),
                rng.Uniform(0, 0.12), rng.Uniform(0, Tau));
            var tex = Texture.Random(ref rng, side, RandomColour(ref rng), RandomColour(ref rng));
            double reach = r0 * 1.6;
            Fill(canvas, side, cx - reach, cy - reach, cx + reach, cy + reach, region, tex, 2, default);
        }

        int strokes = rng.NextInt(1, 4);
        for (int k = 0; k < strokes; k++)
        {
            double x0 = rng.Uniform(-0.1, 1.1) * side, y0 = rng.Uniform(-0.1, 1.1) * side;
            double x2 = rng.Uniform(-0.1, 1.1) * side, y2 = rng.Uniform(-0.1, 1.1) * side;
            double x1 = rng.Uniform(0, side), y1 = rng.Uniform(0, side);
            double half = rng.Uniform(0.5, Math.Max(1.0, 0.025 * side));
            var region = new StrokeRegion(x0, y0, x1, y1, x2, y2, half);
            var colour = RandomColour(ref rng);
            var tex = Texture.Random(ref rng, side, colour, colour);
            Fill(canvas, side, Math.Min(x0, Math.Min(x1, x2)) - half, Math.Min(y0, Math.Min(y1, y2)) - half,
                Math.Max(x0, Math.Max(x1, x2)) + half, Math.Max(y0, Math.Max(y1, y2)) + half, region, tex, 2, default);
        }

        // The object: bounding circle 25–60 % of the side across, entirely inside the frame.
        double radius = rng.Uniform(0.25, 0.60) * side / 2;
        double ocx = rng.Uniform(radius + 1, side - radius - 1), ocy = rng.Uniform(radius + 1, side - radius - 1);
        double rotation = rng.Uniform(0, Tau);
        var local = MeanColour(canvas, side, ocx - radius, ocy - radius, ocx + radius, ocy + radius);
        // Colours from the same distribution, redrawn (up to 10 times) until the object's mean colour stands off the
        // clutter under it, so the shape is visible without making colour a give-away.
        Texture objectTexture = default;
        for (int attempt = 0; attempt < 10; attempt++)
        {
            objectTexture = Texture.Random(ref rng, side, RandomColour(ref rng), RandomColour(ref rng));
            if (objectTexture.Mean.DistanceTo(local) >= 0.3) break;
        }
        mask.Slice(0, side * side).Clear();
        Fill(canvas, side, ocx - radius, ocy - radius, ocx + radius, ocy + radius,
            new ObjectRegion(kind, ocx, ocy, radius, rotation), objectTexture, 4, mask);

        double noise = rng.Uniform(0.01, 0.04);
        for (int i = 0; i < side * side * 3; i += 2)
        {
            rng.NextGaussianPair(out double g0, out double g1);
            rgb[i] = (byte)Math.Clamp((int)Math.Round((canvas[i] + noise * g0) * 255), 0, 255);
            rgb[i + 1] = (byte)Math.Clamp((int)Math.Round((canvas[i + 1] + noise * g1) * 255), 0, 255);
        }
        return new ShapePlacement(kind, ocx, ocy, radius, rotation);
    }

    private static Rgb MeanColour(Span<float> canvas, int side, double xMin, double yMin, double xMax, double yMax)
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
    public static int ScratchLength(int side) => 4 * Waves * side;

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
                    t = 0.65 * ValueNoise(key, x / cell, y / cell) + 0.35 * ValueNoise(key ^ 0x9E37, 2 * x / cell, 2 * y / cell);
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
                {
                    // (x² + y² − 1)³ − x²y³ ≤ 0 spans x ∈ [−1.14, 1.14], y ∈ [−1, 1.24]: scaled and centred into the circle.
                    double x = u * 1.12, y = -v * 1.12 + 0.12;
                    double a = x * x + y * y - 1;
                    return a * a * a - x * x * y * y * y <= 0;
                }
            default: throw new ArgumentOutOfRangeException(nameof(kind), $"unknown shape {kind}");
        }
    }

    /// <summary>
    /// +1 / −1 when every point within <paramref name="margin"/> of (u, v) is inside / outside, 0 when unsure. Uses a
    /// lower bound of the distance to the boundary: the polygon edges, the circles the round shapes are cut from, and
    /// the unit circle that clips every shape; the heart has none and is always sub-sampled.
    /// </summary>
    public static int Classify(ShapeKind kind, double u, double v, double margin)
    {
        double r = Math.Sqrt(u * u + v * v);
        double d = Math.Abs(1 - r);
        if (Polygon(kind) is { } polygon) d = Math.Min(d, DistanceToEdges(polygon, u, v));
        else if (kind == ShapeKind.Ring) d = Math.Min(d, Math.Abs(r - RingInner));
        else if (kind == ShapeKind.Crescent)
            d = Math.Min(d, Math.Abs(Math.Sqrt((u - CrescentCutX) * (u - CrescentCutX) + (v - CrescentCutY) * (v - CrescentCutY)) - CrescentCutRadius));
        else if (kind == ShapeKind.Heart) d = 0;
        if (d <= margin) return 0;
        return Inside(kind, u, v) ? 1 : -1;
    }
}
