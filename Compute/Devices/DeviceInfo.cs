namespace CrateIL.Compute.Devices;

/// <summary>
/// One entry of the device listing: a usable device, or one that was found and rejected (with the reason).
/// </summary>
public sealed record DeviceInfo(
    DeviceKind Kind,
    int Index,
    string Name,
    bool Usable,
    string? RejectedReason,
    IReadOnlyList<KeyValuePair<string, string>> Properties)
{
    /// <summary>The string that selects this device, e.g. <c>opencl:0</c>.</summary>
    public string Spec => $"{Kind.ToSpec()}:{Index}";

    public override string ToString() =>
        Usable ? $"{Spec} {Name}" : $"{Spec} {Name} (rejected: {RejectedReason})";
}

/// <summary>Thrown when a requested device does not exist or cannot be opened.</summary>
public sealed class DeviceNotFoundException(string message) : Exception(message);
