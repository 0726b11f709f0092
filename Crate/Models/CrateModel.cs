using CrateIL.Compute.Devices;
using CrateIL.Compute.Ops;
using CrateIL.Compute.Tensors;
using CrateIL.Crate.Checkpoints;
using CrateIL.Nn.Layers;
using CrateIL.Nn.Parameters;

namespace CrateIL.Crate.Models;

/// <summary>
/// The CRATE image classifier (crate-reference §1.1–1.2) assembled from the Nn layers, with every parameter in one
/// <see cref="ParameterStore"/> under the official PyTorch state_dict names:
/// <c>to_patch_embedding.{1,2,3}.*</c>, <c>cls_token</c>, <c>pos_embedding</c>, <c>transformer.layers.{l}.0.*</c>
/// (the attention half), <c>transformer.layers.{l}.1.*</c> (ISTA or MLP half), <c>mlp_head.{0,1}.*</c>.
/// <para>
/// <see cref="Forward"/> maps normalised images [B, C, H, W] to logits [B, classes]; <see cref="Backward"/>
/// accumulates every parameter gradient from dlogits (head, layers in reverse, embeddings). The token features
/// of every layer are kept (they are the inputs the blocks' backward passes need), so they, the attention
/// probabilities and the qkv "key" features of any layer can be read after a forward pass. Activation buffers
/// are allocated for a (batch, grid) shape on first use and reused while it stays the same.
/// </para>
/// Images of another size (multiples of the patch) use the positional table resampled bicubically
/// (<c>F.interpolate(size=..., mode='bicubic')</c>); such passes are inference-only.
/// </summary>
public sealed partial class CrateModel : IDisposable
{
    private const string What = "CrateModel";
    private readonly PatchEmbedding _patch;
    private readonly PositionalEmbedding _positions;
    private readonly Nn.Layers.Dropout _embDropout;
    private readonly TransformerLayer[] _layers;
    private readonly ClassificationHead _head;

    private Tensor? _e, _de, _dx, _logits;
    private Tensor[] _x = [], _half = [];
    private int _batch = -1, _gridRows, _gridCols;
    private bool _forwarded, _nativeGrid;
    private long _step;

    /// <summary>Builds the model on <paramref name="device"/> with PyTorch-default initialisation drawn from <paramref name="seed"/>.</summary>
    public CrateModel(CrateConfig config, Device device, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(device);
        Config = config.Validate();
        if (config.Dropout > 0f)
            throw new ArgumentException($"{What}: dropout inside the attention ({config.Dropout}) is not supported by the fused blocks; every preset uses 0 (emb_dropout is supported)", nameof(config));
        Parameters = new ParameterStore();
        try
        {
            (_patch, _positions, _layers, _head) = Register(Parameters, config);
            _embDropout = new Nn.Layers.Dropout(config.EmbDropout, unchecked((ulong)seed * 0x9E3779B97F4A7C15UL + 1));
            Training = false;
            if (Parameters.Count != config.ParameterCount())
                throw new InvalidOperationException($"{What}: registered {Parameters.Count} parameters but the configuration counts {config.ParameterCount()}");
            Parameters.Build(device, seed);
        }
        catch
        {
            Parameters.Dispose();
            throw;
        }
        Device = device;
    }

    /// <summary>
    /// The (official name, shape) of every parameter of <paramref name="config"/>, in registration order, without
    /// allocating anything (for converting checkpoints).
    /// </summary>
    public static IReadOnlyList<TensorKey> KeysFor(CrateConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        using var store = new ParameterStore();
        var (patch, positions, layers, head) = Register(store, config);
        var keys = store.Parameters.Select(p => new TensorKey(p.Name, p.Shape.Dims.ToArray())).ToArray();
        patch.Dispose();
        positions.Dispose();
        foreach (var layer in layers) layer.Dispose();
        head.Dispose();
        return keys;
    }

    /// <summary>Creates the layers, registering their parameters in PyTorch's state_dict order.</summary>
    private static (PatchEmbedding, PositionalEmbedding, TransformerLayer[], ClassificationHead) Register(ParameterStore store, CrateConfig config)
    {
        var patch = new PatchEmbedding(store, config.Channels, config.PatchSize, config.Dim);
        var positions = new PositionalEmbedding(store, config.GridRows, config.GridCols, config.Dim);
        var layers = new TransformerLayer[config.Depth];
        for (int l = 0; l < config.Depth; l++) layers[l] = new TransformerLayer(store, config, l);
        var head = new ClassificationHead(store, config.Dim, config.Classes, config.Pool);
        return (patch, positions, layers, head);
    }

    public CrateConfig Config { get; }
    public Device Device { get; }

    /// <summary>All parameters and gradients (contiguous; official names).</summary>
    public ParameterStore Parameters { get; }

