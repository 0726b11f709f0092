using System.Text.Json;

namespace CrateIL.Nn.Tests;

/// <summary>A fixture written by tools/reference/crate_layer.py (our PyTorch reference of one CRATE layer).</summary>
public sealed class LayerFixture
{
    public required string Name { get; init; }
    public int N, Dim, Heads, DimHead, Batch;
    public double Eta, Lambda, Eps, Loss;
    public required double[] X, Probe, Half, Y, Probs, Dx;
    public required Dictionary<string, double[]> Params, Grads;

    public static LayerFixture Load(string name)
    {
        string path = Path.Combine(AppContext.BaseDirectory, "Fixtures", name + ".json");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var r = doc.RootElement;
        var c = r.GetProperty("config");
        static double[] Arr(JsonElement e) => e.EnumerateArray().Select(v => v.GetDouble()).ToArray();
        static Dictionary<string, double[]> Map(JsonElement e) => e.EnumerateObject().ToDictionary(p => p.Name, p => Arr(p.Value));
        return new LayerFixture
        {
            Name = name,
            N = c.GetProperty("n").GetInt32(), Dim = c.GetProperty("dim").GetInt32(), Heads = c.GetProperty("heads").GetInt32(),
            DimHead = c.GetProperty("dim_head").GetInt32(), Batch = c.GetProperty("batch").GetInt32(),
            Eta = c.GetProperty("eta").GetDouble(), Lambda = c.GetProperty("lambd").GetDouble(), Eps = c.GetProperty("eps").GetDouble(),
            Loss = r.GetProperty("loss").GetDouble(),
            X = Arr(r.GetProperty("x")), Probe = Arr(r.GetProperty("probe")), Half = Arr(r.GetProperty("half")),
            Y = Arr(r.GetProperty("y")), Probs = Arr(r.GetProperty("probs")), Dx = Arr(r.GetProperty("dx")),
            Params = Map(r.GetProperty("params")), Grads = Map(r.GetProperty("grads")),
        };
    }
}
