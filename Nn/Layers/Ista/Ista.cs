using CrateIL.Compute.Devices;
using CrateIL.Compute.Ops;
using CrateIL.Compute.Tensors;
using CrateIL.Nn.Parameters;

namespace CrateIL.Nn.Layers;

/// <summary>
/// How the ISTA step p = Z + η(Z·D − Z·Dᵀ·D) is evaluated. Both forms give the same values up to float
/// re-association; they differ in cost. With n token rows and dim = d:
/// <list type="bullet">
/// <item><see cref="TwoGemm"/>: R = Z − Z·Dᵀ, p = Z + η·R·D. Forward 2·n·d² multiply-adds, backward 4·n·d².
/// The subtraction is done by the first GEMM itself (Z copied into R, then R = −Z·Dᵀ + 1·R): a memcpy plus the
/// GEMM's in-cache C update, cheaper than a separate pass that reads two arrays and writes one.</item>
/// <item><see cref="Folded"/>: the dictionary is folded into one d×d matrix F = η(D − DᵀD), p = Z + Z·F.
/// Forward d³ + n·d², backward 2·n·d² + d³ (dZ = dpre + dpre·Fᵀ, dD = η(G − D(G + Gᵀ)) with G = Zᵀ·dpre).</item>
/// </list>
/// The identity part of I + F is kept out of the GEMMs (added in the fused epilogues), so Z and dpre pass through
/// exactly and only the O(η) correction carries GEMM rounding, as in the two-GEMM form.
/// Folding wins as soon as there are more tokens than features (n ≥ d; training batches always qualify), and for
/// inference at any size once F is kept across calls while D is unchanged (n·d² per call against 2·n·d²).
/// </summary>
public enum IstaForm
{
    /// <summary><see cref="Folded"/> when rows ≥ dim or for inference (<see cref="IstaWorkspace.ForInference"/>), else <see cref="TwoGemm"/>.</summary>
    Auto,
    TwoGemm,
    Folded,
}

/// <summary>
/// The buffers one ISTA step owns: what the forward pass saves for the backward pass (the pre-activation p, from
/// which the threshold mask follows, and R = Z − Z·Dᵀ or the folded matrix M) and the backward scratch. Tensors
/// are allocated on first use for a shape and reused while the shape stays the same, so steady-state steps
/// allocate nothing.
/// </summary>
public sealed class IstaWorkspace(Device device) : IDisposable
{
    private Tensor? _pre, _residual, _folded, _dpre, _s, _gram, _sym, _foldedFrom;
    private float _foldedEta;
    private Tensor? _foldedDictionary;
    private long _foldedGeneration = -1;
    private readonly FrozenOperand _foldedOperand = new();

    public Device Device { get; } = device ?? throw new ArgumentNullException(nameof(device));

    /// <summary>The form the next forward pass uses (<see cref="IstaForm.Auto"/>: chosen from the shape).</summary>
    public IstaForm Form { get; set; } = IstaForm.Auto;

    /// <summary>
    /// No backward pass is expected (inference): <see cref="IstaForm.Auto"/> then takes the folded form at every size.
    /// F = η(D − DᵀD) is kept across calls while D is unchanged (on the CPU; checked by a memcmp of D against a copy,
    /// split over the team: tens of µs for 384×384), so a call costs n·d² multiply-adds instead of the two-GEMM
    /// form's 2·n·d²: at batch 1 (197 tokens, dim 384) that is half of every ISTA block. A backward pass after it is
    /// still correct, only dearer for few rows (the folded backward has a d³ term).
    /// </summary>
    public bool ForInference { get; set; }

    /// <summary>
    /// Set while the dictionary's store is frozen (<see cref="Parameters.ParameterStore.Freeze"/>): its generation.
    /// F is then derived once per generation and dictionary tensor, with no per-call check, and on the CPU packed once
    /// as the B operand of Z·F. Null (the default) keeps the check of <see cref="ForInference"/>.
    /// </summary>
    public long? FrozenGeneration { get; set; }

    /// <summary>The form the last forward pass used (what <see cref="Ista.Backward"/> will follow).</summary>
    public IstaForm LastForm { get; private set; } = IstaForm.Auto;

    internal int Rows { get; private set; } = -1;
    internal int Dim { get; private set; } = -1;
    internal float Eta { get; private set; }
    internal float Threshold { get; private set; }
    internal ThresholdKind Kind { get; private set; }
    internal bool HasForward { get; private set; }