    /// <summary>
    /// Training mode enables embedding dropout (the only dropout the model has). Off by default, and off the ISTA
    /// blocks take the inference form (<see cref="IstaWorkspace.ForInference"/>: the folded dictionary, kept while it
    /// is unchanged); a backward pass stays correct either way.
    /// </summary>
    public bool Training
    {
        get => _embDropout.Training;
        set
        {
            _embDropout.Training = value;
            foreach (var layer in _layers)
                if (layer.Ista is not null) layer.Ista.ForInference = !value;
        }
    }

    /// <summary>
    /// The counter the next training forward pass keys its embedding-dropout mask with (it advances by one per
    /// forward pass). A trainer sets it from its own step counter so a resumed run draws the same masks.
    /// </summary>
    public long DropoutStep
    {
        get => _step;
        set => _step = value;
    }

    /// <summary>The expected (name, shape) of every parameter, in registration order (for checkpoint import).</summary>
    public IReadOnlyList<TensorKey> ExpectedKeys =>
        Parameters.Parameters.Select(p => new TensorKey(p.Name, p.Shape.Dims.ToArray())).ToArray();

    /// <summary>Batch of the last forward pass (−1 before the first).</summary>
    public int Batch => _batch;

    /// <summary>Rows per image of the last forward pass: patch tokens + CLS.</summary>
    public int Tokens => _gridRows * _gridCols + 1;

    /// <summary>
    /// logits [B, classes] for normalised images [B, C, H, W] on <see cref="Device"/>. The returned tensor belongs to
    /// the model and is overwritten by the next call.
    /// </summary>
    public Tensor Forward(Tensor images)
    {
        ArgumentNullException.ThrowIfNull(images);
        var c = Config;
        if (images.Rank != 4 || images.Shape[1] != c.Channels)
            throw new ArgumentException($"{What}: images{images.Shape} must be [B, {c.Channels}, H, W]", nameof(images));
        if (!ReferenceEquals(images.Device, Device))
            throw new ArgumentException($"{What}: images live on {images.Device.Spec} but the model on {Device.Spec}", nameof(images));
        int batch = images.Shape[0], height = images.Shape[2], width = images.Shape[3];
        if (batch < 1) throw new ArgumentException($"{What}: the batch is empty", nameof(images));
        if (height < c.PatchSize || width < c.PatchSize || height % c.PatchSize != 0 || width % c.PatchSize != 0)
            throw new ArgumentException($"{What}: image {height}×{width} is not a positive multiple of the patch size {c.PatchSize}", nameof(images));
        Prepare(batch, height / c.PatchSize, width / c.PatchSize);

        _patch.Forward(images, _e!);
        _positions.Forward(_e!, _x[0], _gridRows, _gridCols, PositionInterpolation.Size);
        _embDropout.Forward(_x[0], _x[0], _step++);
        for (int l = 0; l < _layers.Length; l++)
            _layers[l].Forward(_x[l], _half[l], _x[l + 1], batch);
        _head.Forward(_x[^1], _logits!);
        _forwarded = true;
        return _logits!;
    }

    /// <summary>
    /// Accumulates (+=) the gradient of every parameter from dlogits [B, classes] of the last <see cref="Forward"/>
    /// (which must have used the trained image size).
    /// </summary>
    public void Backward(Tensor dLogits)
    {
        ArgumentNullException.ThrowIfNull(dLogits);
        if (!_forwarded) throw new InvalidOperationException($"{What}: Backward needs a Forward pass first");
        if (!_nativeGrid)
            throw new InvalidOperationException($"{What}: the last Forward used a {_gridRows}×{_gridCols} patch grid with a resampled position table; gradients exist only for the trained {Config.GridRows}×{Config.GridCols} grid");
        if (dLogits.Rank != 2 || dLogits.Shape[0] != _batch || dLogits.Shape[1] != Config.Classes)
            throw new ArgumentException($"{What}: dLogits{dLogits.Shape} must be [{_batch}, {Config.Classes}]", nameof(dLogits));
        if (!ReferenceEquals(dLogits.Device, Device))
            throw new ArgumentException($"{What}: dLogits live on {dLogits.Device.Spec} but the model on {Device.Spec}", nameof(dLogits));
        var g = _dx!;
        var final = GradientsFinal;
        var parts = BackwardPartStarts;
        _head.Backward(dLogits, g);
        final?.Invoke(parts[0]);
        for (int l = _layers.Length - 1; l >= 0; l--)
        {
            _layers[l].Backward(g);
            final?.Invoke(parts[_layers.Length - l]);
        }
        _embDropout.Backward(g, g);
        _positions.Backward(g, _de!);
        final?.Invoke(parts[^2]);
        _patch.Backward(_de!);
        final?.Invoke(0);
    }

