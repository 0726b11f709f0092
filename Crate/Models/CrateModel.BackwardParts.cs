namespace CrateIL.Crate.Models;

public sealed partial class CrateModel
{
    private long[]? _backwardPartStarts;

    /// <summary>
    /// Called during <see cref="Backward"/> each time a part has finished — the head, each layer from the last, the
    /// positional embedding and CLS token, the patch embedding — with <see cref="BackwardPartStarts"/>' entry for it:
    /// every gradient at an element offset ≥ the argument is then final for this pass (data-parallel training
    /// starts reducing those while the rest of the backward runs). Null: no calls.
    /// </summary>
    public Action<long>? GradientsFinal { get; set; }

    /// <summary>
    /// The offsets <see cref="GradientsFinal"/> reports, in order: the first gradient-buffer offset of the head, of
    /// layer depth − 1, …, of layer 0, of the positional part, and 0. Descending, because the parameters are
    /// registered in forward order (patch, positions, layers, head) and the backward pass visits them in reverse.
    /// </summary>
    public IReadOnlyList<long> BackwardPartStarts => _backwardPartStarts ??= ComputeBackwardPartStarts();

    private long[] ComputeBackwardPartStarts()
    {
        long Start(Func<string, bool> member)
        {
            long start = long.MaxValue;
            foreach (var p in Parameters.Parameters)
                if (member(p.Name)) start = Math.Min(start, p.Offset);
            return start;
        }
        var starts = new long[Config.Depth + 3];
        starts[0] = Start(n => n.StartsWith("mlp_head.", StringComparison.Ordinal));
        for (int l = Config.Depth - 1; l >= 0; l--)
        {
            string prefix = $"transformer.layers.{l}.";
            starts[Config.Depth - l] = Start(n => n.StartsWith(prefix, StringComparison.Ordinal));
        }
        starts[^2] = Start(n => !n.StartsWith("to_patch_embedding.", StringComparison.Ordinal));
        starts[^1] = 0;
        for (int i = 1; i < starts.Length; i++)
            if (starts[i] > starts[i - 1])
                throw new InvalidOperationException($"{What}: parameters are not registered in forward order (part {i} starts at {starts[i]} after {starts[i - 1]}); the backward's finished ranges would not be suffixes");
        return starts;
    }
}