    /// <summary>p = Z + η·g, [rows, dim].</summary>
    internal Tensor Pre => _pre!;
    /// <summary>R = Z − Z·Dᵀ, [rows, dim] (two-GEMM form).</summary>
    internal Tensor Residual => _residual!;
    /// <summary>F = η(D − DᵀD), [dim, dim] (folded form).</summary>
    internal Tensor FoldedMatrix => _folded!;
    internal Tensor Dpre => _dpre ??= Device.Allocate(Rows, Dim);
    internal Tensor S => _s ??= Device.Allocate(Rows, Dim);
    internal Tensor Gram => _gram ??= Device.Allocate(Dim, Dim);
    internal Tensor Sym => _sym ??= Device.Allocate(Dim, Dim);

    internal static IstaForm Resolve(IstaForm requested, int rows, int dim, bool forInference = false) =>
        requested != IstaForm.Auto ? requested : rows >= dim || forInference ? IstaForm.Folded : IstaForm.TwoGemm;

    /// <summary>
    /// Whether <see cref="FoldedMatrix"/> already holds η(D − DᵀD) for this D and η: the same values it would be
    /// recomputed to (the computation is deterministic), so keeping it changes no result. Host tensors only.
    /// </summary>
    internal bool FoldedIsCurrent(Tensor dictionary, float eta)
    {
        if (_foldedDictionary is null || eta != _foldedEta) return false;
        // Frozen: checked once per generation, not per call.
        if (FrozenGeneration is long g && g == _foldedGeneration && ReferenceEquals(dictionary, _foldedDictionary)) return true;
        bool same = _foldedFrom is not null && dictionary.Storage is HostStorage && Device is CpuDevice cpu
            && IstaCpu.SameBits(cpu, dictionary, _foldedFrom);
        // A new generation over the same D (Predict freezes for each call) keeps F: it is what it would be recomputed
        // to, so only the generation it is trusted under moves.
        if (same && FrozenGeneration is long generation)
        {
            _foldedDictionary = dictionary;
            _foldedGeneration = generation;
        }
        return same;
    }

    /// <summary>
    /// Records the D (a copy, host tensors only; the tensor itself and the frozen generation otherwise) and η that
    /// <see cref="FoldedMatrix"/> was just computed from; a packed copy of the old F is dropped.
    /// </summary>
    internal void RememberFolded(Tensor dictionary, float eta)
    {
        Folds++;
        _foldedDictionary = dictionary;
        _foldedEta = eta;
        _foldedGeneration = FrozenGeneration ?? -1;
        _foldedOperand.Dispose();
        if (dictionary.Storage is not HostStorage) return;
        _foldedFrom ??= Device.Allocate(Dim, Dim);
        dictionary.AsSpan().CopyTo(_foldedFrom.AsSpan());
    }

    /// <summary>How many times F has been computed (tests: what is kept is not recomputed).</summary>
    internal int Folds { get; private set; }

    /// <summary>F packed as the B operand of Z·F (CPU, frozen dictionary), or null: the GEMM packs it per call.</summary>
    internal PackedMatrix? FoldedPacked =>
        _foldedOperand.For(FrozenGeneration == _foldedGeneration ? FrozenGeneration : null, FoldedMatrix, false, Dim, Dim);

    /// <summary>Sizes the buffers for a forward pass and records its settings for the backward pass.</summary>
    internal IstaForm BeginForward(int rows, int dim, float eta, float threshold, ThresholdKind kind)
    {
        if (rows != Rows || dim != Dim) Release();
        Rows = rows;
        Dim = dim;
        var form = Resolve(Form, rows, dim, ForInference);
        _pre ??= Device.Allocate(rows, dim);
        if (form == IstaForm.TwoGemm) _residual ??= Device.Allocate(rows, dim);
        else _folded ??= Device.Allocate(dim, dim);
        LastForm = form;
        Eta = eta;
        Threshold = threshold;
        Kind = kind;
        HasForward = true;
        return form;
    }

    private void Release()
    {
        foreach (var t in new[] { _pre, _residual, _folded, _dpre, _s, _gram, _sym, _foldedFrom }) t?.Dispose();
        _pre = _residual = _folded = _dpre = _s = _gram = _sym = _foldedFrom = null;
        _foldedOperand.Dispose();
        _foldedDictionary = null;
        _foldedGeneration = -1;
        HasForward = false;
    }

