using System.Text;
using CrateIL.Imaging;

namespace CrateIL.Segmentation.Coco;

/// <summary>A run-length encoding that is not well formed (bad compressed string, wrong total, bad size).</summary>
public class RleFormatException(string message) : FormatException(message);

/// <summary>
/// COCO run-length encoding of a binary mask, with the semantics of pycocotools' maskApi.c. Pixels are walked
/// column-major (index = x·h + y); <see cref="Counts"/> alternate runs of 0s and 1s starting with a (possibly empty) run
/// of 0s and always add up to h·w.
/// </summary>
public sealed class Rle : IEquatable<Rle>
{
    private readonly uint[] counts;

    public int Height { get; }
    public int Width { get; }
    public ReadOnlySpan<uint> Counts => counts;

    /// <summary>An RLE from explicit counts; throws <see cref="RleFormatException"/> unless they add up to h·w.</summary>
    public Rle(int height, int width, ReadOnlySpan<uint> counts)
    {
        CheckSize(height, width);
        ulong sum = 0;
        foreach (uint c in counts) sum += c;
        if (sum != (ulong)height * (ulong)width)
            throw new RleFormatException($"RLE counts add up to {sum}, not h·w = {height}·{width} = {(long)height * width}");
        Height = height;
        Width = width;
        this.counts = counts.ToArray();
    }

    private Rle(int height, int width, uint[] counts, bool _)
    {
        Height = height;
        Width = width;
        this.counts = counts;
    }

    private static void CheckSize(int height, int width)
    {
        if (height <= 0 || width <= 0)
            throw new RleFormatException($"RLE size [{height}, {width}] must be positive");
        if ((long)height * width > int.MaxValue)
            throw new RleFormatException($"RLE size [{height}, {width}] exceeds {int.MaxValue} pixels");
    }

    /// <summary>Encodes a mask (maskApi.c <c>rleEncode</c>).</summary>
    public static Rle Encode(BinaryMask mask)
    {
        int h = mask.Height, w = mask.Width;
        ReadOnlySpan<byte> px = mask.Pixels;
        var runs = new List<uint>();
        byte p = 0;
        uint c = 0;
        for (int x = 0; x < w; x++)
            for (int y = 0; y < h; y++)
            {
                byte v = px[y * w + x];
                if (v != p) { runs.Add(c); c = 0; p = v; }
                c++;
            }
        runs.Add(c);
        return new Rle(h, w, runs.ToArray(), false);
    }

    /// <summary>An all-zero mask of the given size.</summary>
    public static Rle Empty(int height, int width)
    {
        CheckSize(height, width);
        return new Rle(height, width, [(uint)(height * width)], false);
    }

    /// <summary>Decodes to a row-major mask (maskApi.c <c>rleDecode</c>).</summary>
    public BinaryMask Decode()
    {
        var mask = new BinaryMask(Height, Width);
        Span<byte> px = mask.Pixels;
        int h = Height, w = Width;
        int x = 0, y = 0;
        bool v = false;
        foreach (uint run in counts)
        {
            if (v)
                for (uint k = 0; k < run; k++)
                {
                    px[y * w + x] = 1;
                    if (++y == h) { y = 0; x++; }
                }
            else
            {
                long t = (long)x * h + y + run;
                x = (int)(t / h); y = (int)(t % h);
            }
            v = !v;
        }
        return mask;
    }

    /// <summary>Foreground pixel count: the sum of the odd-indexed runs (maskApi.c <c>rleArea</c>).</summary>
    public long Area
    {
        get
        {
            uint a = 0;
            for (int j = 1; j < counts.Length; j += 2) a += counts[j];
            return a;
        }
    }

