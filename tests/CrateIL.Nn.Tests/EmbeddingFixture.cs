using System.Text.Json;

namespace CrateIL.Nn.Tests;

/// <summary>tests/CrateIL.Nn.Tests/Fixtures/embedding_reference.json, written by tools/reference/embedding_reference.py.</summary>
internal static class EmbeddingFixture
{
    public sealed record BicubicCase(string Name, string Mode, int InRows, int InCols, int Channels, int OutRows, int OutCols,
        double ScaleRows, double ScaleCols, double[] Src, double[] Out64, double[] Out32);

    public sealed record PositionsCase(string Name, int Grid0, int Dim, int Rows, int Cols, double[] Pos, double[] ScaleTable, double[] SizeTable);

    public sealed record PatchCase(int Batch, int Channels, int Height, int Width, int Patch, int Dim,
        double[] Image, double[] Patches, double[] Tokens, double[] Probe, Dictionary<string, double[]> Params,
        Dictionary<string, double[]> Grads, double[] DImage);

    private static readonly Lazy<JsonDocument> Doc = new(() =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "embedding_reference.json"))));

    private static double[] Arr(JsonElement e) => e.EnumerateArray().Select(v => v.GetDouble()).ToArray();
    private static int I(JsonElement e, string name) => e.GetProperty(name).GetInt32();

    public static IReadOnlyList<BicubicCase> Bicubic => Doc.Value.RootElement.GetProperty("bicubic").EnumerateArray()
        .Select(c => new BicubicCase(c.GetProperty("name").GetString()!, c.GetProperty("mode").GetString()!,
            I(c, "in_rows"), I(c, "in_cols"), I(c, "channels"), I(c, "out_rows"), I(c, "out_cols"),
            c.GetProperty("scale_rows").GetDouble(), c.GetProperty("scale_cols").GetDouble(),
            Arr(c.GetProperty("src")), Arr(c.GetProperty("out64")), Arr(c.GetProperty("out32")))).ToList();

    public static IReadOnlyList<PositionsCase> Positions => Doc.Value.RootElement.GetProperty("positions").EnumerateArray()
        .Select(c => new PositionsCase(c.GetProperty("name").GetString()!, I(c, "grid0"), I(c, "dim"), I(c, "rows"), I(c, "cols"),
            Arr(c.GetProperty("pos")), Arr(c.GetProperty("scale_table")), Arr(c.GetProperty("size_table")))).ToList();

    public static PatchCase Patch
    {
        get
        {
            var r = Doc.Value.RootElement.GetProperty("patch_embedding");
            var c = r.GetProperty("config");
            static Dictionary<string, double[]> Map(JsonElement e) => e.EnumerateObject().ToDictionary(p => p.Name, p => Arr(p.Value));
            return new PatchCase(I(c, "batch"), I(c, "channels"), I(c, "height"), I(c, "width"), I(c, "patch"), I(c, "dim"),
                Arr(r.GetProperty("image")), Arr(r.GetProperty("patches")), Arr(r.GetProperty("tokens")), Arr(r.GetProperty("probe")),
                Map(r.GetProperty("params")), Map(r.GetProperty("grads")), Arr(r.GetProperty("dimage")));
        }
    }

    public static float[] F(double[] x) => x.Select(v => (float)v).ToArray();
}
