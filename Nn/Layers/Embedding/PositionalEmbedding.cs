using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;
using CrateIL.Nn.Parameters;

namespace CrateIL.Nn.Layers;

/// <summary>How the patch part of the position table is resampled for a patch grid other than the trained one.</summary>
public enum PositionInterpolation
{
    /// <summary>
    /// <c>F.interpolate(size=(rows, cols), mode='bicubic', align_corners=False)</c>: the standard mapping
    /// src = (dst + 0.5)·in/out − 0.5; the trained grid maps to itself exactly.
    /// </summary>
    Size,

    /// <summary>
    /// DINO's <c>interpolate_pos_encoding</c> as used by the CRATE emergence notebook: scale factors
    /// ((rows + 0.1)/rows₀, (cols + 0.1)/cols₀) with <c>recompute_scale_factor=False</c>, so the output grid is
    /// floor(rows₀·s) = rows and src = (dst + 0.5)/s − 0.5 (uses s, not in/out). The +0.1 avoids a floor rounding one
    /// short; it also means the trained grid itself is slightly resampled (not the identity). The row factor is taken
    /// from the patch-grid rows (DINO's "w" is the image height), which is exact for square and non-square grids.
    /// </summary>
    ScaleFactor,
}

/// <summary>
/// CLS token and learned positional embedding: X⁰ = concat(cls, e) + pos with <c>cls_token</c> [1, 1, dim] and
/// <c>pos_embedding</c> [1, N + 1, dim], both N(0, 1) (torch.randn). Tokens e are [B, N, dim], X⁰ [B, N + 1, dim].
/// For another patch grid the patch rows of the table (reshaped to the trained grid) are resampled bicubically and
/// the CLS row is kept (inference only: no gradient through the resampling). Embedding dropout is a separate layer.
/// </summary>
public sealed class PositionalEmbedding : IDisposable
{
    private const string Layer = "PositionalEmbedding";
    private Tensor? _table, _patchTable, _basePatchTable, _baseClsRow, _clsRow;
    private int _batch = -1;
    private bool _interpolated;

    /// <param name="gridRows">Trained patch-grid rows (H/P).</param>
    /// <param name="gridCols">Trained patch-grid columns (W/P).</param>
    /// <param name="prefix">Prefix of the names; CRATE's are top-level (<c>cls_token</c>, <c>pos_embedding</c>).</param>
    public PositionalEmbedding(ParameterStore store, int gridRows, int gridCols, int dim, string prefix = "")
    {
        ArgumentNullException.ThrowIfNull(store);
        if (gridRows < 1 || gridCols < 1 || dim < 1)
            throw new ArgumentOutOfRangeException(nameof(gridRows), $"{Layer}: grid {gridRows}×{gridCols} and dim {dim} must be positive");
        Store = store;
        GridRows = gridRows;
        GridCols = gridCols;
        Dim = dim;
        Cls = store.Add(LayerBuffer.Join(prefix, "cls_token"), [1, 1, dim], ParameterInit.StandardNormal, decay: false);
        Pos = store.Add(LayerBuffer.Join(prefix, "pos_embedding"), [1, gridRows * gridCols + 1, dim], ParameterInit.StandardNormal, decay: false);
    }

    public ParameterStore Store { get; }
    public int GridRows { get; }
    public int GridCols { get; }
    public int Dim { get; }

    /// <summary>Patch tokens N of the trained grid.</summary>
    public int Tokens => GridRows * GridCols;

    public Parameter Cls { get; }
    public Parameter Pos { get; }

    /// <summary>X⁰ = concat(cls, e) + pos on the trained grid. e [B, N, dim], x0 [B, N + 1, dim].</summary>
    public void Forward(Tensor e, Tensor x0) => Forward(e, x0, GridRows, GridCols, PositionInterpolation.Size);

