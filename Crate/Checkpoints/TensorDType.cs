using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace CrateIL.Crate.Checkpoints;

/// <summary>The element type a tensor had in its source file (CrateIL always holds float32 after loading).</summary>
public enum TensorDType
{
    Float32,
    Float64,
    Float16,
    BFloat16,
    Int64,
    Int32,
    Int16,
    Int8,
    UInt8,
    Bool,
}

internal static class TensorDTypes
{
    public static int Size(TensorDType dtype) => dtype switch
    {
        TensorDType.Float32 or TensorDType.Int32 => 4,
        TensorDType.Float64 or TensorDType.Int64 => 8,
        TensorDType.Float16 or TensorDType.BFloat16 or TensorDType.Int16 => 2,
        _ => 1,
    };

    /// <summary>
    /// Converts <c>destination.Length</c> elements of <paramref name="dtype"/> starting at element
    /// <paramref name="first"/> of <paramref name="source"/> into float32, reading little-endian bytes
    /// (or big-endian when <paramref name="bigEndian"/> is set).
    /// </summary>
    public static void ToFloat(ReadOnlySpan<byte> source, TensorDType dtype, long first, Span<float> destination, bool bigEndian = false)
    {
        int size = Size(dtype);
        ReadOnlySpan<byte> bytes = source.Slice(checked((int)(first * size)), destination.Length * size);
        switch (dtype)
        {
            case TensorDType.Float32 when bigEndian != BitConverter.IsLittleEndian:
                // Same byte order as this machine: a plain copy.
                MemoryMarshal.Cast<byte, float>(bytes).CopyTo(destination);
                break;
            case TensorDType.Float32:
                for (int i = 0; i < destination.Length; i++)
                {
                    var s = bytes.Slice(i * 4, 4);
                    destination[i] = bigEndian ? BinaryPrimitives.ReadSingleBigEndian(s) : BinaryPrimitives.ReadSingleLittleEndian(s);
                }
                break;
            case TensorDType.Float64:
                for (int i = 0; i < destination.Length; i++)
                {
                    var s = bytes.Slice(i * 8, 8);
                    destination[i] = (float)(bigEndian ? BinaryPrimitives.ReadDoubleBigEndian(s) : BinaryPrimitives.ReadDoubleLittleEndian(s));
                }
                break;
            case TensorDType.Float16:
                for (int i = 0; i < destination.Length; i++)
                {
                    var s = bytes.Slice(i * 2, 2);
                    destination[i] = (float)(bigEndian ? BinaryPrimitives.ReadHalfBigEndian(s) : BinaryPrimitives.ReadHalfLittleEndian(s));
                }
                break;
            case TensorDType.BFloat16:
                for (int i = 0; i < destination.Length; i++)
                {
                    var s = bytes.Slice(i * 2, 2);
                    // bfloat16 is the upper half of a float32: widening is exact.
                    uint bits = bigEndian ? BinaryPrimitives.ReadUInt16BigEndian(s) : BinaryPrimitives.ReadUInt16LittleEndian(s);
                    destination[i] = BitConverter.UInt32BitsToSingle(bits << 16);
                }
                break;
            case TensorDType.Int64:
                for (int i = 0; i < destination.Length; i++)
                {
                    var s = bytes.Slice(i * 8, 8);
                    destination[i] = bigEndian ? BinaryPrimitives.ReadInt64BigEndian(s) : BinaryPrimitives.ReadInt64LittleEndian(s);
                }
                break;
            case TensorDType.Int32:
                for (int i = 0; i < destination.Length; i++)
                {
                    var s = bytes.Slice(i * 4, 4);
                    destination[i] = bigEndian ? BinaryPrimitives.ReadInt32BigEndian(s) : BinaryPrimitives.ReadInt32LittleEndian(s);
                }
                break;
            case TensorDType.Int16:
                for (int i = 0; i < destination.Length; i++)
                {
                    var s = bytes.Slice(i * 2, 2);
                    destination[i] = bigEndian ? BinaryPrimitives.ReadInt16BigEndian(s) : BinaryPrimitives.ReadInt16LittleEndian(s);
                }
                break;
            case TensorDType.Int8:
                for (int i = 0; i < destination.Length; i++) destination[i] = (sbyte)bytes[i];
                break;
            case TensorDType.UInt8:
                for (int i = 0; i < destination.Length; i++) destination[i] = bytes[i];
                break;
            case TensorDType.Bool:
                for (int i = 0; i < destination.Length; i++) destination[i] = bytes[i] != 0 ? 1f : 0f;
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown dtype");
        }
    }

    /// <summary>Element count of a shape, or -1 when it overflows a 64-bit count or has a negative dimension.</summary>
    public static long Numel(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) return -1;
            try { n = checked(n * d); }
            catch (OverflowException) { return -1; }
        }
        return n;
    }
}
