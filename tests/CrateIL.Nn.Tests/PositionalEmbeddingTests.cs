using CrateIL.Compute.Devices;
using CrateIL.Nn.Layers;
using CrateIL.Nn.Parameters;
using CrateIL.Testing;
using Xunit;
using static CrateIL.Nn.Tests.LayerTesting;

namespace CrateIL.Nn.Tests;

public class PositionalEmbeddingTests
{
    private static readonly Tolerance Exact = new(1e-6, 1e-6);
    /// <summary>Float32 bicubic (16 taps, coordinates in float32 as PyTorch) against PyTorch's float64 result.</summary>
    private static readonly Tolerance BicubicTol = new(2e-6, 2e-5);

    [Fact]
    public void ReferenceBackwardMatchesFiniteDifferences()
    {
        const int batch = 3, tokens = 5, dim = 7;
        var e = D(1, batch * tokens * dim); var cls = D(2, dim); var table = D(3, (tokens + 1) * dim); var probe = D(4, batch * (tokens + 1) * dim);
        var (de, dcls, dpos) = PositionalEmbeddingReference.Backward(probe, batch, tokens, dim);
        double L(double[] ee, double[] cc, double[] tt) => FiniteDifference.Probe(PositionalEmbeddingReference.Forward(ee, cc, tt, batch, tokens, dim), probe);
        Check.Close(de, FiniteDifference.Gradient(v => L(v, cls, table), e), Fd, "de");
        Check.Close(dcls, FiniteDifference.Gradient(v => L(e, v, table), cls), Fd, "dcls");
        Check.Close(dpos, FiniteDifference.Gradient(v => L(e, cls, v), table), Fd, "dpos");
    }

    private static IEnumerable<(int Batch, int Rows, int Cols, int Dim)> Shapes(string backend) =>
        Backends.IsSimulator(backend) ? [(3, 2, 3, 7), (1, 1, 1, 5)] : [(3, 2, 3, 7), (1, 1, 1, 5), (5, 7, 9, 65), (2, 4, 4, 127)];

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void ForwardAndBackwardMatchReferenceWithAccumulatedGrads(string backend)
    {
        var dev = Backends.Get(backend);
        int seed = 40;
        foreach (var (batch, rows, cols, dim) in Shapes(backend))
        {
            string what = $"cls+pos B{batch} grid {rows}x{cols} dim{dim} on {backend}";
            int n = rows * cols;
            using var store = new ParameterStore();
            using var layer = new PositionalEmbedding(store, rows, cols, dim);
            store.Build(dev, seed++);
            var (values, grads0) = Randomise(store, seed++);
            var eh = TestData.Normal(seed++, batch * n * dim);
            var dh = TestData.Normal(seed++, batch * (n + 1) * dim);
            using var e = dev.FromHost(eh, batch, n, dim);
            using var x0 = Poisoned(dev, batch, n + 1, dim);
            using var dx0 = dev.FromHost(dh, batch, n + 1, dim);
            using var de = Poisoned(dev, batch, n, dim);
            layer.Forward(e, x0);
            layer.Backward(dx0, de);
            Check.Close(x0.ToArray(), PositionalEmbeddingReference.Forward(D(eh), D(values["cls_token"]), D(values["pos_embedding"]), batch, n, dim), Exact, what + " x0");
            var (rde, rdcls, rdpos) = PositionalEmbeddingReference.Backward(D(dh), batch, n, dim);
            Check.Close(de.ToArray(), rde, new Tolerance(0, 0), what + " de");
            CheckAccumulated(store, "cls_token", grads0["cls_token"], rdcls, Exact, what);
            CheckAccumulated(store, "pos_embedding", grads0["pos_embedding"], rdpos, Exact, what);
        }
    }

