using CrateIL.Compute.Ops;

namespace CrateIL.Nn.Parameters;

/// <summary>
/// A weight as the B operand of a layer's forward GEMM, packed once per frozen generation of its store
/// (<see cref="ParameterStore.Freeze"/>) instead of on every call. <see cref="For"/> returns null — the plain call,
/// which packs per call — while the store is not frozen and off the CPU; the packed copy is freed then.
/// </summary>
internal sealed class FrozenOperand : IDisposable
{
    private PackedMatrix? _packed;
    private long _generation = -1;

    /// <summary>op(B) = <paramref name="b"/> (transposed when <paramref name="transB"/>), <paramref name="k"/>×<paramref name="n"/>, packed while <paramref name="store"/> is frozen.</summary>
    public PackedMatrix? For(ParameterStore store, MatrixOperand b, bool transB, int k, int n)
    {
        if (!store.IsFrozen)
        {
            Dispose();
            return null;
        }
        // A kernel switch (tests force the 256-bit one) would leave the copy unused: repack for the kernel in use.
        if (_packed is null || _generation != store.FrozenGeneration || _packed.KernelName != Compute.Ops.GemmCpu.Kernel.Name)
        {
            Dispose();
            _packed = Gemm.Pack(b, transB, k, n);
            _generation = store.FrozenGeneration;
        }
        return _packed;
    }

    public void Dispose()
    {
        _packed?.Dispose();
        _packed = null;
        _generation = -1;
    }
}
