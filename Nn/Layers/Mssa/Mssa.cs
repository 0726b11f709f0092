using CrateIL.Compute.Devices;
using CrateIL.Compute.Ops;
using CrateIL.Compute.Tensors;
using CrateIL.Nn.Parameters;

namespace CrateIL.Nn.Layers;

/// <summary>
/// CRATE's multi-head subspace self-attention on normalised tokens Y [batch·n, dim] (crate-reference §1.2 step 5):
/// w = Y·Uᵀ (U = qkv.weight [heads·dh, dim], no bias) is query, key and value at once; per head
/// O_k = softmax(w_k·w_kᵀ·dh^−½)·w_k; out = concat(O)·Woutᵀ + bout (to_out.0, Identity when heads = 1 and dh = dim).
/// The attention itself runs in <see cref="AttentionCore"/> (fused flash-style kernels on ILGPU, SGEMM over column
/// slices on the CPU); its backward returns the single gradient dw = dQ + dK + dV.
/// Parameters are registered as <c>{prefix}qkv.weight</c>, <c>{prefix}to_out.0.weight</c>, <c>{prefix}to_out.0.bias</c>.
/// </summary>
public sealed class Mssa : ITokenMixer, IDisposable
{
    private AttentionCore? _core;
    private Device? _device;
    private Tensor? _w, _o, _dO, _dw;
    private Tensor? _y;
    private int _batch, _n;
    private readonly ParameterStore _store;
    private readonly FrozenOperand _frozenQkv = new(), _frozenOut = new();

