using CrateIL.Compute.Tensors;
using CrateIL.Nn.Parameters;

namespace CrateIL.Nn.Layers;

/// <summary>
/// CRATE's <c>to_patch_embedding</c>: patchify (channel innermost, <see cref="Patchify"/>) → LayerNorm(P·P·C)
/// (<c>{prefix}.1</c>) → Linear(P·P·C, dim) (<c>{prefix}.2</c>) → LayerNorm(dim) (<c>{prefix}.3</c>).
/// Image [B, C, H, W] (normalised NCHW floats; H ≠ W allowed, both multiples of P) → tokens [B, N, dim],
/// N = (H/P)·(W/P). The intermediate activations live in buffers this layer owns.
/// </summary>
public sealed class PatchEmbedding : IDisposable
{
    private const string Layer = "PatchEmbedding";
    private Tensor? _patches, _normed, _projected, _dProjected, _dNormed;
    private int _batch = -1, _height, _width;

    public PatchEmbedding(ParameterStore store, int channels, int patchSize, int dim, string prefix = "to_patch_embedding")
    {
        ArgumentNullException.ThrowIfNull(store);
        if (channels < 1 || patchSize < 1 || dim < 1)
            throw new ArgumentOutOfRangeException(nameof(channels), $"{Layer}: channels {channels}, patch {patchSize} and dim {dim} must be positive");
        Store = store;
        Channels = channels;
        PatchSize = patchSize;
        Dim = dim;
        PatchDim = patchSize * patchSize * channels;
        PatchNorm = new LayerNormLayer(store, LayerBuffer.Join(prefix, "1"), PatchDim);
        Projection = new Linear(store, LayerBuffer.Join(prefix, "2"), PatchDim, dim);
        TokenNorm = new LayerNormLayer(store, LayerBuffer.Join(prefix, "3"), dim);
    }

    public ParameterStore Store { get; }
    public int Channels { get; }
    public int PatchSize { get; }
    public int Dim { get; }
    public int PatchDim { get; }
    public LayerNormLayer PatchNorm { get; }
    public Linear Projection { get; }
    public LayerNormLayer TokenNorm { get; }

    /// <summary>Patch tokens of an H×W image.</summary>
    public int TokensFor(int height, int width)
    {
        var (rows, cols) = Patchify.Grid(height, width, PatchSize);
        return rows * cols;
    }

    /// <summary>tokens [B, N, dim] = LN₃(Linear₂(LN₁(patchify(image)))).</summary>
    public void Forward(Tensor image, Tensor tokens)
    {
        LayerBuffer.RequireBuilt(Layer, Store);
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(tokens);
        if (image.Rank != 4 || image.Shape[1] != Channels)
            throw new ArgumentException($"{Layer}: image{image.Shape} must be [B, {Channels}, H, W]", nameof(image));
        LayerBuffer.SameDevice(Layer, nameof(image), image, Store.Device);
        int batch = image.Shape[0], height = image.Shape[2], width = image.Shape[3];
        int n = TokensFor(height, width);
        if (tokens.Rank != 3 || tokens.Shape[0] != batch || tokens.Shape[1] != n || tokens.Shape[2] != Dim)
            throw new ArgumentException($"{Layer}: tokens{tokens.Shape} must be [{batch}, {n}, {Dim}] for image {image.Shape}", nameof(tokens));
        _batch = batch;
        _height = height;
        _width = width;
        if (batch == 0) return;
        var device = Store.Device;
        var patches = LayerBuffer.Ensure(ref _patches, device, batch, n, PatchDim);
        var normed = LayerBuffer.Ensure(ref _normed, device, batch, n, PatchDim);
        var projected = LayerBuffer.Ensure(ref _projected, device, batch, n, Dim);
        Patchify.Forward(image, PatchSize, patches);
        PatchNorm.Forward(patches, normed);
        Projection.Forward(normed, projected);
        TokenNorm.Forward(projected, tokens);
    }

    /// <summary>
    /// Accumulates the gradients of all six parameters from dTokens [B, N, dim]; writes dImage [B, C, H, W]
    /// (assigned) when given. The input gradient through LN₁ is needed for LN₁'s own parameters anyway, so
    /// dImage only adds the (cheap) unpatchify permutation.
    /// </summary>
    public void Backward(Tensor dTokens, Tensor? dImage = null)
    {
        if (_batch < 0) throw new InvalidOperationException($"{Layer}: Backward called before Forward");
        ArgumentNullException.ThrowIfNull(dTokens);
        int n = TokensFor(_height, _width);
        if (dTokens.Rank != 3 || dTokens.Shape[0] != _batch || dTokens.Shape[1] != n || dTokens.Shape[2] != Dim)
            throw new ArgumentException($"{Layer}: dTokens{dTokens.Shape} must be [{_batch}, {n}, {Dim}] as in Forward", nameof(dTokens));
        if (dImage is not null)
        {
            if (dImage.Rank != 4 || dImage.Shape[0] != _batch || dImage.Shape[1] != Channels || dImage.Shape[2] != _height || dImage.Shape[3] != _width)
                throw new ArgumentException($"{Layer}: dImage{dImage.Shape} must be [{_batch}, {Channels}, {_height}, {_width}] as in Forward", nameof(dImage));
            LayerBuffer.SameDevice(Layer, nameof(dImage), dImage, Store.Device);
        }
        if (_batch == 0) return;
        var device = Store.Device;
        var dProjected = LayerBuffer.Ensure(ref _dProjected, device, _batch, n, Dim);
        var dNormed = LayerBuffer.Ensure(ref _dNormed, device, _batch, n, PatchDim);
        TokenNorm.Backward(dTokens, dProjected);
        Projection.Backward(dProjected, dNormed);
        PatchNorm.Backward(dNormed, dNormed);
        if (dImage is not null) Patchify.Backward(dNormed, PatchSize, dImage);
    }

    public void Dispose()
    {
        PatchNorm.Dispose();
        TokenNorm.Dispose();
        Projection.Dispose();
        LayerBuffer.Release(ref _patches);
        LayerBuffer.Release(ref _normed);
        LayerBuffer.Release(ref _projected);
        LayerBuffer.Release(ref _dProjected);
        LayerBuffer.Release(ref _dNormed);
    }
}
