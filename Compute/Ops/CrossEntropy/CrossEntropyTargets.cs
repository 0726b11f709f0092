using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;

namespace CrateIL.Compute.Ops;

/// <summary>
/// The integer labels of one batch, prepared once for <see cref="CrossEntropy"/>'s forward and backward: validated and
/// counted on the host, then copied to the device a single time (on an ILGPU device as float codes, ignored rows −1,
/// exact for class indices below 2^24), so a training step's forward and backward share one upload. Also holds the
/// per-row loss buffer the forward needs when the caller keeps none. Reusable: <see cref="Set"/> replaces the batch;
/// buffers grow to the largest batch seen and are kept, so a steady run allocates nothing per batch.
/// </summary>
public sealed class CrossEntropyTargets : IDisposable
{
    private int[] _labels = [];
    private float[] _staging = [];
    private Tensor? _codes, _codesView;
    private Tensor? _rowLosses, _rowLossesView;
    private bool _disposed;

    public CrossEntropyTargets(Device device)
    {
        ArgumentNullException.ThrowIfNull(device);
        Device = device;
    }

    public Device Device { get; }

    /// <summary>Rows of the current batch (0 before the first <see cref="Set"/>).</summary>
    public int Rows { get; private set; }

    /// <summary>Classes the labels were validated against.</summary>
    public int Classes { get; private set; }

    public int IgnoreIndex { get; private set; } = CrossEntropy.DefaultIgnoreIndex;

    /// <summary>Rows that count (labels other than <see cref="IgnoreIndex"/>): the mean's denominator.</summary>
    public int Counted { get; private set; }

    /// <summary>
    /// Label batches copied to the device so far: one per <see cref="Set"/>, however many forward and backward passes
    /// use the batch (on the CPU device the copy is into the host buffer the kernels read).
    /// </summary>
    public long Uploads { get; private set; }

    /// <summary>The labels of the current batch, as given.</summary>
    public ReadOnlySpan<int> Labels => _labels.AsSpan(0, Rows);

    /// <summary>
    /// Makes <paramref name="labels"/> (one per row, each in [0, <paramref name="classes"/>) or the ignore index) the
    /// current batch and copies it to the device. Throws, leaving the previous batch unusable, on a bad label.
    /// </summary>
    public void Set(ReadOnlySpan<int> labels, int classes, int ignoreIndex = CrossEntropy.DefaultIgnoreIndex)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (classes < 1) throw new ArgumentOutOfRangeException(nameof(classes), classes, "CrossEntropyTargets: classes must be at least 1");
        Rows = 0;
        int counted = CrossEntropy.CheckLabels("CrossEntropy", labels, labels.Length, classes, ignoreIndex);
        if (_labels.Length < labels.Length) _labels = new int[labels.Length];
        labels.CopyTo(_labels);
        if (Device is IlgpuDevice) Upload(labels, ignoreIndex);
        Rows = labels.Length;
        Classes = classes;
        IgnoreIndex = ignoreIndex;
        Counted = counted;
        Uploads++;
    }

    /// <summary>The device copy of the labels (ILGPU only): [rows] float codes, −1 for ignored rows.</summary>
    internal Tensor Codes => _codesView ?? throw new InvalidOperationException("CrossEntropyTargets: no labels on the device; call Set first");

    /// <summary>A [rows] buffer for the per-row losses of the current batch (kept between batches).</summary>
    internal Tensor RowLosses
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_rowLossesView is not null && _rowLossesView.Length == Rows) return _rowLossesView;
            if (_rowLosses is null || _rowLosses.Length < Rows)
            {
                _rowLosses?.Dispose();
                _rowLosses = Device.Allocate(Math.Max(1, Rows));
            }
            _rowLossesView = _rowLosses.Slice(0, Rows);
            return _rowLossesView;
        }
    }

    private void Upload(ReadOnlySpan<int> labels, int ignoreIndex)
    {
        int rows = labels.Length;
        if (_staging.Length < rows) _staging = new float[rows];
        for (int i = 0; i < rows; i++) _staging[i] = labels[i] == ignoreIndex ? -1f : labels[i];
        if (_codes is null || _codes.Length < rows)
        {
            _codes?.Dispose();
            _codes = Device.Allocate(Math.Max(1, rows));
            _codesView = null;
        }
        if (_codesView is null || _codesView.Length != rows) _codesView = _codes.Slice(0, rows);
        _codesView.CopyFrom(_staging.AsSpan(0, rows));
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _codes?.Dispose();
        _rowLosses?.Dispose();
        _codesView = _rowLossesView = null;
    }
}