    /// <summary>
    /// X⁰ for a <paramref name="gridRows"/>×<paramref name="gridCols"/> patch grid. On the trained grid with
    /// <see cref="PositionInterpolation.Size"/> the table is used as is (and <see cref="Backward"/> is available);
    /// otherwise the table is resampled with <paramref name="mode"/> (forward only).
    /// </summary>
    public void Forward(Tensor e, Tensor x0, int gridRows, int gridCols, PositionInterpolation mode)
    {
        LayerBuffer.RequireBuilt(Layer, Store);
        int tokens = gridRows * gridCols;
        int batch = CheckTokens(nameof(e), e, tokens, nameof(x0), x0);
        bool native = gridRows == GridRows && gridCols == GridCols && mode == PositionInterpolation.Size;
        var table = native ? Pos.Value : InterpolateInto(gridRows, gridCols, mode);
        _batch = batch;
        _interpolated = !native;
        if (batch == 0) return;
        var args = new TokenArgs(batch, tokens, Dim);
        switch (Store.Device)
        {
            case CpuDevice cpu: EmbeddingCpu.AddClsPos(cpu, e, Cls.Value, table, x0, args); break;
            case IlgpuDevice gpu: EmbeddingIlgpu.AddClsPos(gpu, e, Cls.Value, table, x0, args); break;
            default: throw new NotSupportedException($"{Layer} has no implementation for device {Store.Device.Spec}");
        }
    }

    /// <summary>
    /// de = dX⁰[:, 1:] (assigned); dcls += Σ_b dX⁰[b, 0]; dpos += Σ_b dX⁰[b] (accumulated). Only after a Forward on
    /// the trained grid.
    /// </summary>
    public void Backward(Tensor dx0, Tensor de)
    {
        if (_batch < 0) throw new InvalidOperationException($"{Layer}: Backward called before Forward");
        if (_interpolated)
            throw new InvalidOperationException($"{Layer}: the last Forward resampled the position table (another grid or the scale-factor mode); gradients exist only on the trained {GridRows}×{GridCols} grid");
        int batch = CheckTokens(nameof(de), de, Tokens, nameof(dx0), dx0);
        if (batch != _batch) throw new ArgumentException($"{Layer}: dx0 has batch {batch} but Forward saw {_batch}", nameof(dx0));
        if (batch == 0) return;
        var args = new TokenArgs(batch, Tokens, Dim);
        switch (Store.Device)
        {
            case CpuDevice cpu: EmbeddingCpu.ClsPosBackward(cpu, dx0, de, Cls.Grad, Pos.Grad, args); break;
            case IlgpuDevice gpu: EmbeddingIlgpu.ClsPosBackward(gpu, dx0, de, Cls.Grad, Pos.Grad, args); break;
            default: throw new NotSupportedException($"{Layer} has no implementation for device {Store.Device.Spec}");
        }
    }

    /// <summary>
    /// The position table [rows·cols + 1, dim] for a patch grid: row 0 is the CLS position (kept), the rest the
    /// bicubically resampled patch table (<see cref="PositionInterpolation"/>). Writes into <paramref name="table"/>.
    /// </summary>
    public void InterpolatedTable(int gridRows, int gridCols, PositionInterpolation mode, Tensor table)
    {
        LayerBuffer.RequireBuilt(Layer, Store);
        ArgumentNullException.ThrowIfNull(table);
        if (gridRows < 1 || gridCols < 1) throw new ArgumentOutOfRangeException(nameof(gridRows), $"{Layer}: grid {gridRows}×{gridCols} must be positive");
        if (table.Length != ((long)gridRows * gridCols + 1) * Dim || table.Shape.LastDim != Dim)
            throw new ArgumentException($"{Layer}: table{table.Shape} must be [{gridRows * gridCols + 1}, {Dim}]", nameof(table));
        LayerBuffer.SameDevice(Layer, nameof(table), table, Store.Device);
        using var cls = table.Slice(0, 1, Dim);
        using var patches = table.Slice(Dim, gridRows * gridCols, Dim);
        Resample(gridRows, gridCols, mode, cls, patches);
    }

