using CrateIL.Imaging;

namespace CrateIL.Segmentation.Tests;

/// <summary>Masks written and read as bool patterns, so expected values stay readable in the tests.</summary>
internal static class MaskBits
{
    public static bool[] Bits(this BinaryMask mask)
    {
        var bits = new bool[mask.Height * mask.Width];
        for (int i = 0; i < bits.Length; i++) bits[i] = mask.Pixels[i] != 0;
        return bits;
    }

    public static BinaryMask Of(int height, int width, ReadOnlySpan<bool> bits)
    {
        var m = new BinaryMask(height, width);
        for (int i = 0; i < bits.Length; i++) m.Pixels[i] = bits[i] ? (byte)1 : (byte)0;
        return m;
    }
}