    /// <summary>Tight bounding box of the foreground (maskApi.c <c>rleToBbox</c>); all zeros for an empty mask.</summary>
    public CocoBox ToBox()
    {
        uint h = (uint)Height, w = (uint)Width;
        int m = counts.Length / 2 * 2;
        if (m == 0) return new CocoBox(0, 0, 0, 0);
        uint xs = w, ys = h, xe = 0, ye = 0, cc = 0, xp = 0;
        for (int j = 0; j < m; j++)
        {
            cc += counts[j];
            uint t = cc - (uint)(j % 2);
            uint y = t % h, x = (t - y) / h;
            if (j % 2 == 0) xp = x;
            else if (xp < x) { ys = 0; ye = h - 1; }
            xs = Math.Min(xs, x); xe = Math.Max(xe, x);
            ys = Math.Min(ys, y); ye = Math.Max(ye, y);
        }
        return new CocoBox(xs, ys, xe - xs + 1.0, ye - ys + 1.0);
    }

    /// <summary>
    /// Union (or intersection) of same-size masks (maskApi.c <c>rleMerge</c>, including its run layout: the result can
    /// end with an empty run when both inputs end on a boundary, exactly as pycocotools produces it).
    /// </summary>
    public static Rle Merge(IReadOnlyList<Rle> rles, bool intersect = false)
    {
        if (rles.Count == 0) throw new ArgumentException("nothing to merge", nameof(rles));
        var first = rles[0];
        int h = first.Height, w = first.Width;
        if (rles.Count == 1) return new Rle(h, w, (uint[])first.counts.Clone(), false);
        uint[] cnts = (uint[])first.counts.Clone();
        int m = cnts.Length;
        var output = new List<uint>(Math.Max(16, m * 2));
        for (int i = 1; i < rles.Count; i++)
        {
            var b = rles[i];
            if (b.Height != h || b.Width != w)
                throw new ArgumentException($"cannot merge a {b.Height}×{b.Width} RLE with a {h}×{w} one", nameof(rles));
            output.Clear();
            uint[] ac = cnts;
            int am = m;
            uint ca = ac[0], cb = b.counts[0];
            bool v = false, va = false, vb = false;
            int ai = 1, bi = 1;
            uint cc = 0, ct = 1;
            while (ct > 0)
            {
                uint c = Math.Min(ca, cb);
                cc += c; ct = 0;
                ca -= c; if (ca == 0 && ai < am) { ca = ac[ai++]; va = !va; }
                ct += ca;
                cb -= c; if (cb == 0 && bi < b.counts.Length) { cb = b.counts[bi++]; vb = !vb; }
                ct += cb;
                bool vp = v;
                v = intersect ? va && vb : va || vb;
                if (v != vp || ct == 0) { output.Add(cc); cc = 0; }
            }
            cnts = output.ToArray();
            m = cnts.Length;
        }
        return new Rle(h, w, cnts, false);
    }

    /// <summary>
    /// IoU matrix [detection, ground truth] as maskApi.c <c>rleIou</c>: pairs whose boxes do not overlap are 0 without
    /// looking at pixels; a size mismatch gives −1; for a crowd ground truth the union is the detection's area.
    /// </summary>
    public static double[,] Iou(IReadOnlyList<Rle> dt, IReadOnlyList<Rle> gt, IReadOnlyList<bool> gtIsCrowd)
    {
        if (gtIsCrowd.Count != gt.Count)
            throw new ArgumentException($"{gtIsCrowd.Count} crowd flags for {gt.Count} ground-truth masks", nameof(gtIsCrowd));
        var dbox = new CocoBox[dt.Count];
        var gbox = new CocoBox[gt.Count];
        for (int d = 0; d < dt.Count; d++) dbox[d] = dt[d].ToBox();
        for (int g = 0; g < gt.Count; g++) gbox[g] = gt[g].ToBox();
        var o = new double[dt.Count, gt.Count];
        for (int g = 0; g < gt.Count; g++)
            for (int d = 0; d < dt.Count; d++)
            {
                if (CocoBox.Iou(dbox[d], gbox[g], gtIsCrowd[g]) <= 0) continue;
                if (dt[d].Height != gt[g].Height || dt[d].Width != gt[g].Width) { o[d, g] = -1; continue; }
                o[d, g] = PixelIou(dt[d], gt[g], gtIsCrowd[g]);
            }
        return o;
    }

