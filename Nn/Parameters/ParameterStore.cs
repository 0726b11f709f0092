using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;

namespace CrateIL.Nn.Parameters;

/// <summary>How a parameter is initialised before training.</summary>
public enum ParameterInit
{
    Zeros,
    Ones,
    /// <summary>N(0, 1), as <c>torch.randn</c> (positional embedding, CLS token).</summary>
    StandardNormal,
    /// <summary>U(±1/√fan_in), PyTorch's default for Linear weights and biases (kaiming_uniform with a = √5).</summary>
    UniformFanIn,
    /// <summary>U(±√(6/fan_in)), <c>kaiming_uniform_</c> with default arguments (the ISTA dictionary).</summary>
    KaimingUniform,
}

/// <summary>
/// One named parameter: a view into the store's contiguous value buffer and the same view into the gradient buffer.
/// </summary>
public sealed class Parameter
{
    internal Parameter(string name, int[] shape, long offset, ParameterInit init, int fanIn, bool decay)
    {
        Name = name;
        Shape = new TensorShape(shape);
        Offset = offset;
        Init = init;
        FanIn = fanIn;
        Decay = decay;
    }

    /// <summary>The official (PyTorch state_dict) name, e.g. <c>transformer.layers.0.0.fn.qkv.weight</c>.</summary>
    public string Name { get; }
    public TensorShape Shape { get; }
    public long Length => Shape.Length;

    /// <summary>Element offset inside the store's buffers.</summary>
    public long Offset { get; }
    public ParameterInit Init { get; }
    public int FanIn { get; }

    /// <summary>Whether weight decay applies (parameter groups may exclude norms, biases and embeddings).</summary>
    public bool Decay { get; }

    /// <summary>The value view (valid after <see cref="ParameterStore.Build"/>).</summary>
    public Tensor Value { get; internal set; } = null!;

    /// <summary>The gradient view; backward passes accumulate into it (+=).</summary>
    public Tensor Grad { get; internal set; } = null!;

    public override string ToString() => $"{Name} {Shape}";
}

/// <summary>
/// Parameters, gradients and optimizer state in contiguous buffers with named views (llm.c's ParameterTensors):
/// one allocation each, so optimizers and gradient clipping run as single kernels over all parameters.
/// </summary>
public sealed class ParameterStore : IDisposable
{
    private readonly List<Parameter> _parameters = [];
    private readonly Dictionary<string, Parameter> _byName = new(StringComparer.Ordinal);
    private long _length;

    public IReadOnlyList<Parameter> Parameters => _parameters;
    public long Count => _length;
    public bool IsBuilt => Values is not null;

    /// <summary>All parameter values, contiguous (after <see cref="Build"/>).</summary>
    public Tensor Values { get; private set; } = null!;

    /// <summary>All gradients, same layout as <see cref="Values"/>.</summary>
    public Tensor Grads { get; private set; } = null!;

    public Device Device { get; private set; } = null!;

    public Parameter Add(string name, int[] shape, ParameterInit init, int fanIn = 0, bool decay = true)
    {
        if (IsBuilt) throw new InvalidOperationException("Cannot add parameters after Build()");
        if (_byName.ContainsKey(name)) throw new ArgumentException($"Duplicate parameter name '{name}'", nameof(name));
        var p = new Parameter(name, shape, _length, init, fanIn, decay);
        _length += p.Length;
        _parameters.Add(p);
        _byName.Add(name, p);
        return p;
    }

    public Parameter this[string name] =>
        _byName.TryGetValue(name, out var p) ? p : throw new KeyNotFoundException($"No parameter named '{name}'");

    public bool TryGet(string name, out Parameter parameter) => _byName.TryGetValue(name, out parameter!);

    /// <summary>Allocates the buffers on <paramref name="device"/>, initialises values from <paramref name="seed"/>, zeroes grads.</summary>
    public void Build(Device device, int seed = 0)
    {
        if (IsBuilt) throw new InvalidOperationException("ParameterStore is already built");
        Device = device;
        int n = checked((int)Math.Max(1, _length));
        Values = device.Allocate(n);
        Grads = device.Zeros(n);
        foreach (var p in _parameters)
        {
            p.Value = Values.Slice(p.Offset, p.Shape.Dims.ToArray());
            p.Grad = Grads.Slice(p.Offset, p.Shape.Dims.ToArray());
        }
        Initialise(seed);
    }

