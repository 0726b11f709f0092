using System.Buffers.Binary;
using System.IO.Compression;

namespace CrateIL.Imaging;

/// <summary>
/// A single-channel image of small integers: palette indices (with the palette) or grey levels. Label maps such as VOC
/// masks are stored this way; <see cref="Pixels"/> is row-major.
/// </summary>
public sealed class IndexedImage
{
    public int Width { get; }
    public int Height { get; }
    public byte[] Pixels { get; }
    /// <summary>RGB triplets of the palette (at most 256 entries), or null for a greyscale image.</summary>
    public byte[]? Palette { get; }

    public IndexedImage(int width, int height, byte[] pixels, byte[]? palette)
    {
        if (width <= 0 || height <= 0 || (long)width * height > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(width), $"image size {width}×{height} is not usable");
        if (pixels.Length != width * height)
            throw new ArgumentException($"{pixels.Length} pixels for a {width}×{height} image", nameof(pixels));
        if (palette is not null && (palette.Length % 3 != 0 || palette.Length == 0 || palette.Length > 768))
            throw new ArgumentException($"palette of {palette.Length} bytes is not 1..256 RGB triplets", nameof(palette));
        Width = width;
        Height = height;
        Pixels = pixels;
        Palette = palette;
    }

    public byte this[int y, int x] => Pixels[y * Width + x];
}

/// <summary>
/// A small PNG codec for palette and greyscale images (bit depths 1, 2, 4, 8; Adam7 interlacing; every chunk's CRC
/// checked). General decoders convert palettes to RGBA, which loses the indices that label maps are made of.
/// </summary>
public static class Png
{
    private static readonly byte[] Signature = [137, 80, 78, 71, 13, 10, 26, 10];
    private static readonly uint[] CrcTable = MakeCrcTable();

    public static IndexedImage ReadIndexed(string path, bool requirePalette = false) =>
        DecodeIndexed(File.ReadAllBytes(path), path, requirePalette);