    /// <summary>IoU of two same-size masks by walking both run lists (crowd: intersection over the first mask's area).</summary>
    public static double PixelIou(Rle dt, Rle gt, bool gtIsCrowd)
    {
        if (dt.Height != gt.Height || dt.Width != gt.Width)
            throw new ArgumentException($"RLE sizes differ: {dt.Height}×{dt.Width} vs {gt.Height}×{gt.Width}");
        uint[] da = dt.counts, ga = gt.counts;
        uint ca = da[0], cb = ga[0], inter = 0, union = 0, ct = 1;
        bool va = false, vb = false;
        int a = 1, b = 1;
        while (ct > 0)
        {
            uint c = Math.Min(ca, cb);
            if (va || vb) { union += c; if (va && vb) inter += c; }
            ct = 0;
            ca -= c; if (ca == 0 && a < da.Length) { ca = da[a++]; va = !va; }
            ct += ca;
            cb -= c; if (cb == 0 && b < ga.Length) { cb = ga[b++]; vb = !vb; }
            ct += cb;
        }
        if (inter == 0) union = 1;
        else if (gtIsCrowd) union = (uint)dt.Area;
        return (double)inter / union;
    }

    /// <summary>
    /// Rasterises a polygon [x0, y0, x1, y1, ...] exactly as maskApi.c <c>rleFrPoly</c>: vertices are scaled by 5 and
    /// rounded, edges are traced on that grid, and a pixel column boundary is kept where the traced edge crosses a pixel
    /// centre; the mask is the region between the boundaries of each column.
    /// </summary>
    public static Rle FromPolygon(ReadOnlySpan<double> xy, int height, int width)
    {
        CheckSize(height, width);
        int k = xy.Length / 2;
        const double scale = 5;
        int h = height, w = width;
        var x = new int[k + 1];
        var y = new int[k + 1];
        for (int j = 0; j < k; j++) x[j] = (int)(scale * xy[j * 2] + .5);
        if (k > 0) x[k] = x[0];
        for (int j = 0; j < k; j++) y[j] = (int)(scale * xy[j * 2 + 1] + .5);
        if (k > 0) y[k] = y[0];
        long total = 0;
        for (int j = 0; j < k; j++) total += Math.Max(Math.Abs((long)x[j] - x[j + 1]), Math.Abs((long)y[j] - y[j + 1])) + 1;
        if (total > 1 << 26)
            throw new ArgumentException($"polygon spans {total} sub-pixel steps; coordinates are far outside any image", nameof(xy));
        // The traced points are consumed as they are made (each needs only its predecessor), so memory is the kept
        // boundary points, not the trace: a far-away vertex costs time bounded by the check above, never 2·4·total bytes.
        var a = new List<uint>();
        int pu = 0, pv = 0;
        bool started = false;
        void Trace(int uj, int vj)
        {
            bool keep = started && uj != pu;
            int lu = pu, lv = pv;
            (pu, pv, started) = (uj, vj, true);
            if (!keep) return;
            // Keep the points where the traced boundary crosses a pixel-centre column, downsampled to pixel coordinates.
            double xd = uj < lu ? uj : uj - 1;
            xd = (xd + .5) / scale - .5;
            if (Math.Floor(xd) != xd || xd < 0 || xd > w - 1) return;
            double yd = vj < lv ? vj : lv;
            yd = (yd + .5) / scale - .5;
            if (yd < 0) yd = 0; else if (yd > h) yd = h;
            yd = Math.Ceiling(yd);
            a.Add((uint)((int)xd * h + (int)yd));
        }
        for (int j = 0; j < k; j++)
        {
            int xs = x[j], xe = x[j + 1], ys = y[j], ye = y[j + 1];
            int dx = Math.Abs(xe - xs), dy = Math.Abs(ys - ye);
            bool flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
            if (flip) { (xs, xe) = (xe, xs); (ys, ye) = (ye, ys); }
            double s = dx >= dy ? (double)(ye - ys) / dx : (double)(xe - xs) / dy;
            if (dx >= dy)
                for (int d = 0; d <= dx; d++)
                {
                    int t = flip ? dx - d : d;
                    Trace(t + xs, (int)(ys + s * t + .5));
                }
            else
                for (int d = 0; d <= dy; d++)
                {
                    int t = flip ? dy - d : d;
                    Trace((int)(xs + s * t + .5), t + ys);
                }
        }
        a.Add((uint)(h * w));
        a.Sort();
        uint p = 0;
        for (int j = 0; j < a.Count; j++) { uint t = a[j]; a[j] -= p; p = t; }
        var b = new List<uint>(a.Count) { a[0] };
        for (int j = 1; j < a.Count;)
        {
            if (a[j] > 0) b.Add(a[j++]);
            else
            {
                j++;
                if (j < a.Count) b[^1] += a[j++];
            }
        }
        return new Rle(h, w, b.ToArray(), false);
    }

