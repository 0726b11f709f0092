namespace CrateIL.Segmentation.Voc;

/// <summary>
/// The PASCAL VOC colour map: entry i spreads the bits of i over R, G and B from the most significant bit down
/// (i = 1 → (128, 0, 0), 15 = person → (192, 128, 128), 255 = void → (224, 224, 192)). It is one-to-one over 256 entries.
/// </summary>
public static class VocColormap
{
    /// <summary>Label value for "void / ignore" in VOC masks.</summary>
    public const byte Ignore = 255;

    /// <summary>The 21 VOC class names, index = label.</summary>
    public static readonly IReadOnlyList<string> ClassNames =
    [
        "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
        "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
    ];

    private static readonly byte[] Table = Build();
    private static readonly Dictionary<int, byte> Inverse = BuildInverse();

    /// <summary>768 bytes: RGB triplets for indices 0..255.</summary>
    public static ReadOnlySpan<byte> Palette => Table;

    public static (byte R, byte G, byte B) Color(int index) => (Table[index * 3], Table[index * 3 + 1], Table[index * 3 + 2]);

    /// <summary>The index whose colour is (r, g, b), or −1 when the colour is not in the map.</summary>
    public static int IndexOf(byte r, byte g, byte b) => Inverse.TryGetValue(r << 16 | g << 8 | b, out byte i) ? i : -1;

    private static byte[] Build()
    {
        var t = new byte[768];
        for (int i = 0; i < 256; i++)
        {
            int r = 0, g = 0, b = 0, c = i;
            for (int j = 0; j < 8; j++)
            {
                r |= (c & 1) << (7 - j);
                g |= ((c >> 1) & 1) << (7 - j);
                b |= ((c >> 2) & 1) << (7 - j);
                c >>= 3;
            }
            t[i * 3] = (byte)r; t[i * 3 + 1] = (byte)g; t[i * 3 + 2] = (byte)b;
        }
        return t;
    }

    private static Dictionary<int, byte> BuildInverse()
    {
        var d = new Dictionary<int, byte>(256);
        for (int i = 0; i < 256; i++) d[Table[i * 3] << 16 | Table[i * 3 + 1] << 8 | Table[i * 3 + 2]] = (byte)i;
        return d;
    }
}