    public Mssa(ParameterStore store, string prefix, int dim, int heads, int dimHead)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(prefix);
        if (dim < 1 || heads < 1 || dimHead < 1)
            throw new ArgumentOutOfRangeException(nameof(dim), $"MSSA needs positive dim, heads and dim_head (got {dim}, {heads}, {dimHead})");
        Dim = dim;
        Heads = heads;
        DimHead = dimHead;
        _store = store;
        Qkv = store.Add(prefix + "qkv.weight", [Inner, dim], ParameterInit.UniformFanIn, fanIn: dim);
        if (ProjectsOut)
        {
            OutWeight = store.Add(prefix + "to_out.0.weight", [dim, Inner], ParameterInit.UniformFanIn, fanIn: Inner);
            OutBias = store.Add(prefix + "to_out.0.bias", [dim], ParameterInit.UniformFanIn, fanIn: Inner, decay: false);
        }
    }

    public int Dim { get; }
    public int Heads { get; }
    public int DimHead { get; }
    public int Inner => Heads * DimHead;

    /// <summary>False when to_out is the Identity (heads = 1 and dh = dim), as in the reference code.</summary>
    public bool ProjectsOut => !(Heads == 1 && DimHead == Dim);

    public Parameter Qkv { get; }
    public Parameter? OutWeight { get; }
    public Parameter? OutBias { get; }

    /// <summary>The attention core (available after the first forward pass).</summary>
    public AttentionCore? Core => _core;

    /// <summary>
    /// The projection w = Y·Uᵀ [batch·n, heads·dh] saved by the last forward pass — query, key and value at once —
    /// for reading attention without recomputing LayerNorm and the projection; null before the first pass.
    /// </summary>
    public HeadColumns? Projection => _w is null ? null : new HeadColumns(_w, 0, Inner);

    /// <summary>
    /// output = MSSA(y), or output += MSSA(y) when <paramref name="accumulate"/> (the block's residual).
    /// y is [batch·n, dim] (any shape with that many elements) and must stay unchanged until <see cref="Backward"/>.
    /// </summary>
    public void Forward(Tensor y, Tensor output, int batch, bool accumulate = false)
    {
        int rows = Rows("y", y, batch);
        if (output.Length != y.Length || !ReferenceEquals(output.Device, y.Device))
            throw new ArgumentException($"MSSA: output{output.Shape} must match y{y.Shape} in length and device", nameof(output));
        if (ReferenceEquals(output.Storage, y.Storage) && output.Offset == y.Offset)
            throw new ArgumentException("MSSA: output must not be y (backward needs y)", nameof(output));
        Ensure(y.Device, batch, rows / batch);
        _y = y;
        int inner = Inner;
        // w = Y·Uᵀ
        Gemm.Batched(1, rows, inner, Dim, 1f, Mat(y, Dim), false, Mat(Qkv.Value, Dim), true, 0f, Mat(_w!, inner),
            _frozenQkv.For(_store, Mat(Qkv.Value, Dim), true, Dim, inner));
        var w = new HeadColumns(_w!, 0, inner);
        _core!.Forward(batch, _n, w, w, w, new HeadColumns(_o!, 0, inner));
        if (ProjectsOut)
        {
            Gemm.Batched(1, rows, Dim, inner, 1f, Mat(_o!, inner), false, Mat(OutWeight!.Value, inner), true, accumulate ? 1f : 0f, Mat(output, Dim),
                _frozenOut.For(_store, Mat(OutWeight.Value, inner), true, inner, Dim));
            BiasAdd.Forward(output, OutBias!.Value, output);
        }
        else if (accumulate) Elementwise.Add(output, _o!, output);
        else _o!.CopyTo(output);
    }

    /// <summary>
    /// From dOut = ∂L/∂output: dy is assigned (or accumulated when <paramref name="accumulate"/>); the parameter
    /// gradients are accumulated. Uses what the last <see cref="Forward"/> saved.
    /// </summary>
    public void Backward(Tensor dOut, Tensor dy, bool accumulate = false)
    {
        if (_y is null) throw new InvalidOperationException("MSSA backward needs a forward pass first");
        int rows = _batch * _n, inner = Inner;
        if (dOut.Length != (long)rows * Dim || dy.Length != (long)rows * Dim)
            throw new ArgumentException($"MSSA backward: dOut{dOut.Shape} and dy{dy.Shape} must hold {rows}×{Dim} elements like the forward input");
        if (!ReferenceEquals(dOut.Device, _device) || !ReferenceEquals(dy.Device, _device))
            throw new ArgumentException($"MSSA backward: dOut and dy must live on {_device!.Spec}");
        HeadColumns dO;
        if (ProjectsOut)
        {
            BiasAdd.Backward(dOut, OutBias!.Grad);
            // dWout += dOutᵀ·O ; dO = dOut·Wout
            Gemm.Batched(1, Dim, inner, rows, 1f, Mat(dOut, Dim), true, Mat(_o!, inner), false, 1f, Mat(OutWeight!.Grad, inner));
            Gemm.Batched(1, rows, inner, Dim, 1f, Mat(dOut, Dim), false, Mat(OutWeight.Value, inner), false, 0f, Mat(_dO!, inner));
            dO = new HeadColumns(_dO!, 0, inner);
        }
        else dO = new HeadColumns(dOut, 0, inner);
        var w = new HeadColumns(_w!, 0, inner);
        _core!.BackwardShared(_batch, _n, w, new HeadColumns(_o!, 0, inner), dO, new HeadColumns(_dw!, 0, inner));
        // dU += dwᵀ·Y ; dy = dw·U
        Gemm.Batched(1, inner, Dim, rows, 1f, Mat(_dw!, inner), true, Mat(_y, Dim), false, 1f, Mat(Qkv.Grad, Dim));
        Gemm.Batched(1, rows, Dim, inner, 1f, Mat(_dw!, inner), false, Mat(Qkv.Value, Dim), false, accumulate ? 1f : 0f, Mat(dy, Dim));
    }

    private static MatrixOperand Mat(Tensor t, int ld) => new(t, 0, ld, 0);

    private int Rows(string name, Tensor t, int batch)
    {
        ArgumentNullException.ThrowIfNull(t, name);
        if (batch < 1) throw new ArgumentOutOfRangeException(nameof(batch), batch, "MSSA: batch must be positive");
        if (t.Length % Dim != 0 || t.Length / Dim % batch != 0 || t.Length == 0)
            throw new ArgumentException($"MSSA: {name}{t.Shape} is not [batch={batch}, n, dim={Dim}]", name);
        return checked((int)(t.Length / Dim));
    }

    private void Ensure(Device device, int batch, int n)
    {
        if (!ReferenceEquals(Qkv.Value.Device, device))
            throw new ArgumentException($"MSSA: input lives on {device.Spec}, parameters on {Qkv.Value.Device.Spec}");
        _core ??= new AttentionCore(device, Heads, DimHead);
        if (_device == device && _batch == batch && _n == n) return;
        DisposeBuffers();
        _device = device;
        _batch = batch;
        _n = n;
        int rows = batch * n;
        _w = device.Allocate(rows, Inner);
        _o = device.Allocate(rows, Inner);
        _dw = device.Allocate(rows, Inner);
        if (ProjectsOut) _dO = device.Allocate(rows, Inner);
    }

    private void DisposeBuffers()
    {
        _w?.Dispose(); _o?.Dispose(); _dO?.Dispose(); _dw?.Dispose();
        _w = _o = _dO = _dw = null;
    }

    public void Dispose()
    {
        DisposeBuffers();
        _core?.Dispose();
        _frozenQkv.Dispose();
        _frozenOut.Dispose();
    }
}