    public void Dispose() => Release();
}

/// <summary>
/// CRATE's ISTA step on LayerNorm'd tokens Z [rows, dim] with dictionary D [dim, dim] (crate-reference §1.2):
/// y = ReLU(Z + η(Z·D − Z·Dᵀ·D) − ηλ), or with <see cref="ThresholdKind.Symmetric"/> (CRATE-sth)
/// y = sign(p)·max(|p| − ηλ, 0) with p = Z + η(Z·D − Z·Dᵀ·D). No residual.
/// GEMMs go through <see cref="Gemm"/>; the elementwise parts are fused kernels of the device's backend
/// (<see cref="IstaCpu"/>, <see cref="IstaIlgpu"/>), chosen once per call.
/// </summary>
public static class Ista
{
    public const float DefaultEta = 0.1f;
    public const float DefaultLambda = 0.1f;

    /// <summary>
    /// y = ISTA(Z). <paramref name="z"/> is [.., dim] (rows = all leading dims); <paramref name="y"/> has its shape
    /// and must not be <paramref name="z"/>. <paramref name="workspace"/> keeps what <see cref="Backward"/> needs;
    /// Z and D must stay unchanged until then.
    /// </summary>
    public static void Forward(Tensor z, Tensor dictionary, Tensor y, IstaWorkspace workspace,
        float eta = DefaultEta, float lambda = DefaultLambda, ThresholdKind kind = ThresholdKind.OneSided)
    {
        var (rows, dim) = Check("Ista.Forward", z, dictionary, workspace, eta, lambda, kind);
        Same("Ista.Forward", "y", y, z);
        if (ReferenceEquals(y, z) || SameStorageStart(y, z))
            throw new ArgumentException("Ista.Forward: y must not be z (z is saved for the backward pass)", nameof(y));
        Run(z, dictionary, y, workspace, rows, dim, eta, lambda, kind);
    }

    /// <summary>
    /// Gradients of the last <see cref="Forward"/> through <paramref name="workspace"/>: <paramref name="dz"/> is
    /// assigned (it may be <paramref name="dy"/>), <paramref name="dDictionary"/> [dim, dim] is accumulated (+=).
    /// </summary>
    public static void Backward(Tensor dy, Tensor z, Tensor dictionary, Tensor dz, Tensor dDictionary, IstaWorkspace workspace)
    {
        ArgumentNullException.ThrowIfNull(workspace);
        var (rows, dim) = Check("Ista.Backward", z, dictionary, workspace, workspace.Eta, 0f, ThresholdKind.OneSided);
        Same("Ista.Backward", "dy", dy, z);
        Same("Ista.Backward", "dz", dz, z);
        Same("Ista.Backward", "dDictionary", dDictionary, dictionary);
        if (ReferenceEquals(dz, z) || SameStorageStart(dz, z))
            throw new ArgumentException("Ista.Backward: dz must not be z", nameof(dz));
        RunBackward(dy, z, dictionary, dz, dDictionary, workspace, rows, dim);
    }

    /// <summary>Forward without argument checks (callers validated): dispatches once on the device.</summary>
    internal static void Run(Tensor z, Tensor w, Tensor y, IstaWorkspace ws, int rows, int dim, float eta, float lambda, ThresholdKind kind)
    {
        if (rows == 0) return;
        switch (z.Device)
        {
            case CpuDevice cpu: IstaSteps<IstaCpu>.Forward(new IstaCpu(cpu), z, w, y, ws, rows, dim, eta, eta * lambda, kind); break;
            case IlgpuDevice gpu: IstaSteps<IstaIlgpu>.Forward(new IstaIlgpu(gpu), z, w, y, ws, rows, dim, eta, eta * lambda, kind); break;
            default: throw new NotSupportedException($"ISTA has no implementation for device {z.Device.Spec}");
        }
    }

