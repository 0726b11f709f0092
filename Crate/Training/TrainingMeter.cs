using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;

namespace CrateIL.Crate.Training;

/// <summary>
/// The training loss of every micro-batch and the gradient norm of every optimizer step of the current logging interval,
/// kept where the device computed them: each value gets its own one-element slot of a single device buffer, written by
/// the loss and clipping kernels, and the whole buffer is copied to the host in one transfer when the interval is read
/// (<see cref="Read"/>). Slots rather than a running sum on the device: the host adds the values in micro-batch order in
/// float64, exactly as it would had it read each one at once, so the epoch's metrics do not depend on the interval.
/// </summary>
internal sealed class TrainingMeter : IDisposable
{
    private readonly Tensor _buffer;
    private readonly Tensor[] _lossSlots, _normSlots;
    private readonly float[] _host;

    /// <param name="steps">Optimizer steps an interval holds at most.</param>
    /// <param name="microBatches">Micro-batches per step.</param>
    public TrainingMeter(Device device, int steps, int microBatches)
    {
        int losses = steps * microBatches;
        _buffer = device.Allocate(losses + steps);
        _lossSlots = new Tensor[losses];
        _normSlots = new Tensor[steps];
        for (int i = 0; i < losses; i++) _lossSlots[i] = _buffer.Slice(i, 1);
        for (int i = 0; i < steps; i++) _normSlots[i] = _buffer.Slice(losses + i, 1);
        _host = new float[losses + steps];
    }

    /// <summary>Micro-batch losses written since the last read.</summary>
    public int MicroBatches { get; private set; }

    /// <summary>Step norms written since the last read.</summary>
    public int Steps { get; private set; }

    /// <summary>The slot the next micro-batch's mean loss goes to.</summary>
    public Tensor NextLoss()
    {
        if (MicroBatches == _lossSlots.Length) throw new InvalidOperationException($"TrainingMeter: more than {_lossSlots.Length} micro-batches in one logging interval");
        return _lossSlots[MicroBatches++];
    }

    /// <summary>The slot the next step's gradient norm goes to.</summary>
    public Tensor NextNorm()
    {
        if (Steps == _normSlots.Length) throw new InvalidOperationException($"TrainingMeter: more than {_normSlots.Length} steps in one logging interval");
        return _normSlots[Steps++];
    }

    /// <summary>
    /// Copies the interval's values to the host (waits for the device) and starts a new interval: the losses in
    /// micro-batch order and the norms in step order, valid until the next write.
    /// </summary>
    public (ReadOnlyMemory<float> Losses, ReadOnlyMemory<float> Norms) Read()
    {
        if (MicroBatches > 0 || Steps > 0) _buffer.CopyTo(_host);
        var losses = new ReadOnlyMemory<float>(_host, 0, MicroBatches);
        var norms = new ReadOnlyMemory<float>(_host, _lossSlots.Length, Steps);
        MicroBatches = Steps = 0;
        return (losses, norms);
    }

    /// <summary>Forgets unread values (of an epoch an exception cut short): the next interval starts empty.</summary>
    public void Discard() => MicroBatches = Steps = 0;

    public void Dispose() => _buffer.Dispose();
}
