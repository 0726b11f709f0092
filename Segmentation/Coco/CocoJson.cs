using System.Text.Encodings.Web;
using System.Text.Json;

namespace CrateIL.Segmentation.Coco;

/// <summary>Reads and writes COCO JSON with System.Text.Json, checking every field it uses.</summary>
internal static class CocoJson
{
    private static readonly JsonDocumentOptions DocOptions = new() { MaxDepth = 64 };

    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Indented = false,
        // Compressed RLE strings contain '\\', '`' and other characters the default encoder would escape as \uXXXX.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    internal static JsonDocument ParseDocument(byte[] utf8, string file)
    {
        // JsonDocument checks UTF-8 only when a string is read (GetString then throws InvalidOperationException, deep
        // inside evaluation): check the whole file once, so a bad byte is a format error naming its line.
        if (FirstInvalidUtf8(utf8) is int bad)
        {
            int line = 1 + utf8.AsSpan(0, bad).Count((byte)'\n');
            int column = bad - (utf8.AsSpan(0, bad).LastIndexOf((byte)'\n') + 1) + 1;
            throw new CocoFormatException(file, $"invalid UTF-8 (line {line}, byte {column}: 0x{utf8[bad]:X2})");
        }
        try
        {
            var doc = JsonDocument.Parse(utf8, DocOptions);
            if (FirstUntranscodableEscape(utf8) is long at)
            {
                doc.Dispose();
                int line = 1 + utf8.AsSpan(0, (int)at).Count((byte)'\n');
                throw new CocoFormatException(file, $"invalid JSON (line {line}): a string escape is not text (an unpaired \\uD800-\\uDFFF surrogate)");
            }
            return doc;
        }
        catch (JsonException ex)
        {
            throw new CocoFormatException(file, $"invalid JSON (line {ex.LineNumber + 1}, byte {ex.BytePositionInLine + 1}): {ex.Message}");
        }
    }