    private Tensor InterpolateInto(int gridRows, int gridCols, PositionInterpolation mode)
    {
        int tokens = gridRows * gridCols;
        bool reshaped = _table is null || _table.IsDisposed || _table.Shape[0] != tokens + 1;
        var table = LayerBuffer.Ensure(ref _table, Store.Device, tokens + 1, Dim);
        if (reshaped)
        {
            LayerBuffer.Release(ref _patchTable);
            LayerBuffer.Release(ref _clsRow);
            _clsRow = table.Slice(0, 1, Dim);
            _patchTable = table.Slice(Dim, tokens, Dim);
        }
        // Recomputed on every call from the current parameters (never from an earlier resampled table).
        Resample(gridRows, gridCols, mode, _clsRow!, _patchTable!);
        return table;
    }

    private void Resample(int gridRows, int gridCols, PositionInterpolation mode, Tensor clsRow, Tensor patchRows)
    {
        var pos = Pos.Value;
        _basePatchTable ??= pos.Slice(Dim, Tokens, Dim);
        _baseClsRow ??= pos.Slice(0, 1, Dim);
        _baseClsRow.CopyTo(clsRow);
        switch (mode)
        {
            case PositionInterpolation.Size:
                BicubicResize.ToSize(_basePatchTable, GridRows, GridCols, patchRows, gridRows, gridCols);
                break;
            case PositionInterpolation.ScaleFactor:
                double sr = (gridRows + 0.1) / GridRows, sc = (gridCols + 0.1) / GridCols;
                var (outRows, outCols) = BicubicResize.ScaledSize(GridRows, GridCols, sr, sc);
                if (outRows != gridRows || outCols != gridCols)
                    throw new InvalidOperationException($"{Layer}: scale factors ({sr}, {sc}) give a {outRows}×{outCols} grid, not {gridRows}×{gridCols}");
                BicubicResize.ByScaleFactor(_basePatchTable, GridRows, GridCols, patchRows, sr, sc);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(mode), mode, $"{Layer}: unknown interpolation mode");
        }
    }

    /// <summary>Checks e [B, tokens, dim] against x0 [B, tokens + 1, dim]; returns B.</summary>
    private int CheckTokens(string eName, Tensor e, int tokens, string xName, Tensor x0)
    {
        ArgumentNullException.ThrowIfNull(e, eName);
        ArgumentNullException.ThrowIfNull(x0, xName);
        if (tokens < 1) throw new ArgumentOutOfRangeException(nameof(tokens), $"{Layer}: the patch grid must have at least one token");
        if (e.Rank != 3 || e.Shape[1] != tokens || e.Shape[2] != Dim)
            throw new ArgumentException($"{Layer}: {eName}{e.Shape} must be [B, {tokens}, {Dim}]", eName);
        int batch = e.Shape[0];
        if (x0.Rank != 3 || x0.Shape[0] != batch || x0.Shape[1] != tokens + 1 || x0.Shape[2] != Dim)
            throw new ArgumentException($"{Layer}: {xName}{x0.Shape} must be [{batch}, {tokens + 1}, {Dim}]", xName);
        LayerBuffer.SameDevice(Layer, eName, e, Store.Device);
        LayerBuffer.SameDevice(Layer, xName, x0, Store.Device);
        if (x0.Length > int.MaxValue) throw new ArgumentException($"{Layer}: {xName}{x0.Shape} has more than {int.MaxValue} elements", xName);
        return batch;
    }

    public void Dispose()
    {
        LayerBuffer.Release(ref _patchTable);
        LayerBuffer.Release(ref _clsRow);
        LayerBuffer.Release(ref _table);
        LayerBuffer.Release(ref _basePatchTable);
        LayerBuffer.Release(ref _baseClsRow);
    }
}
