using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;
using CrateIL.Nn.Parameters;

namespace CrateIL.Nn.Optim;

/// <summary>How weight decay is laid out over the store's elements.</summary>
internal enum DecayMode
{
    /// <summary>No element decays.</summary>
    None = 0,
    /// <summary>Every element decays.</summary>
    All = 1,
    /// <summary>Mixed: per-element flags.</summary>
    Mixed = 2,
}

/// <summary>
/// Where weight decay applies, built once per optimizer: maximal runs of equal decay flags over the store's
/// elements (the CPU path walks them, so it reads no mask) and, for ILGPU devices with mixed flags, a float mask
/// (1 = decay, 0 = not) that the grid-stride kernels read element by element.
/// </summary>
internal sealed class DecayLayout : IDisposable
{
    private DecayLayout(DecayMode mode, int[] runStarts, bool[] runDecays, Tensor? mask)
    {
        Mode = mode;
        RunStarts = runStarts;
        RunDecays = runDecays;
        Mask = mask;
    }

    public DecayMode Mode { get; }

    /// <summary>Start of each run, plus the total length as a final sentinel (length = runs + 1).</summary>
    public int[] RunStarts { get; }

    /// <summary>Whether run r decays.</summary>
    public bool[] RunDecays { get; }

    /// <summary>The per-element mask (ILGPU devices with <see cref="DecayMode.Mixed"/> only).</summary>
    public Tensor? Mask { get; }

    public static DecayLayout Build(ParameterStore store, WeightDecayScope scope)
    {
        int length = (int)store.Values.Length;
        var starts = new List<int>();
        var decays = new List<bool>();
        void Append(int start, bool decay)
        {
            if (decays.Count > 0 && decays[^1] == decay) return;
            starts.Add(start);
            decays.Add(decay);
        }

        if (scope == WeightDecayScope.AllParameters)
            Append(0, true);
        else
        {
            foreach (var p in store.Parameters)
                if (p.Length > 0) Append((int)p.Offset, p.Decay);
            // Elements past the last parameter (the one-element buffer of an empty store) never decay.
            if (store.Count < length || starts.Count == 0) Append((int)store.Count, false);
        }
        starts.Add(length);

        var mode = decays.Count > 1 ? DecayMode.Mixed : decays[0] ? DecayMode.All : DecayMode.None;
        Tensor? mask = null;
        if (mode == DecayMode.Mixed && store.Device is IlgpuDevice)
        {
            var host = new float[length];
            for (int r = 0; r < decays.Count; r++)
                if (decays[r]) host.AsSpan(starts[r], starts[r + 1] - starts[r]).Fill(1f);
            mask = store.Device.FromHost(host, length);
        }
        return new DecayLayout(mode, [.. starts], [.. decays], mask);
    }

    /// <summary>Index of the run that contains element <paramref name="index"/>.</summary>
    public int RunOf(int index)
    {
        int lo = 0, hi = RunDecays.Length - 1;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) >> 1;
            if (RunStarts[mid] <= index) lo = mid; else hi = mid - 1;
        }
        return lo;
    }

    public void Dispose() => Mask?.Dispose();
}