    /// <summary>
    /// Where a string or property name whose \u escapes do not decode to text (a lone surrogate such as \ud800) starts,
    /// or null. JsonDocument accepts them and throws InvalidOperationException whenever such a name or string is read or
    /// compared (TryGetProperty on the object holding it); finding them once up front keeps every later read safe. The scan
    /// only runs when the file has a \uD8xx-\uDFxx escape at all.
    /// </summary>
    private static long? FirstUntranscodableEscape(ReadOnlySpan<byte> utf8)
    {
        bool any = false;
        for (int i = utf8.IndexOf((byte)'\\'); i >= 0 && i + 3 < utf8.Length; )
        {
            if (utf8[i + 1] == (byte)'u' && (utf8[i + 2] | 0x20) == (byte)'d' && (utf8[i + 3] | 0x20) is >= (byte)'8' and (<= (byte)'9' or (>= (byte)'a' and <= (byte)'f')))
            {
                any = true;
                break;
            }
            int next = utf8[(i + 2)..].IndexOf((byte)'\\');
            i = next < 0 ? -1 : i + 2 + next;
        }
        if (!any) return null;
        var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = DocOptions.MaxDepth });
        Span<char> scratch = stackalloc char[256];
        while (reader.Read())
        {
            if (reader.TokenType is not (JsonTokenType.String or JsonTokenType.PropertyName) || !reader.ValueIsEscaped) continue;
            try
            {
                int length = reader.HasValueSequence ? checked((int)reader.ValueSequence.Length) : reader.ValueSpan.Length;
                if (length <= scratch.Length) reader.CopyString(scratch);
                else reader.GetString();
            }
            catch (InvalidOperationException)
            {
                return reader.TokenStartIndex;
            }
        }
        return null;
    }

    /// <summary>The offset of the first byte that does not start a valid UTF-8 sequence, or null.</summary>
    private static int? FirstInvalidUtf8(ReadOnlySpan<byte> utf8)
    {
        if (System.Text.Unicode.Utf8.IsValid(utf8)) return null;
        Span<char> scratch = stackalloc char[1024];
        int offset = 0;
        while (true)
        {
            var status = System.Text.Unicode.Utf8.ToUtf16(utf8[offset..], scratch, out int read, out _, replaceInvalidSequences: false);
            offset += read;
            if (status != System.Buffers.OperationStatus.DestinationTooSmall) return offset;
        }
    }

    public static CocoDataset ParseDataset(byte[] utf8, string file)
    {
        using var doc = ParseDocument(utf8, file);
        var r = new Reader(file);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
            throw r.Error("$", $"expected a JSON object with images, annotations and categories, found {Kind(root)}");
        var ds = new CocoDataset { Source = file };
        foreach (var prop in root.EnumerateObject())
            if (prop.Name is not ("images" or "annotations" or "categories")) ds.Extra[prop.Name] = prop.Value.Clone();

        var images = r.Array(root, "images", "$", required: true)!.Value;
        int i = 0;
        var imageIds = new HashSet<long>();
        foreach (var e in images.EnumerateArray())
        {
            string path = $"images[{i++}]";
            r.Object(e, path);
            long id = r.Integer(e, "id", path);
            int width = r.Dimension(e, "width", path);
            int height = r.Dimension(e, "height", path);
            if ((long)width * height > int.MaxValue)
                throw r.Error(path, $"image size {width}×{height} exceeds {int.MaxValue} pixels");
            if (!imageIds.Add(id)) throw r.Error(path, $"duplicate image id {id}");
            ds.Images.Add(new CocoImage(id, width, height, r.OptionalString(e, "file_name", path)));
        }

        if (r.Array(root, "categories", "$", required: false) is { } cats)
        {
            i = 0;
            foreach (var e in cats.EnumerateArray())
            {
                string path = $"categories[{i++}]";
                r.Object(e, path);
                ds.Categories.Add(new CocoCategory(r.Integer(e, "id", path), r.OptionalString(e, "name", path),
                    r.OptionalString(e, "supercategory", path)));
            }
        }

        if (r.Array(root, "annotations", "$", required: false) is { } anns)
        {
            i = 0;
            var annIds = new HashSet<long>();
            var sizes = ds.Images.ToDictionary(im => im.Id);
            foreach (var e in anns.EnumerateArray())
            {
                string path = $"annotations[{i++}]";
                var a = ReadAnnotation(r, e, path, isResult: false);
                if (!annIds.Add(a.Id)) throw r.Error(path, $"duplicate annotation id {a.Id}");
                if (!sizes.ContainsKey(a.ImageId)) throw r.Error(path, $"image_id {a.ImageId} is not in images");
                ds.Annotations.Add(a);
            }
        }
        return ds;
    }

    /// <summary>Reads one annotation object; results need a score, ground truth needs an id.</summary>
    internal static CocoAnnotation ReadAnnotation(Reader r, JsonElement e, string path, bool isResult)
    {
        r.Object(e, path);
        var a = new CocoAnnotation
        {
            Id = isResult ? 0 : r.Integer(e, "id", path),
            ImageId = r.Integer(e, "image_id", path),
            CategoryId = r.Integer(e, "category_id", path),
        };
        if (e.TryGetProperty("iscrowd", out var crowd) && crowd.ValueKind != JsonValueKind.Null)
        {
            a.IsCrowd = crowd.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                JsonValueKind.Number when crowd.TryGetInt64(out long c) && c is 0 or 1 => c == 1,
                _ => throw r.Error(path + ".iscrowd", $"expected 0, 1, true or false, found {Show(crowd)}"),
            };
        }
        if (e.TryGetProperty("area", out var area) && area.ValueKind != JsonValueKind.Null)
        {
            double v = r.Number(area, path + ".area");
            if (v < 0) throw r.Error(path + ".area", $"negative area {v}");
            a.Area = v;
        }
        if (e.TryGetProperty("bbox", out var bbox) && bbox.ValueKind != JsonValueKind.Null)
        {
            if (bbox.ValueKind == JsonValueKind.Array && bbox.GetArrayLength() == 0 && isResult)
            {
                // pycocotools treats an empty result box as "no box"
            }
            else
            {
                var b = r.Numbers(bbox, path + ".bbox");
                if (b.Length != 4) throw r.Error(path + ".bbox", $"expected [x, y, width, height], found {b.Length} numbers");
                if (b[2] < 0 || b[3] < 0) throw r.Error(path + ".bbox", $"negative box size {b[2]}×{b[3]}");
                a.Box = new CocoBox(b[0], b[1], b[2], b[3]);
            }
        }
        if (e.TryGetProperty("segmentation", out var seg) && seg.ValueKind != JsonValueKind.Null)
            a.Segmentation = ReadSegmentation(r, seg, path + ".segmentation");
        if (isResult)
        {
            if (!e.TryGetProperty("score", out var score))
                throw r.Error(path, "missing \"score\"");
            a.Score = r.Number(score, path + ".score");
        }
        else if (e.TryGetProperty("score", out var score) && score.ValueKind != JsonValueKind.Null)
            a.Score = r.Number(score, path + ".score");
        return a;
    }

    internal static CocoSegmentation ReadSegmentation(Reader r, JsonElement seg, string path)
    {
        if (seg.ValueKind == JsonValueKind.Array)
        {
            var polys = new List<double[]>();
            int j = 0;
            foreach (var p in seg.EnumerateArray())
            {
                string pp = $"{path}[{j++}]";
                if (p.ValueKind != JsonValueKind.Array)
                    throw r.Error(pp, $"expected a polygon [x0, y0, x1, y1, ...], found {Kind(p)}");
                var xy = r.Numbers(p, pp);
                if (xy.Length % 2 != 0) throw r.Error(pp, $"polygon has an odd number of coordinates ({xy.Length})");
                polys.Add(xy);
            }
            if (polys.Count == 0) throw r.Error(path, "empty polygon list");
            if (polys[0].Length < 4)
                throw r.Error(path + "[0]", $"first polygon has {polys[0].Length} coordinates; pycocotools needs more than 4 (or exactly 4 for a box list)");
            if (polys[0].Length == 4)
                for (int k = 1; k < polys.Count; k++)
                    if (polys[k].Length != 4)
                        throw r.Error($"{path}[{k}]", "a list whose first entry has 4 numbers is a box list; every entry must have 4");
            return new CocoPolygons(polys);
        }
        if (seg.ValueKind != JsonValueKind.Object)
            throw r.Error(path, $"expected polygons or an RLE object, found {Kind(seg)}");
        if (!seg.TryGetProperty("size", out var size)) throw r.Error(path, "RLE without \"size\"");
        var hw = r.Numbers(size, path + ".size");
        if (hw.Length != 2) throw r.Error(path + ".size", $"expected [height, width], found {hw.Length} numbers");
        foreach (double d in hw)
            if (d != Math.Floor(d) || d <= 0 || d > int.MaxValue)
                throw r.Error(path + ".size", $"size [{hw[0]}, {hw[1]}] must be two positive integers");
        if (hw[0] * hw[1] > int.MaxValue) throw r.Error(path + ".size", $"size [{hw[0]}, {hw[1]}] exceeds {int.MaxValue} pixels");
        int h = (int)hw[0], w = (int)hw[1];
        if (!seg.TryGetProperty("counts", out var counts)) throw r.Error(path, "RLE without \"counts\"");
        try
        {
            if (counts.ValueKind == JsonValueKind.String)
                return new CocoRleSegmentation(Rle.FromCompressedString(counts.GetString()!, h, w), Compressed: true);
            if (counts.ValueKind == JsonValueKind.Array)
            {
                var c = new uint[counts.GetArrayLength()];
                int k = 0;
                foreach (var v in counts.EnumerateArray())
                {
                    if (v.ValueKind != JsonValueKind.Number || !v.TryGetUInt32(out c[k]))
                        throw r.Error($"{path}.counts[{k}]", $"expected a run length 0..{uint.MaxValue}, found {Show(v)}");
                    k++;
                }
                if (c.Length == 0) throw r.Error(path + ".counts", "empty count list");
                return new CocoRleSegmentation(new Rle(h, w, c), Compressed: false);
            }
        }
        catch (RleFormatException ex)
        {
            throw r.Error(path + ".counts", ex.Message);
        }
        throw r.Error(path + ".counts", $"expected a compressed string or a list of run lengths, found {Kind(counts)}");
    }

    public static byte[] WriteDataset(CocoDataset ds)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, WriterOptions))
        {
            w.WriteStartObject();
            foreach (var (name, value) in ds.Extra)
            {
                w.WritePropertyName(name);
                value.WriteTo(w);
            }
            w.WriteStartArray("images");
            foreach (var im in ds.Images)
            {
                w.WriteStartObject();
                w.WriteNumber("id", im.Id);
                w.WriteNumber("width", im.Width);
                w.WriteNumber("height", im.Height);
                if (im.FileName is not null) w.WriteString("file_name", im.FileName);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("annotations");
            foreach (var a in ds.Annotations) WriteAnnotation(w, a, isResult: false);
            w.WriteEndArray();
            w.WriteStartArray("categories");
            foreach (var c in ds.Categories)
            {
                w.WriteStartObject();
                w.WriteNumber("id", c.Id);
                if (c.Name is not null) w.WriteString("name", c.Name);
                if (c.Supercategory is not null) w.WriteString("supercategory", c.Supercategory);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return ms.ToArray();
    }

    public static byte[] WriteResults(IEnumerable<CocoAnnotation> results)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, WriterOptions))
        {
            w.WriteStartArray();
            foreach (var a in results) WriteAnnotation(w, a, isResult: true);
            w.WriteEndArray();
        }
        return ms.ToArray();
    }

    private static void WriteAnnotation(Utf8JsonWriter w, CocoAnnotation a, bool isResult)
    {
        w.WriteStartObject();
        if (!isResult) w.WriteNumber("id", a.Id);
        w.WriteNumber("image_id", a.ImageId);
        w.WriteNumber("category_id", a.CategoryId);
        if (a.Score is { } s) w.WriteNumber("score", s);
        if (a.Segmentation is { } seg)
        {
            w.WritePropertyName("segmentation");
            WriteSegmentation(w, seg);
        }
        if (a.Area is { } area) w.WriteNumber("area", area);
        if (a.Box is { } b)
        {
            w.WriteStartArray("bbox");
            w.WriteNumberValue(b.X); w.WriteNumberValue(b.Y); w.WriteNumberValue(b.Width); w.WriteNumberValue(b.Height);
            w.WriteEndArray();
        }
        if (!isResult) w.WriteNumber("iscrowd", a.IsCrowd ? 1 : 0);
        w.WriteEndObject();
    }

    internal static void WriteSegmentation(Utf8JsonWriter w, CocoSegmentation seg)
    {
        switch (seg)
        {
            case CocoPolygons p:
                w.WriteStartArray();
                foreach (var poly in p.Polygons)
                {
                    w.WriteStartArray();
                    foreach (double v in poly) w.WriteNumberValue(v);
                    w.WriteEndArray();
                }
                w.WriteEndArray();
                break;
            case CocoRleSegmentation r:
                w.WriteStartObject();
                w.WriteStartArray("size");
                w.WriteNumberValue(r.Rle.Height);
                w.WriteNumberValue(r.Rle.Width);
                w.WriteEndArray();
                if (r.Compressed) w.WriteString("counts", r.Rle.ToCompressedString());
                else
                {
                    w.WriteStartArray("counts");
                    foreach (uint c in r.Rle.Counts) w.WriteNumberValue(c);
                    w.WriteEndArray();
                }
                w.WriteEndObject();
                break;
            default:
                throw new ArgumentException($"unknown segmentation type {seg.GetType().Name}", nameof(seg));
        }
    }

    internal static string Kind(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => e.ValueKind.ToString(),
    };

    internal static string Show(JsonElement e)
    {
        string raw = e.GetRawText();
        return raw.Length > 40 ? raw[..40] + "..." : raw;
    }

    /// <summary>Typed field access that turns every mismatch into a <see cref="CocoFormatException"/> with a JSON path.</summary>
    internal sealed class Reader(string file)
    {
        public CocoFormatException Error(string path, string message) => new(file, $"{path}: {message}");

        public void Object(JsonElement e, string path)
        {
            if (e.ValueKind != JsonValueKind.Object) throw Error(path, $"expected an object, found {Kind(e)}");
        }

        public JsonElement? Array(JsonElement obj, string name, string path, bool required)
        {
            if (!obj.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
                return required ? throw Error(path, $"missing \"{name}\"") : null;
            if (v.ValueKind != JsonValueKind.Array) throw Error($"{path}.{name}", $"expected an array, found {Kind(v)}");
            return v;
        }

        public long Integer(JsonElement obj, string name, string path)
        {
            if (!obj.TryGetProperty(name, out var v)) throw Error(path, $"missing \"{name}\"");
            if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out long x))
            {
                if (v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out double d) && d == Math.Floor(d) && Math.Abs(d) < 9e15)
                    return (long)d;
                throw Error($"{path}.{name}", $"expected an integer, found {Show(v)}");
            }
            return x;
        }

        public int Dimension(JsonElement obj, string name, string path)
        {
            long v = Integer(obj, name, path);
            if (v <= 0 || v > int.MaxValue) throw Error($"{path}.{name}", $"must be a positive size, found {v}");
            return (int)v;
        }

        public string? OptionalString(JsonElement obj, string name, string path)
        {
            if (!obj.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
            if (v.ValueKind != JsonValueKind.String) throw Error($"{path}.{name}", $"expected a string, found {Kind(v)}");
            return v.GetString();
        }

        public double Number(JsonElement v, string path)
        {
            if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out double d) || !double.IsFinite(d))
                throw Error(path, $"expected a finite number, found {Show(v)}");
            return d;
        }

        public double[] Numbers(JsonElement arr, string path)
        {
            if (arr.ValueKind != JsonValueKind.Array) throw Error(path, $"expected an array of numbers, found {Kind(arr)}");
            var r = new double[arr.GetArrayLength()];
            int k = 0;
            foreach (var v in arr.EnumerateArray()) { r[k] = Number(v, $"{path}[{k}]"); k++; }
            return r;
        }
    }
}