    /// <summary>Decodes a palette or greyscale PNG; other colour types and 16-bit images are refused.</summary>
    public static IndexedImage DecodeIndexed(ReadOnlySpan<byte> png, string source, bool requirePalette = false)
    {
        if (png.Length < 8 || !png[..8].SequenceEqual(Signature))
            throw new ImageFormatException(source, "not a PNG file (bad signature)");
        int pos = 8;
        int width = 0, height = 0, bitDepth = 0, colorType = -1, interlace = 0;
        byte[]? palette = null;
        using var idat = new MemoryStream();
        bool sawHeader = false, sawEnd = false;
        while (!sawEnd)
        {
            if (pos + 8 > png.Length)
                throw new ImageFormatException(source, $"truncated: chunk header at byte {pos} but the file has {png.Length} bytes (no IEND)");
            uint len = BinaryPrimitives.ReadUInt32BigEndian(png[pos..]);
            var typeBytes = png.Slice(pos + 4, 4);
            string type = System.Text.Encoding.ASCII.GetString(typeBytes);
            if (len > int.MaxValue || pos + 12L + len > png.Length)
                throw new ImageFormatException(source, $"truncated: chunk {type} at byte {pos} declares {len} data bytes, only {Math.Max(0, png.Length - pos - 12)} remain");
            var data = png.Slice(pos + 8, (int)len);
            uint stored = BinaryPrimitives.ReadUInt32BigEndian(png[(pos + 8 + (int)len)..]);
            uint crc = Crc32(png.Slice(pos + 4, 4 + (int)len));
            if (crc != stored)
                throw new ImageFormatException(source, $"bad CRC in chunk {type} at byte {pos} (stored 0x{stored:x8}, computed 0x{crc:x8})");
            pos += 12 + (int)len;
            if (!sawHeader && type != "IHDR") throw new ImageFormatException(source, $"first chunk is {type}, not IHDR");
            switch (type)
            {
                case "IHDR":
                    if (sawHeader) throw new ImageFormatException(source, "second IHDR chunk");
                    if (len != 13) throw new ImageFormatException(source, $"IHDR has {len} bytes, not 13");
                    sawHeader = true;
                    uint w = BinaryPrimitives.ReadUInt32BigEndian(data), h = BinaryPrimitives.ReadUInt32BigEndian(data[4..]);
                    if (w == 0 || h == 0 || w > int.MaxValue || h > int.MaxValue || (long)w * h > ImageFile.MaxPixels)
                        throw new ImageFormatException(source, $"image size {w}×{h} is zero or larger than {ImageFile.MaxPixels} pixels");
                    width = (int)w; height = (int)h;
                    bitDepth = data[8]; colorType = data[9];
                    if (data[10] != 0 || data[11] != 0) throw new ImageFormatException(source, $"unknown compression {data[10]} or filter method {data[11]}");
                    interlace = data[12];
                    if (interlace > 1) throw new ImageFormatException(source, $"unknown interlace method {interlace}");
                    if (colorType != 0 && colorType != 3)
                        throw new ImageFormatException(source, $"colour type {colorType} ({ColorTypeName(colorType)}) is not {(requirePalette ? "a palette image" : "a palette or greyscale image")}; label maps must be stored as indices");
                    if (requirePalette && colorType != 3)
                        throw new ImageFormatException(source, "greyscale PNG where a palette PNG is required");
                    if (bitDepth is not (1 or 2 or 4 or 8))
                        throw new ImageFormatException(source, $"bit depth {bitDepth} is not supported for {ColorTypeName(colorType)} label images (1, 2, 4 or 8)");
                    break;
                case "PLTE":
                    if (len == 0 || len % 3 != 0 || len > 768) throw new ImageFormatException(source, $"PLTE has {len} bytes, not 1..256 RGB triplets");
                    palette = data.ToArray();
                    break;
                case "IDAT":
                    idat.Write(data);
                    break;
                case "IEND":
                    sawEnd = true;
                    break;
                default:
                    if ((typeBytes[0] & 0x20) == 0)
                        throw new ImageFormatException(source, $"unknown critical chunk {type}");
                    break;
            }
        }
        if (colorType == 3 && palette is null) throw new ImageFormatException(source, "palette image without a PLTE chunk");
        if (idat.Length == 0) throw new ImageFormatException(source, "no image data (IDAT)");

        var passes = interlace == 0
            ? new[] { (x0: 0, y0: 0, dx: 1, dy: 1) }
            : new[] { (0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2) };
        long expected = 0;
        foreach (var (x0, y0, dx, dy) in passes)
        {
            long pw = (width - x0 + dx - 1) / dx, ph = (height - y0 + dy - 1) / dy;
            if (pw > 0 && ph > 0) expected += ph * (1 + (pw * bitDepth + 7) / 8);
        }
        if (!EncodedSizeBound.DeflateCanHold(idat.Length, expected))
            throw new ImageFormatException(source, $"truncated image data: {idat.Length} compressed bytes cannot hold the {expected} bytes a {width}×{height} image needs");
        var raw = new byte[expected];
        idat.Position = 0;
        try
        {
            using var z = new ZLibStream(idat, CompressionMode.Decompress);
            int got = 0;
            while (got < raw.Length)
            {
                int n = z.Read(raw, got, raw.Length - got);
                if (n == 0) break;
                got += n;
            }
            if (got < raw.Length)
                throw new ImageFormatException(source, $"truncated image data: {got} of {raw.Length} bytes after decompression");
        }
        catch (InvalidDataException ex)
        {
            throw new ImageFormatException(source, $"corrupt compressed image data: {ex.Message}");
        }

        var pixels = new byte[width * height];
        int offset = 0;
        foreach (var (x0, y0, dx, dy) in passes)
        {
            int pw = (width - x0 + dx - 1) / dx, ph = (height - y0 + dy - 1) / dy;
            if (pw <= 0 || ph <= 0) continue;
            int rowBytes = (pw * bitDepth + 7) / 8;
            int bpp = 1; // bytes per complete pixel, rounded up, for the filters
            var prev = new byte[rowBytes];
            var cur = new byte[rowBytes];
            for (int r = 0; r < ph; r++)
            {
                int filter = raw[offset];
                raw.AsSpan(offset + 1, rowBytes).CopyTo(cur);
                offset += 1 + rowBytes;
                Unfilter(filter, cur, prev, bpp, source, r);
                int y = y0 + r * dy;
                for (int c = 0; c < pw; c++)
                {
                    int v = bitDepth == 8 ? cur[c] : (cur[c * bitDepth / 8] >> (8 - bitDepth - c * bitDepth % 8)) & ((1 << bitDepth) - 1);
                    pixels[y * width + x0 + c * dx] = (byte)v;
                }
                (prev, cur) = (cur, prev);
            }
        }
        if (palette is not null && colorType == 3)
        {
            int entries = palette.Length / 3;
            for (int i = 0; i < pixels.Length; i++)
                if (pixels[i] >= entries)
                    throw new ImageFormatException(source, $"pixel ({i % width}, {i / width}) has index {pixels[i]} but the palette has {entries} entries");
        }
        return new IndexedImage(width, height, pixels, colorType == 3 ? palette : null);
    }

