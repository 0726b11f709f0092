namespace CrateIL.Segmentation.Crf;

/// <summary>
/// Storage that successive <see cref="DenseCrf2D"/>s share, so a CRF per image (MaskCut, <c>crate crf</c> over a
/// folder, <c>crate bench crf</c>) reuses the lattice tables, features and mean-field buffers of the previous one
/// instead of allocating ~60 MB per 480² image. Fresh large arrays are not free even with a fast allocator: their
/// pages are faulted in on first touch (several µs each under a hypervisor), which costs more than building the
/// lattice's vertex table.
/// <para>
/// One CRF at a time: a <see cref="DenseCrf2D"/> made with a workspace takes it over, and the earlier CRF on the
/// same workspace refuses further use (its buffers now belong to the new one). Not thread-safe.
/// </para>
/// </summary>
public sealed class CrfWorkspace
{
    private readonly Dictionary<(string Role, int Term, int Part), Array> _arrays = new();

    /// <summary>The CRF whose buffers the workspace holds now.</summary>
    internal object? Owner { get; set; }

    /// <summary>
    /// The array kept for (<paramref name="role"/>, <paramref name="term"/>, <paramref name="part"/>) if it has at
    /// least <paramref name="length"/> elements, a new one (kept from now on) otherwise. Contents are whatever the
    /// last user left: callers write every element they read, or clear.
    /// </summary>
    internal T[] Rent<T>(string role, int term, int part, int length)
    {
        var key = (role, term, part);
        if (_arrays.TryGetValue(key, out var kept) && kept is T[] array && array.Length >= length) return array;
        var fresh = new T[length];
        _arrays[key] = fresh;
        return fresh;
    }
}
