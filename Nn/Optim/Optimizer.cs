using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;
using CrateIL.Nn.Parameters;

namespace CrateIL.Nn.Optim;

/// <summary>Which parameters weight decay applies to.</summary>
public enum WeightDecayScope
{
    /// <summary>Every parameter, as the CRATE reference trains (no parameter groups).</summary>
    AllParameters,

    /// <summary>
    /// Only parameters registered with <see cref="Parameter.Decay"/> = true: layers register norms, biases and
    /// embeddings with decay off, so this is the usual "no decay for norms/biases/embeddings" parameter grouping.
    /// </summary>
    DecayFlaggedOnly,
}

/// <summary>One named optimizer state buffer, laid out exactly like <see cref="ParameterStore.Values"/>.</summary>
/// <param name="Name">PyTorch's state key (<c>exp_avg</c>, <c>exp_avg_sq</c>, <c>momentum_buffer</c>).</param>
/// <param name="Tensor">The buffer; a checkpoint copies it out and back in to resume exactly.</param>
public readonly record struct OptimizerState(string Name, Tensor Tensor);

/// <summary>
/// An optimizer over every parameter of a <see cref="ParameterStore"/>: its state buffers share the store's
/// contiguous layout, so one kernel launch (one threaded SIMD pass on the CPU) updates all parameters. Parameter
/// groups differ only in weight decay, which a per-element decay mask (ILGPU) or a table of decay runs (CPU),
/// both built once, applies inside that single pass.
/// </summary>
public abstract class Optimizer : IDisposable
{
    private double _learningRate;
    private long _stepCount;

    private protected Optimizer(ParameterStore store, double learningRate, double weightDecay, WeightDecayScope decayScope)
    {
        ArgumentNullException.ThrowIfNull(store);
        if (!store.IsBuilt)
            throw new InvalidOperationException($"{GetType().Name}: the parameter store must be built (ParameterStore.Build) before an optimizer is created");
        CheckNonNegative(nameof(learningRate), learningRate);
        CheckNonNegative(nameof(weightDecay), weightDecay);
        if (!Enum.IsDefined(decayScope))
            throw new ArgumentOutOfRangeException(nameof(decayScope), decayScope, $"{GetType().Name}: unknown weight decay scope");
        if (store.Values.Length > int.MaxValue)
            throw new ArgumentException($"{GetType().Name}: {store.Values.Length} parameters exceed the {int.MaxValue}-element limit of the update kernels", nameof(store));
        Store = store;
        _learningRate = learningRate;
        WeightDecay = weightDecay;
        DecayScope = decayScope;
    }

    /// <summary>The parameters this optimizer updates.</summary>
    public ParameterStore Store { get; }

    public Device Device => Store.Device;

    /// <summary>Learning rate of the next step; a schedule sets it before every step (or every epoch).</summary>
    public double LearningRate
    {
        get => _learningRate;
        set
        {
            CheckNonNegative(nameof(LearningRate), value);
            _learningRate = value;
        }
    }

    public double WeightDecay { get; }
    public WeightDecayScope DecayScope { get; }

    /// <summary>
    /// Steps taken so far (PyTorch's <c>state['step']</c>). <see cref="Step"/> increments it before updating, so
    /// the first update runs with t = 1. A checkpoint restores it together with <see cref="State"/>.
    /// </summary>
    public long StepCount
    {
        get => _stepCount;
        set
        {
            if (value < 0) throw new ArgumentOutOfRangeException(nameof(StepCount), value, $"{GetType().Name}: step count must be non-negative");
            _stepCount = value;
        }
    }

    /// <summary>The state buffers (possibly none), each with the store's length and layout.</summary>
    public abstract IReadOnlyList<OptimizerState> State { get; }

    /// <summary>Built on first use, so a constructor that rejects its arguments leaves nothing allocated.</summary>
    internal DecayLayout Decay => _decay ??= DecayLayout.Build(Store, DecayScope);

    private DecayLayout? _decay;

    /// <summary>
    /// One update of every parameter from the gradients in <see cref="ParameterStore.Grads"/> (which are left
    /// unchanged). Asynchronous on ILGPU devices, like any op.
    /// </summary>
    public void Step()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (Store.IsFrozen) Store.ThrowIfFrozen(GetType().Name + ".Step");   // the name is built only to throw: steps allocate nothing
        _stepCount++;
        Update(_stepCount);
    }

    /// <summary>Zeroes every state buffer and the step count (a fresh optimizer over the current parameters).</summary>
    public void Reset()
    {
        foreach (var s in State) s.Tensor.Clear();
        _stepCount = 0;
    }

    /// <summary>Applies update number <paramref name="step"/> (1-based).</summary>
    private protected abstract void Update(long step);

    /// <summary>1 − lr·wd, computed in double as PyTorch does with Python floats.</summary>
    private protected float DecayFactor => (float)(1.0 - LearningRate * WeightDecay);

    private protected static void CheckNonNegative(string name, double value)
    {
        if (!(value >= 0) || double.IsInfinity(value))
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be finite and non-negative");
    }

    private protected static void CheckBeta(string name, double value)
    {
        if (!(value >= 0 && value < 1))
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be in [0, 1)");
    }

    private bool _disposed;

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var s in State) s.Tensor.Dispose();
        _decay?.Dispose();
        GC.SuppressFinalize(this);
    }
}