    private static void Unfilter(int filter, Span<byte> cur, ReadOnlySpan<byte> prev, int bpp, string source, int row)
    {
        switch (filter)
        {
            case 0: break;
            case 1: for (int i = bpp; i < cur.Length; i++) cur[i] += cur[i - bpp]; break;
            case 2: for (int i = 0; i < cur.Length; i++) cur[i] += prev[i]; break;
            case 3:
                for (int i = 0; i < cur.Length; i++) cur[i] += (byte)(((i >= bpp ? cur[i - bpp] : 0) + prev[i]) >> 1);
                break;
            case 4:
                for (int i = 0; i < cur.Length; i++)
                {
                    int a = i >= bpp ? cur[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
                    int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
                    cur[i] += (byte)(pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
                }
                break;
            default:
                throw new ImageFormatException(source, $"row {row} has unknown filter type {filter}");
        }
    }

    /// <summary>Encodes an 8-bit palette PNG (or greyscale when <see cref="IndexedImage.Palette"/> is null).</summary>
    public static byte[] EncodeIndexed(IndexedImage image)
    {
        using var ms = new MemoryStream();
        ms.Write(Signature);
        Span<byte> ihdr = stackalloc byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(ihdr, (uint)image.Width);
        BinaryPrimitives.WriteUInt32BigEndian(ihdr[4..], (uint)image.Height);
        ihdr[8] = 8;
        ihdr[9] = image.Palette is null ? (byte)0 : (byte)3;
        ihdr[10] = ihdr[11] = ihdr[12] = 0;
        WriteChunk(ms, "IHDR", ihdr);
        if (image.Palette is { } pal)
        {
            int entries = pal.Length / 3;
            foreach (byte v in image.Pixels)
                if (v >= entries) throw new ArgumentException($"pixel index {v} is outside the {entries}-entry palette", nameof(image));
            WriteChunk(ms, "PLTE", pal);
        }
        using (var body = new MemoryStream())
        {
            using (var z = new ZLibStream(body, CompressionLevel.Optimal, leaveOpen: true))
            {
                for (int y = 0; y < image.Height; y++)
                {
                    z.WriteByte(0);
                    z.Write(image.Pixels, y * image.Width, image.Width);
                }
            }
            WriteChunk(ms, "IDAT", body.ToArray());
        }
        WriteChunk(ms, "IEND", []);
        return ms.ToArray();
    }

    public static void WriteIndexed(string path, IndexedImage image) => File.WriteAllBytes(path, EncodeIndexed(image));

    private static void WriteChunk(Stream s, string type, ReadOnlySpan<byte> data)
    {
        Span<byte> head = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32BigEndian(head, (uint)data.Length);
        System.Text.Encoding.ASCII.GetBytes(type, head[4..]);
        s.Write(head);
        s.Write(data);
        var crcInput = new byte[4 + data.Length];
        head[4..].CopyTo(crcInput);
        data.CopyTo(crcInput.AsSpan(4));
        Span<byte> crc = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(crc, Crc32(crcInput));
        s.Write(crc);
    }

    private static string ColorTypeName(int t) => t switch
    {
        0 => "greyscale",
        2 => "RGB",
        3 => "palette",
        4 => "greyscale with alpha",
        6 => "RGBA",
        _ => "invalid",
    };

    internal static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint c = 0xffffffff;
        foreach (byte b in data) c = CrcTable[(c ^ b) & 0xff] ^ (c >> 8);
        return c ^ 0xffffffff;
    }

    private static uint[] MakeCrcTable()
    {
        var t = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xedb88320 ^ (c >> 1) : c >> 1;
            t[n] = c;
        }
        return t;
    }
}