    internal static void RunBackward(Tensor dy, Tensor z, Tensor w, Tensor dz, Tensor dw, IstaWorkspace ws, int rows, int dim)
    {
        if (!ws.HasForward || ws.Rows != rows || ws.Dim != dim)
            throw new InvalidOperationException(
                $"ISTA backward for {rows}×{dim} tokens needs a forward pass of that shape through the same workspace first");
        if (rows == 0) return;
        switch (z.Device)
        {
            case CpuDevice cpu: IstaSteps<IstaCpu>.Backward(new IstaCpu(cpu), dy, z, w, dz, dw, ws, rows, dim); break;
            case IlgpuDevice gpu: IstaSteps<IstaIlgpu>.Backward(new IstaIlgpu(gpu), dy, z, w, dz, dw, ws, rows, dim); break;
            default: throw new NotSupportedException($"ISTA has no implementation for device {z.Device.Spec}");
        }
    }

    internal static (int Rows, int Dim) Check(string op, Tensor z, Tensor dictionary, IstaWorkspace workspace,
        float eta, float lambda, ThresholdKind kind)
    {
        ArgumentNullException.ThrowIfNull(z);
        ArgumentNullException.ThrowIfNull(dictionary);
        ArgumentNullException.ThrowIfNull(workspace);
        if (z.IsDisposed || dictionary.IsDisposed) throw new ObjectDisposedException(op, $"{op}: an input tensor was disposed");
        if (z.Rank < 2) throw new ArgumentException($"{op}: z{z.Shape} must be [rows, dim] or [batch, tokens, dim]", nameof(z));
        int dim = z.Shape[-1];
        if (dim < 1) throw new ArgumentException($"{op}: z{z.Shape} has an empty feature dimension", nameof(z));
        if (dictionary.Rank != 2 || dictionary.Shape[0] != dim || dictionary.Shape[1] != dim)
            throw new ArgumentException($"{op}: the dictionary{dictionary.Shape} must be [{dim}, {dim}] for z{z.Shape}", nameof(dictionary));
        long rows = z.Length / dim;
        if (rows > int.MaxValue) throw new ArgumentException($"{op}: z{z.Shape} has {rows} rows, more than {int.MaxValue}", nameof(z));
        if (!ReferenceEquals(dictionary.Device, z.Device) || !ReferenceEquals(workspace.Device, z.Device))
            throw new ArgumentException($"{op}: z, the dictionary and the workspace must live on one device (z on {z.Device.Spec}, " +
                $"dictionary on {dictionary.Device.Spec}, workspace on {workspace.Device.Spec})");
        if (!float.IsFinite(eta)) throw new ArgumentOutOfRangeException(nameof(eta), eta, $"{op}: the step size η must be finite");
        if (!float.IsFinite(lambda)) throw new ArgumentOutOfRangeException(nameof(lambda), lambda, $"{op}: λ must be finite");
        if (kind == ThresholdKind.Symmetric && !(eta * lambda >= 0f))
            throw new ArgumentOutOfRangeException(nameof(lambda), lambda, $"{op}: the symmetric soft threshold needs ηλ ≥ 0 (η = {eta}, λ = {lambda})");
        if (kind is not (ThresholdKind.OneSided or ThresholdKind.Symmetric))
            throw new ArgumentOutOfRangeException(nameof(kind), kind, $"{op}: unknown threshold kind");
        return ((int)rows, dim);
    }

    internal static void Same(string op, string name, Tensor t, Tensor reference)
    {
        ArgumentNullException.ThrowIfNull(t, name);
        if (t.IsDisposed) throw new ObjectDisposedException(name, $"{op}: {name} was disposed");
        if (t.Shape != reference.Shape)
            throw new ArgumentException($"{op}: {name}{t.Shape} must have shape {reference.Shape}", name);
        if (!ReferenceEquals(t.Device, reference.Device))
            throw new ArgumentException($"{op}: {name} lives on {t.Device.Spec}, expected {reference.Device.Spec}", name);
    }

    /// <summary>Two views of the same storage starting at the same element (e.g. a reshape of the other tensor).</summary>
    internal static bool SameStorageStart(Tensor a, Tensor b) =>
        ReferenceEquals(a.Storage, b.Storage) && a.Offset == b.Offset;
}

/// <summary>The elementwise pieces of the ISTA step that each backend implements as fused kernels.</summary>
internal interface IIstaBackend
{
    /// <summary>Forward epilogue over n elements: p ← z + η·g (in place over g), y = S_t(p).</summary>
    void Epilogue(Tensor z, Tensor g, Tensor y, int n, float eta, float threshold, ThresholdKind kind);

    /// <summary>Backward prologue over n elements: dpre = dy ⊙ S_t'(p), and the same into <paramref name="copy"/>.</summary>
    void MaskAndCopy(Tensor dy, Tensor p, Tensor dpre, Tensor copy, int n, float threshold, ThresholdKind kind);

