using CrateIL.Compute.Ops;

namespace CrateIL.Nn.Parameters;

/// <summary>
/// A weight (or a matrix derived from weights, ISTA's F) as the B operand of a forward GEMM, packed once per frozen
/// generation of its store (<see cref="ParameterStore.Freeze"/>) instead of on every call. <c>For</c> returns null —
/// the plain call, which packs per call — while nothing is frozen and off the CPU; the packed copy is freed then.
/// </summary>
internal sealed class FrozenOperand : IDisposable
{
    private PackedMatrix? _packed;
    private long _generation = -1;

    /// <summary>op(B) = <paramref name="b"/> (transposed when <paramref name="transB"/>), <paramref name="k"/>×<paramref name="n"/>, packed while <paramref name="store"/> is frozen.</summary>
    public PackedMatrix? For(ParameterStore store, MatrixOperand b, bool transB, int k, int n) =>
        For(store.IsFrozen ? store.FrozenGeneration : null, b, transB, k, n);

    /// <summary>The same under a frozen <paramref name="generation"/> (null: not frozen).</summary>
    public PackedMatrix? For(long? generation, MatrixOperand b, bool transB, int k, int n)
    {
        if (generation is not long g)
        {
            Dispose();
            return null;
        }
        // A kernel switch (tests force the 256-bit one) would leave the copy unused: repack for the kernel in use.
        if (_packed is null || _generation != g || _packed.KernelName != Compute.Ops.GemmCpu.Kernel.Name)
        {
            Dispose();
            _packed = Gemm.Pack(b, transB, k, n);
            _generation = g;
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
