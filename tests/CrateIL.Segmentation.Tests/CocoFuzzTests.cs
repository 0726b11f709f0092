using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using CrateIL.Segmentation.Coco;
using Xunit;
using Xunit.Abstractions;

namespace CrateIL.Segmentation.Tests;

/// <summary>
/// Mutation fuzzing of the COCO reader and evaluator: real annotation files (the pycocotools fixtures and, when installed,
/// labelme-examples' COCO export) are truncated, bit-flipped, given wrong types, negative / non-finite / huge numbers,
/// missing keys and invalid UTF-8 inside strings. Whatever the damage, the only exception that may escape loading and
/// evaluating is <see cref="CocoFormatException"/> (which <c>crate cocoeval</c> prints as one line, exit code 2).
/// </summary>
public class CocoFuzzTests(ITestOutputHelper output)
{
    private const int Seed = 20261206;

    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "CocoFixtures", name);

    /// <summary>Ground-truth files with the results file evaluated against each.</summary>
    private static List<(string Name, byte[] Gt, byte[][] Results)> Corpus()
    {
        var corpus = new List<(string, byte[], byte[][])>();
        for (int i = 0; i < 4; i++)
            corpus.Add(($"random{i}", File.ReadAllBytes(Fixture($"random{i}_gt.json")),
                [File.ReadAllBytes(Fixture($"random{i}_segm.json")), File.ReadAllBytes(Fixture($"random{i}_bbox.json"))]));
        string labelme = Path.Combine(CocoLabelmeTests.Root, "instance_segmentation", "data_dataset_coco", "annotations.json");
        if (File.Exists(labelme))
        {
            byte[] gt = File.ReadAllBytes(labelme);
            // Results made from the ground truth itself (score 1), as segmentation and as boxes.
            var ds = CocoDataset.Parse(Encoding.UTF8.GetString(gt), labelme);
            var segm = ds.Annotations.Select(a => new CocoAnnotation { ImageId = a.ImageId, CategoryId = a.CategoryId, Score = 0.9, Segmentation = a.Segmentation });
            var bbox = ds.Annotations.Select(a => new CocoAnnotation { ImageId = a.ImageId, CategoryId = a.CategoryId, Score = 0.8, Box = a.Box });
            corpus.Add(("labelme", gt, [Encoding.UTF8.GetBytes(CocoResults.ToJson(segm)), Encoding.UTF8.GetBytes(CocoResults.ToJson(bbox))]));
        }
        return corpus;
    }

    [Fact]
    public void Mutated_files_fail_only_with_the_typed_error()
    {
        var corpus = Corpus();
        var rng = new Random(Seed);
        var clock = Stopwatch.StartNew();
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        int cases = 0, rejected = 0, accepted = 0;
        var escaped = new List<string>();
        var byKind = new Dictionary<string, int>();
        var slowest = (Ms: 0.0, Case: "");
        const int Iterations = 6000;
        for (int it = 0; it < Iterations; it++)
        {
            var (name, gtBytes, results) = corpus[rng.Next(corpus.Count)];
            bool mutateGt = rng.Next(2) == 0;
            byte[] resultBytes = results[rng.Next(results.Length)];
            string kind;
            if (mutateGt) gtBytes = Mutate(gtBytes, rng, out kind);
            else resultBytes = Mutate(resultBytes, rng, out kind);
            cases++;
            long t0 = Stopwatch.GetTimestamp();
            try
            {
                var gt = CocoJson.ParseDataset(gtBytes, "gt.json");
                var dt = CocoResults.Parse(resultBytes, "dt.json", gt);
                CocoEvaluator.Evaluate(gt, dt, rng.Next(2) == 0 ? CocoIouType.Segm : CocoIouType.Bbox);
                accepted++;
            }
            catch (CocoFormatException e)
            {
                rejected++;
                Assert.DoesNotContain('\n', e.Message);
                Assert.DoesNotContain("(Parameter", e.Message, StringComparison.Ordinal);
                Assert.True(e.Message.StartsWith("gt.json: ", StringComparison.Ordinal) || e.Message.StartsWith("dt.json: ", StringComparison.Ordinal),
                    $"the message does not name the file: {e.Message}");
            }
            catch (Exception e)
            {
                byKind[kind] = byKind.GetValueOrDefault(kind) + 1;
                if (escaped.Count < 20) escaped.Add($"#{it} {name} {(mutateGt ? "gt" : "dt")} {kind}: {e.GetType().Name}: {e.Message} {e.StackTrace?.Split('\n').FirstOrDefault(l => l.Contains("CrateIL.Segmentation.Coco", StringComparison.Ordinal))}");
            }
            double ms = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            if (ms > slowest.Ms) slowest = (ms, $"#{it} {name} {(mutateGt ? "gt" : "dt")} {kind}");
        }
        output.WriteLine($"{cases} mutated files in {clock.Elapsed.TotalSeconds:F1} s ({(Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds:F1} s CPU): {rejected} rejected with CocoFormatException, {accepted} accepted");
        output.WriteLine($"slowest case: {slowest.Case}, {slowest.Ms:F0} ms");
        foreach (var (k, n) in byKind) output.WriteLine($"  escaped after {k}: {n}");
        Assert.True(escaped.Count == 0, string.Join("\n", escaped));
        // Both outcomes occur: the fuzzer reaches the evaluator, and it also damages files enough to be refused.
        Assert.InRange(rejected, cases / 10, cases - cases / 20);
    }

    [Fact]
    public void Invalid_utf8_inside_a_string_is_the_typed_error()
    {
        byte[] gt = Encoding.UTF8.GetBytes("""{"images": [{"id": 1, "width": 4, "height": 4, "file_name": "a?.jpg"}], "annotations": [], "categories": [{"id": 1, "name": "x"}]}""");
        int q = Array.IndexOf(gt, (byte)'?');
        gt[q] = 0xC3; // a lead byte followed by '.', not a continuation byte
        var e = Assert.Throws<CocoFormatException>(() => CocoJson.ParseDataset(gt, "bad.json"));
        Assert.StartsWith("bad.json: ", e.Message, StringComparison.Ordinal);
        Assert.Contains("UTF-8", e.Message, StringComparison.Ordinal);
    }

    private static readonly string[] Kinds =
        ["truncate", "flip", "insert", "delete-span", "wrong-type", "negative", "non-finite", "huge", "missing-key", "invalid-utf8", "duplicate-node"];

    /// <summary>One to three mutations, byte-level or structural (through <see cref="JsonNode"/>), named in <paramref name="kind"/>.</summary>
    private static byte[] Mutate(byte[] original, Random rng, out string kind)
    {
        byte[] bytes = original;
        int count = rng.Next(4) == 0 ? 2 : 1;
        var names = new List<string>();
        for (int m = 0; m < count; m++)
        {
            string k = Kinds[rng.Next(Kinds.Length)];
            names.Add(k);
            bytes = k switch
            {
                "truncate" => bytes[..rng.Next(bytes.Length + 1)],
                "flip" => Flip(bytes, rng),
                "insert" => Insert(bytes, rng),
                "delete-span" => DeleteSpan(bytes, rng),
                "invalid-utf8" => InvalidUtf8InString(bytes, rng),
                _ => StructuralOrFlip(bytes, rng, k),
            };
        }
        kind = string.Join("+", names);
        return bytes;
    }

    private static byte[] Flip(byte[] bytes, Random rng)
    {
        if (bytes.Length == 0) return bytes;
        var b = (byte[])bytes.Clone();
        int flips = 1 + rng.Next(4);
        for (int i = 0; i < flips; i++) b[rng.Next(b.Length)] ^= (byte)(1 << rng.Next(8));
        return b;
    }

    private static byte[] Insert(byte[] bytes, Random rng)
    {
        string[] tokens = ["-", "1e999", "[", "]", "{", "}", ",", "\"", "null", "0", "-0", "1e308", "99999999999999999999", "\\u0000", "\\ud800", "NaN", "\xff"];
        byte[] piece = Encoding.Latin1.GetBytes(tokens[rng.Next(tokens.Length)]);
        int at = rng.Next(bytes.Length + 1);
        return [.. bytes[..at], .. piece, .. bytes[at..]];
    }

    private static byte[] DeleteSpan(byte[] bytes, Random rng)
    {
        if (bytes.Length == 0) return bytes;
        int at = rng.Next(bytes.Length), len = 1 + rng.Next(Math.Min(64, bytes.Length - at));
        return [.. bytes[..at], .. bytes[(at + len)..]];
    }

    /// <summary>Puts a byte sequence that is not UTF-8 inside one of the file's string literals.</summary>
    private static byte[] InvalidUtf8InString(byte[] bytes, Random rng)
    {
        var quotes = new List<int>();
        for (int i = 0; i < bytes.Length; i++) if (bytes[i] == (byte)'"') quotes.Add(i);
        if (quotes.Count == 0) return bytes;
        int at = quotes[rng.Next(quotes.Count)] + 1;
        byte[][] bad = [[0xFF], [0xC3], [0xE2, 0x82], [0xED, 0xA0, 0x80], [0xC0, 0xAF], [0xF8, 0x88, 0x80, 0x80, 0x80], [0x80]];
        return [.. bytes[..at], .. bad[rng.Next(bad.Length)], .. bytes[at..]];
    }

    private static byte[] StructuralOrFlip(byte[] bytes, Random rng, string kind)
    {
        // A file an earlier mutation broke (bad syntax, bad UTF-8, a lone surrogate escape) cannot be edited as a tree.
        try { return Structural(bytes, rng, kind); }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or ArgumentException) { return Flip(bytes, rng); }
    }

    private static byte[] Structural(byte[] bytes, Random rng, string kind)
    {
        if (!System.Text.Unicode.Utf8.IsValid(bytes)) return Flip(bytes, rng);
        var root = JsonNode.Parse(bytes);
        if (root is null) return bytes;
        var nodes = new List<(JsonNode? Parent, string? Key, int Index, JsonNode? Node)>();
        Collect(root, null, null, -1, nodes, 0);
        if (nodes.Count == 0) return bytes;
        var (parent, key, index, node) = nodes[rng.Next(nodes.Count)];
        JsonNode? replacement;
        switch (kind)
        {
            case "wrong-type":
                JsonNode?[] options = [JsonValue.Create("x"), JsonValue.Create(true), null, new JsonObject(), new JsonArray(), JsonValue.Create(1.5), new JsonArray(JsonValue.Create("a"))];
                replacement = options[rng.Next(options.Length)];
                break;
            case "negative":
                replacement = node is JsonValue v && v.TryGetValue(out double d) ? JsonValue.Create(-Math.Abs(d) - rng.Next(3)) : JsonValue.Create(-1);
                break;
            case "non-finite":
                // JSON has no NaN: the token goes in as text, as a careless writer emits it, or as a number that overflows double.
                replacement = JsonValue.Create(rng.Next(3) switch { 0 => "NaN", 1 => "Infinity", _ => "-Infinity" });
                if (rng.Next(2) == 0) return Encoding.UTF8.GetBytes(Replace(root, parent, key, index, JsonValue.Create(123456789.0)).Replace("123456789", rng.Next(2) == 0 ? "NaN" : "1e999"));
                break;
            case "huge":
                double[] huge = [1e308, 9.3e18, 2147483648, 4294967296, 1e15, 65536, 46341];
                replacement = JsonValue.Create(huge[rng.Next(huge.Length)] * (rng.Next(4) == 0 ? -1 : 1));
                break;
            case "missing-key":
                if (parent is JsonObject o && key is not null) { o.Remove(key); return Encoding.UTF8.GetBytes(root.ToJsonString()); }
                if (parent is JsonArray a && index >= 0) { a.RemoveAt(index); return Encoding.UTF8.GetBytes(root.ToJsonString()); }
                return bytes;
            default: // duplicate-node: a sibling copy (duplicate ids, extra polygon points, extra array entries)
                if (parent is JsonArray arr && node is not null) { arr.Add(node.DeepClone()); return Encoding.UTF8.GetBytes(root.ToJsonString()); }
                replacement = node?.DeepClone();
                break;
        }
        return Encoding.UTF8.GetBytes(Replace(root, parent, key, index, replacement));
    }

    private static string Replace(JsonNode root, JsonNode? parent, string? key, int index, JsonNode? replacement)
    {
        if (parent is JsonObject o && key is not null) o[key] = replacement;
        else if (parent is JsonArray a && index >= 0) a[index] = replacement;
        else return replacement?.ToJsonString() ?? "null";
        return root.ToJsonString();
    }

    private static void Collect(JsonNode? node, JsonNode? parent, string? key, int index, List<(JsonNode?, string?, int, JsonNode?)> into, int depth)
    {
        into.Add((parent, key, index, node));
        if (depth > 8) return;
        switch (node)
        {
            case JsonObject o:
                foreach (var (k, v) in o.ToList()) Collect(v, o, k, -1, into, depth + 1);
                break;
            case JsonArray a:
                // Long arrays (polygon coordinates, run lengths): a few entries are enough to reach every shape.
                int n = a.Count;
                for (int i = 0; i < n; i++)
                    if (n <= 8 || i < 3 || i == n - 1 || i % (n / 4) == 0) Collect(a[i], a, null, i, into, depth + 1);
                break;
        }
    }
}
