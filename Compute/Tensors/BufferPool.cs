using CrateIL.Compute.Devices;

namespace CrateIL.Compute.Tensors;

/// <summary>
/// Per-device free lists keyed by exact length. A training step allocates the same sizes every step, so
/// after the first step every tensor comes from here and nothing touches the allocator on hot paths.
/// </summary>
public sealed class BufferPool
{
    private readonly Device _device;
    private readonly Dictionary<long, Stack<Storage>> _free = new();
    private readonly Lock _gate = new();
    private long _pooledBytes;

    internal BufferPool(Device device) => _device = device;

    /// <summary>Fresh allocations made (pool misses).</summary>
    public long Allocations { get; private set; }

    /// <summary>Requests served from the pool.</summary>
    public long Reuses { get; private set; }

    /// <summary>Bytes currently parked in the pool.</summary>
    public long PooledBytes { get { lock (_gate) return _pooledBytes; } }

    /// <summary>Upper bound of parked bytes; beyond it, returned buffers are freed instead.</summary>
    public long MaxPooledBytes { get; set; } = 4L << 30;

    internal Storage Rent(long length)
    {
        lock (_gate)
        {
            if (_free.TryGetValue(length, out var stack) && stack.Count > 0)
            {
                Reuses++;
                _pooledBytes -= length * sizeof(float);
                return stack.Pop();
            }
            Allocations++;
        }
        return _device.AllocateStorage(length);
    }

    internal void Return(Storage storage)
    {
        lock (_gate)
        {
            long bytes = storage.Length * sizeof(float);
            if (_pooledBytes + bytes <= MaxPooledBytes)
            {
                if (!_free.TryGetValue(storage.Length, out var stack)) _free[storage.Length] = stack = new Stack<Storage>();
                stack.Push(storage);
                _pooledBytes += bytes;
                return;
            }
        }
        storage.Dispose();
    }

    /// <summary>Frees every parked buffer.</summary>
    public void Clear()
    {
        lock (_gate)
        {
            foreach (var s in _free.Values.SelectMany(x => x)) s.Dispose();
            _free.Clear();
            _pooledBytes = 0;
        }
    }
}