    [Fact]
    public void ReferenceBicubicMatchesPyTorchFloat64()
    {
        foreach (var c in EmbeddingFixture.Bicubic)
        {
            double sr = c.Mode == "size" ? (double)c.InRows / c.OutRows : 1 / c.ScaleRows;
            double sc = c.Mode == "size" ? (double)c.InCols / c.OutCols : 1 / c.ScaleCols;
            var r = PositionalEmbeddingReference.Bicubic(c.Src, c.InRows, c.InCols, c.Channels, c.OutRows, c.OutCols, sr, sc);
            Check.Close(r, c.Out64, new Tolerance(1e-12, 1e-12), $"reference bicubic {c.Name}");
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void BicubicResizeMatchesPyTorch(string backend)
    {
        var dev = Backends.Get(backend);
        foreach (var c in EmbeddingFixture.Bicubic)
        {
            using var src = dev.FromHost(EmbeddingFixture.F(c.Src), c.InRows * c.InCols, c.Channels);
            using var dst = Poisoned(dev, c.OutRows * c.OutCols, c.Channels);
            if (c.Mode == "size") BicubicResize.ToSize(src, c.InRows, c.InCols, dst, c.OutRows, c.OutCols);
            else
            {
                Assert.Equal((c.OutRows, c.OutCols), BicubicResize.ScaledSize(c.InRows, c.InCols, c.ScaleRows, c.ScaleCols));
                BicubicResize.ByScaleFactor(src, c.InRows, c.InCols, dst, c.ScaleRows, c.ScaleCols);
            }
            var got = dst.ToArray();
            Check.Close(got, c.Out64, BicubicTol, $"bicubic {c.Name} on {backend} vs torch float64");
            Check.Close(got, c.Out32, BicubicTol, $"bicubic {c.Name} on {backend} vs torch float32");
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void InterpolatedTablesMatchDinoAndSizeModesAndKeepTheClsRow(string backend)
    {
        var dev = Backends.Get(backend);
        foreach (var c in EmbeddingFixture.Positions)
        {
            using var store = new ParameterStore();
            using var layer = new PositionalEmbedding(store, c.Grid0, c.Grid0, c.Dim);
            store.Build(dev);
            layer.Pos.Value.CopyFrom(EmbeddingFixture.F(c.Pos));
            using var table = Poisoned(dev, c.Rows * c.Cols + 1, c.Dim);
            layer.InterpolatedTable(c.Rows, c.Cols, PositionInterpolation.ScaleFactor, table);
            Check.Close(table.ToArray(), c.ScaleTable, BicubicTol, $"{c.Name} scale-factor (DINO) table on {backend}");
            Assert.Equal(EmbeddingFixture.F(c.Pos).AsSpan(0, c.Dim).ToArray(), table.ToArray().AsSpan(0, c.Dim).ToArray());   // CLS row kept as is
            table.Fill(float.NaN);
            layer.InterpolatedTable(c.Rows, c.Cols, PositionInterpolation.Size, table);
            Check.Close(table.ToArray(), c.SizeTable, BicubicTol, $"{c.Name} size table on {backend}");
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void ForwardOnAnotherGridUsesTheResampledTableAndRefusesBackward(string backend)
    {
        var dev = Backends.Get(backend);
        var c = EmbeddingFixture.Positions[0];   // trained 4×4 grid, inference on 6×3
        using var store = new ParameterStore();
        using var layer = new PositionalEmbedding(store, c.Grid0, c.Grid0, c.Dim);
        store.Build(dev, 3);
        layer.Pos.Value.CopyFrom(EmbeddingFixture.F(c.Pos));
        var cls = layer.Cls.Value.ToArray();
        const int batch = 2;
        int n = c.Rows * c.Cols;
        var eh = TestData.Normal(5, batch * n * c.Dim);
        using var e = dev.FromHost(eh, batch, n, c.Dim);
        using var x0 = Poisoned(dev, batch, n + 1, c.Dim);
        foreach (var mode in new[] { PositionInterpolation.ScaleFactor, PositionInterpolation.Size })
        {
            x0.Fill(float.NaN);
            layer.Forward(e, x0, c.Rows, c.Cols, mode);
            var table = mode == PositionInterpolation.ScaleFactor ? c.ScaleTable : c.SizeTable;
            Check.Close(x0.ToArray(), PositionalEmbeddingReference.Forward(D(eh), D(cls), table, batch, n, c.Dim), BicubicTol, $"x0 {mode} on {backend}");
            using var de = dev.Zeros(batch, n, c.Dim);
            Assert.Throws<InvalidOperationException>(() => layer.Backward(x0, de));
        }

        // The trained grid in size mode is the table itself; the scale-factor mode resamples it even there (DINO's +0.1).
        using var e16 = dev.FromHost(TestData.Normal(6, batch * 16 * c.Dim), batch, 16, c.Dim);
        using var a = Poisoned(dev, batch, 17, c.Dim);
        using var b = Poisoned(dev, batch, 17, c.Dim);
        layer.Forward(e16, a);
        layer.Forward(e16, b, 4, 4, PositionInterpolation.Size);
        Assert.Equal(a.ToArray(), b.ToArray());
        layer.Forward(e16, b, 4, 4, PositionInterpolation.ScaleFactor);
        Assert.NotEqual(a.ToArray(), b.ToArray());
    }

    [Fact]
    public void NamesShapesInitAndErrors()
    {
        using var dev = CpuDevice.Create(1);
        using var store = new ParameterStore();
        using var layer = new PositionalEmbedding(store, 14, 14, 64);
        store.Build(dev, 11);
        Assert.Equal(["cls_token", "pos_embedding"], store.Parameters.Select(p => p.Name));
        Assert.Equal([1, 1, 64], layer.Cls.Shape.Dims.ToArray());
        Assert.Equal([1, 197, 64], layer.Pos.Shape.Dims.ToArray());
        var pos = layer.Pos.Value.ToArray();
        double mean = pos.Average(), std = Math.Sqrt(pos.Select(v => (v - mean) * (v - mean)).Average());
        Assert.InRange(mean, -0.05, 0.05);
        Assert.InRange(std, 0.95, 1.05);   // N(0, 1) like torch.randn
        using var e = dev.Zeros(2, 196, 64);
        using var wrong = dev.Zeros(2, 196, 64);
        Assert.Throws<ArgumentException>(() => layer.Forward(e, wrong));
        using var x0 = dev.Zeros(2, 197, 64);
        Assert.Throws<InvalidOperationException>(() => layer.Backward(x0, e));
        Assert.Throws<ArgumentException>(() => layer.Forward(e, x0, 13, 14, PositionInterpolation.Size));
    }
}