    /// <summary>
    /// Token features [B, N + 1, dim] after the last forward pass: index 0 is the embedding output X⁰ (CLS row 0),
    /// index l + 1 the output of layer l (so <see cref="CrateConfig.Depth"/> is the final encoding). The tensor
    /// belongs to the model; it is overwritten by the next forward pass.
    /// </summary>
    public Tensor Features(int index)
    {
        RequireForward();
        if (index < 0 || index > _layers.Length)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"{What}: feature index must be in [0, {_layers.Length}]");
        return _x[index];
    }

    /// <summary>The half-step X^{l+½} = X^l + attention(LN(X^l)) of layer <paramref name="layer"/> [B, N + 1, dim].</summary>
    public Tensor HalfStep(int layer)
    {
        RequireForward();
        CheckLayer(layer);
        return _half[layer];
    }

    private void Prepare(int batch, int gridRows, int gridCols)
    {
        _nativeGrid = gridRows == Config.GridRows && gridCols == Config.GridCols;
        if (batch == _batch && gridRows == _gridRows && gridCols == _gridCols && _e is not null) return;
        ReleaseActivations();
        _batch = batch;
        _gridRows = gridRows;
        _gridCols = gridCols;
        int n = gridRows * gridCols, dim = Config.Dim;
        _e = Device.Allocate(batch, n, dim);
        _de = Device.Allocate(batch, n, dim);
        _dx = Device.Allocate(batch, n + 1, dim);
        _logits = Device.Allocate(batch, Config.Classes);
        _x = new Tensor[_layers.Length + 1];
        _half = new Tensor[_layers.Length];
        for (int i = 0; i < _x.Length; i++) _x[i] = Device.Allocate(batch, n + 1, dim);
        for (int i = 0; i < _half.Length; i++) _half[i] = Device.Allocate(batch, n + 1, dim);
        _forwarded = false;
    }

    private void RequireForward()
    {
        if (!_forwarded) throw new InvalidOperationException($"{What}: run Forward first");
    }

    private void CheckLayer(int layer)
    {
        if (layer < 0 || layer >= _layers.Length)
            throw new ArgumentOutOfRangeException(nameof(layer), layer, $"{What}: layer must be in [0, {_layers.Length - 1}]");
    }

    private void ReleaseActivations()
    {
        _e?.Dispose(); _de?.Dispose(); _dx?.Dispose(); _logits?.Dispose();
        _e = _de = _dx = _logits = null;
        foreach (var t in _x) t.Dispose();
        foreach (var t in _half) t.Dispose();
        _x = [];
        _half = [];
        ReleaseProbeBuffers();
    }

    public void Dispose()
    {
        ReleaseActivations();
        _patch.Dispose();
        _positions.Dispose();
        foreach (var layer in _layers) layer.Dispose();
        _head.Dispose();
        Parameters.Dispose();
    }

    /// <summary>
    /// One transformer layer: the attention half (MSSA or MHSA, PreNorm + residual) under <c>transformer.layers.{l}.0.</c>
    /// and the second half (ISTA without residual, or the MLP with residual) under <c>transformer.layers.{l}.1.</c>.
    /// </summary>
    private sealed class TransformerLayer : IDisposable
    {
        public TransformerLayer(ParameterStore store, CrateConfig c, int index)
        {
            string attention = $"transformer.layers.{index}.0.", second = $"transformer.layers.{index}.1";
            if (c.UsesMhsa) Mhsa = new MhsaBlock(store, attention, c.Dim, c.Heads, c.DimHead);
            else Mssa = new MssaBlock(store, attention, c.Dim, c.Heads, c.DimHead);
            if (c.UsesMlp) Mlp = new MlpBlock(store, second, c.Dim, 4, MlpNaming.PreNorm);
            else
                Ista = new IstaBlock(store, second + ".", c.Dim, c.Eta, c.Lambda,
                    c.Variant == CrateVariant.CrateSth ? ThresholdKind.Symmetric : ThresholdKind.OneSided);
        }

        public MssaBlock? Mssa { get; }
        public MhsaBlock? Mhsa { get; }
        public IstaBlock? Ista { get; }
        public MlpBlock? Mlp { get; }

        public Parameter NormWeight => Mssa?.NormWeight ?? Mhsa!.NormWeight;
        public Parameter NormBias => Mssa?.NormBias ?? Mhsa!.NormBias;

        public void Forward(Tensor x, Tensor half, Tensor y, int batch)
        {
            if (Mssa is not null) Mssa.Forward(x, half, batch);
            else Mhsa!.Forward(x, half, batch);
            if (Ista is not null) Ista.Forward(half, y);
            else Mlp!.Forward(half, y);
        }

        /// <summary>g: dL/dy in, dL/dx out (in place; both blocks allow dx = dy).</summary>
        public void Backward(Tensor g)
        {
            if (Ista is not null) Ista.Backward(g, g);
            else Mlp!.Backward(g, g);
            if (Mssa is not null) Mssa.Backward(g, g);
            else Mhsa!.Backward(g, g);
        }

        public void Dispose()
        {
            Mssa?.Dispose();
            Mhsa?.Dispose();
            Ista?.Dispose();
            Mlp?.Dispose();
        }
    }
}