    /// <summary>Re-draws every parameter from its initialiser, deterministically from <paramref name="seed"/>.</summary>
    public void Initialise(int seed)
    {
        var host = new float[Math.Max(1, _length)];
        var rng = new Random(seed);
        foreach (var p in _parameters)
        {
            var span = host.AsSpan((int)p.Offset, (int)p.Length);
            switch (p.Init)
            {
                case ParameterInit.Zeros: span.Clear(); break;
                case ParameterInit.Ones: span.Fill(1f); break;
                case ParameterInit.StandardNormal:
                    for (int i = 0; i < span.Length; i++)
                    {
                        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
                        span[i] = (float)(Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
                    }
                    break;
                case ParameterInit.UniformFanIn:
                case ParameterInit.KaimingUniform:
                    if (p.FanIn <= 0) throw new InvalidOperationException($"Parameter {p.Name} needs a positive fan-in for {p.Init}");
                    double bound = p.Init == ParameterInit.UniformFanIn ? 1.0 / Math.Sqrt(p.FanIn) : Math.Sqrt(6.0 / p.FanIn);
                    for (int i = 0; i < span.Length; i++) span[i] = (float)((rng.NextDouble() * 2 - 1) * bound);
                    break;
            }
        }
        Values.CopyFrom(host.AsSpan(0, (int)Values.Length));
        if (IsFrozen) FrozenGeneration++;
    }

    /// <summary>
    /// Whether the values are frozen (<see cref="Freeze"/>): layers may then keep forms derived from their weights
    /// across calls instead of deriving them per call — on the CPU, GEMM operands packed once (<c>PackedMatrix</c>)
    /// and the ISTA blocks' folded dictionary without its per-call check.
    /// </summary>
    public bool IsFrozen { get; private set; }

    /// <summary>
    /// Counts <see cref="Freeze"/> calls: a form derived under an older generation is stale. Loading a checkpoint or
    /// re-initialising a frozen store starts a new one by itself.
    /// </summary>
    public long FrozenGeneration { get; private set; }

    /// <summary>
    /// Promises that nothing writes the values until <see cref="Unfreeze"/> — for inference, where every forward
    /// pass then skips re-deriving what depends only on the weights (batch-1 CRATE-T on the CPU: about a tenth of
    /// the step). CrateIL's own writers keep the promise for you: an optimizer step on a frozen store throws, and
    /// <see cref="Initialise"/> and checkpoint loading start a new generation. Code that writes values through the
    /// tensors itself must call <see cref="Freeze"/> again afterwards (or unfreeze first), or later passes use the
    /// old weights. Calling it again while frozen starts a new generation.
    /// </summary>
    public void Freeze()
    {
        if (!IsBuilt) throw new InvalidOperationException("ParameterStore: Freeze needs Build() first");
        IsFrozen = true;
        FrozenGeneration++;
    }

    /// <summary>Ends the promise of <see cref="Freeze"/>: layers derive from the weights per call again (training).</summary>
    public void Unfreeze() => IsFrozen = false;

    /// <summary>
    /// Freezes the values until the returned scope is disposed (for an evaluation pass in the middle of training);
    /// a store that is already frozen stays frozen and keeps its generation.
    /// </summary>
    public TemporaryFreeze FreezeTemporarily()
    {
        if (IsFrozen) return default;
        Freeze();
        return new TemporaryFreeze(this);
    }

    /// <summary>The scope of <see cref="FreezeTemporarily"/>: disposing it unfreezes the store it froze.</summary>
    public readonly struct TemporaryFreeze : IDisposable
    {
        private readonly ParameterStore? _store;
        internal TemporaryFreeze(ParameterStore store) => _store = store;
        public void Dispose() => _store?.Unfreeze();
    }

    /// <summary>Throws when the values are frozen; <paramref name="writer"/> names what was about to write them.</summary>
    public void ThrowIfFrozen(string writer)
    {
        if (IsFrozen)
            throw new InvalidOperationException($"{writer}: the parameters are frozen (ParameterStore.Freeze, for inference); call Unfreeze() before changing them");
    }

    /// <summary>Sets every gradient to zero (before a new accumulation).</summary>
    public void ZeroGrads() => Grads.Clear();

    public void Dispose()
    {
        Values?.Dispose();
        Grads?.Dispose();
    }
}