    /// <summary>The union of several polygons (pycocotools <c>annToRLE</c> for a polygon list: frPoly, then merge).</summary>
    public static Rle FromPolygons(IReadOnlyList<double[]> polygons, int height, int width)
    {
        if (polygons.Count == 0) return Empty(height, width);
        var parts = new Rle[polygons.Count];
        for (int i = 0; i < parts.Length; i++) parts[i] = FromPolygon(polygons[i], height, width);
        return Merge(parts);
    }

    /// <summary>A box rasterised through its rectangle polygon (maskApi.c <c>rleFrBbox</c>).</summary>
    public static Rle FromBox(CocoBox box, int height, int width)
    {
        double xs = box.X, xe = xs + box.Width, ys = box.Y, ye = ys + box.Height;
        return FromPolygon([xs, ys, xs, ye, xe, ye, xe, ys], height, width);
    }

    /// <summary>
    /// The compressed COCO string (maskApi.c <c>rleToString</c>): from the fourth run on, each count is stored as the
    /// difference to the count two places before; values are written 5 bits at a time, little-endian, as characters
    /// 48 + (bits | 0x20 when more follow), the last group sign-extending.
    /// </summary>
    public string ToCompressedString()
    {
        var sb = new StringBuilder(counts.Length * 2);
        for (int i = 0; i < counts.Length; i++)
        {
            long x = counts[i];
            if (i > 2) x -= counts[i - 2];
            bool more = true;
            while (more)
            {
                int c = (int)(x & 0x1f);
                x >>= 5;
                more = (c & 0x10) != 0 ? x != -1 : x != 0;
                if (more) c |= 0x20;
                sb.Append((char)(c + 48));
            }
        }
        return sb.ToString();
    }

    /// <summary>Parses a compressed COCO string (maskApi.c <c>rleFrString</c>), checking what the C code trusts.</summary>
    public static Rle FromCompressedString(string s, int height, int width)
    {
        CheckSize(height, width);
        var cnts = new List<uint>();
        int p = 0;
        while (p < s.Length)
        {
            long x = 0;
            int k = 0;
            bool more = true;
            int start = p;
            while (more)
            {
                if (p >= s.Length)
                    throw new RleFormatException($"compressed RLE string ends inside a value (at character {start})");
                int ch = s[p];
                if (ch < 48 || ch > 111)
                    throw new RleFormatException($"compressed RLE string has character '{s[p]}' (code {ch}) at {p}; only '0'..'o' are valid");
                if (k >= 7)
                    throw new RleFormatException($"compressed RLE value at character {start} is longer than 7 characters");
                int c = ch - 48;
                x |= (long)(c & 0x1f) << (5 * k);
                more = (c & 0x20) != 0;
                p++; k++;
                if (!more && (c & 0x10) != 0) x |= -1L << (5 * k);
            }
            if (cnts.Count > 2) x += cnts[^2];
            if (x < 0 || x > uint.MaxValue)
                throw new RleFormatException($"compressed RLE run {cnts.Count} decodes to {x}, outside 0..{uint.MaxValue}");
            cnts.Add((uint)x);
        }
        return new Rle(height, width, cnts.ToArray());
    }

    public bool Equals(Rle? other) =>
        other is not null && other.Height == Height && other.Width == Width && counts.AsSpan().SequenceEqual(other.counts);

    public override bool Equals(object? obj) => Equals(obj as Rle);

    public override int GetHashCode() => HashCode.Combine(Height, Width, counts.Length, Area);

    public override string ToString() => $"Rle {Height}×{Width}, {counts.Length} runs, area {Area}";
}