    /// <summary>h = g + gᵀ and dw += η·g ([dim, dim]).</summary>
    void Symmetrize(Tensor g, Tensor h, Tensor dw, int dim, float eta);

    /// <summary>o = a + η·b over n elements.</summary>
    void AddScaled(Tensor a, Tensor b, Tensor o, int n, float eta);
}

/// <summary>The GEMM sequence of both forms, shared by the backends (generic over the backend struct: no virtual calls).</summary>
internal static class IstaSteps<TBackend> where TBackend : struct, IIstaBackend
{
    public static void Forward(TBackend backend, Tensor z, Tensor w, Tensor y, IstaWorkspace ws,
        int n, int d, float eta, float threshold, ThresholdKind kind)
    {
        var form = ws.BeginForward(n, d, eta, threshold, kind);
        var p = ws.Pre;
        if (form == IstaForm.Folded)
        {
            var f = ws.FoldedMatrix;
            if (!ws.FoldedIsCurrent(w, eta))
            {
                Elementwise.Scale(w, eta, f);
                MatMul(w, true, w, false, f, d, d, d, -eta, 1f);    // F = ηD − η·DᵀD
                ws.RememberFolded(w, eta);
            }
            MatMul(z, false, f, false, p, n, d, d, 1f, 0f, ws.FoldedPacked); // Z·F
            backend.Epilogue(z, p, y, n * d, 1f, threshold, kind);  // p = Z + Z·F, y = S(p)
        }
        else
        {
            var r = ws.Residual;
            z.CopyTo(r);
            MatMul(z, false, w, true, r, n, d, d, -1f, 1f);         // R = Z − Z·Dᵀ
            MatMul(r, false, w, false, p, n, d, d, 1f, 0f);         // g = R·D
            backend.Epilogue(z, p, y, n * d, eta, threshold, kind); // p = Z + ηg, y = S(p)
        }
    }

    public static void Backward(TBackend backend, Tensor dy, Tensor z, Tensor w, Tensor dz, Tensor dw, IstaWorkspace ws, int n, int d)
    {
        float eta = ws.Eta;
        var dpre = ws.Dpre;
        if (ws.LastForm == IstaForm.Folded)
        {
            var g = ws.Gram;
            var h = ws.Sym;
            backend.MaskAndCopy(dy, ws.Pre, dpre, dz, n * d, ws.Threshold, ws.Kind); // dpre = dy ⊙ S'(p); dZ = dpre
            MatMul(z, true, dpre, false, g, d, d, n, 1f, 0f);       // G = Zᵀ·dpre
            MatMul(dpre, false, ws.FoldedMatrix, true, dz, n, d, d, 1f, 1f); // dZ += dpre·Fᵀ
            backend.Symmetrize(g, h, dw, d, eta);                   // H = G + Gᵀ, dD += ηG
            MatMul(w, false, h, false, dw, d, d, d, -eta, 1f);      // dD −= η·D·H
        }
        else
        {
            var s = ws.S;
            SoftThreshold.Backward(dy, ws.Pre, dpre, ws.Threshold, ws.Kind); // dpre = dy ⊙ S'(p)
            MatMul(dpre, false, w, true, s, n, d, d, 1f, 0f);       // S = dpre·Dᵀ
            MatMul(ws.Residual, true, dpre, false, dw, d, d, n, eta, 1f); // dD += η·Rᵀ·dpre
            MatMul(s, true, z, false, dw, d, d, n, -eta, 1f);       // dD −= η·Sᵀ·Z  (= η·D·dpreᵀ·Z)
            backend.AddScaled(dpre, s, dz, n * d, eta);             // dZ = dpre + ηS
            MatMul(s, false, w, false, dz, n, d, d, -eta, 1f);      // dZ −= η·S·D
        }
    }

    /// <summary>C = α·op(A)·op(B) + β·C on dense row-major operands of any rank (sizes given explicitly).</summary>
    private static void MatMul(Tensor a, bool transA, Tensor b, bool transB, Tensor c, int m, int n, int k, float alpha, float beta,
        PackedMatrix? packedB = null) =>
        Gemm.Batched(1, m, n, k, alpha, new MatrixOperand(a), transA, new MatrixOperand(b), transB, beta, new MatrixOperand(c), packedB);
}
