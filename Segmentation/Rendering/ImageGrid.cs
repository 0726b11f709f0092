using CrateIL.Imaging;
using SkiaSharp;

namespace CrateIL.Segmentation.Rendering;

/// <summary>One cell of an <see cref="ImageGrid"/>: an image of any size and an optional short caption under it (e.g. "IoU 0.62").</summary>
public sealed record GridCell(RgbImage Image, string? Caption = null);

/// <summary>
/// A labelled figure of image tiles on a dark background: a header per column ("image", "true mask", "head 0", …),
/// a label per row ("CRATE #3", "ViT #3"), optional captions under tiles, an optional title, and an optional footer
/// with a colour bar and a note (e.g. that every heat map is scaled min→max on its own).
/// Each tile is enlarged with nearest neighbours by the smallest integer factor that brings its longer side to
/// <see cref="MinTileSide"/>, so a raw 32×32 image and a 128×128 tile end up the same size and pixels stay sharp.
/// Columns are as wide as their widest tile, header or caption; rows as tall as their tallest tile; tiles are centred.
/// </summary>
public sealed class ImageGrid
{
    private const int Margin = 14, Gap = 8, LabelGap = 12, TextPad = 6;
    private const float TitleSize = 18, HeaderSize = 14, LabelSize = 14, CaptionSize = 12, FooterSize = 12;
    private const int ColorBarWidth = 160, ColorBarHeight = 10;
    private static readonly SKColor Background = new(22, 22, 26), TextColor = new(235, 235, 235), CaptionColor = new(190, 190, 200);

    private readonly List<(string Label, GridCell?[] Cells)> rows = [];

    public ImageGrid(IReadOnlyList<string> columnHeaders)
    {
        if (columnHeaders.Count == 0) throw new ArgumentException("a grid needs at least one column", nameof(columnHeaders));
        ColumnHeaders = [.. columnHeaders];
    }

    public IReadOnlyList<string> ColumnHeaders { get; }

    /// <summary>Optional line above the headers.</summary>
    public string? Title { get; init; }

    /// <summary>Optional note in the footer, right of the colour bar when there is one.</summary>
    public string? Footnote { get; init; }

    /// <summary>When set, the footer shows this colour map as a bar from "min" to "max".</summary>
    public Colormap? ColorBar { get; init; }

    /// <summary>
    /// Smallest longer side of a displayed tile; smaller tiles are enlarged by an integer factor to reach it. The default
    /// equals <see cref="Tiles.DefaultMinSide"/>, so raw images sit at the size of the tiles made from them.
    /// </summary>
    public int MinTileSide { get; init; } = Tiles.DefaultMinSide;

    public int RowCount => rows.Count;

    /// <summary>Appends a row; <paramref name="cells"/> may be shorter than the headers, and null cells stay empty.</summary>
    public ImageGrid AddRow(string label, params IReadOnlyList<GridCell?> cells)
    {
        if (cells.Count > ColumnHeaders.Count)
            throw new ArgumentException($"row '{label}' has {cells.Count} cells for {ColumnHeaders.Count} columns", nameof(cells));
        var padded = new GridCell?[ColumnHeaders.Count];
        for (int c = 0; c < cells.Count; c++) padded[c] = cells[c];
        rows.Add((label, padded));
        return this;
    }

    public void SavePng(string path) => ImageFile.SavePng(path, Render());

    public RgbImage Render()
    {
        if (rows.Count == 0) throw new InvalidOperationException("the grid has no rows");
        using var title = FigureFonts.Font(TitleSize, bold: true);
        using var header = FigureFonts.Font(HeaderSize, bold: true);
        using var label = FigureFonts.Font(LabelSize, bold: false);
        using var caption = FigureFonts.Font(CaptionSize, bold: false);
        using var footer = FigureFonts.Font(FooterSize, bold: false);

        var tiles = rows.Select(r => r.Cells.Select(c => c is null ? null : Enlarge(c.Image)).ToArray()).ToArray();
        int columns = ColumnHeaders.Count;
        var columnWidth = new int[columns];
        for (int c = 0; c < columns; c++)
        {
            columnWidth[c] = TextWidth(header, ColumnHeaders[c]);
            for (int r = 0; r < rows.Count; r++)
            {
                if (tiles[r][c] is { } t) columnWidth[c] = Math.Max(columnWidth[c], t.Width);
                if (rows[r].Cells[c]?.Caption is { } text) columnWidth[c] = Math.Max(columnWidth[c], TextWidth(caption, text));
            }
        }
        var tileHeight = tiles.Select(row => row.Max(t => t?.Height ?? 0)).ToArray();
        var hasCaption = rows.Select(r => r.Cells.Any(c => c?.Caption is not null)).ToArray();
        int labelWidth = rows.Max(r => TextWidth(label, r.Label));
        int captionBand = LineHeight(caption) + TextPad / 2;

        int titleBand = Title is null ? 0 : LineHeight(title) + TextPad;
        int headerBand = LineHeight(header) + TextPad;
        int footerBand = ColorBar is null && Footnote is null ? 0 : Gap + Math.Max(LineHeight(footer), ColorBarHeight) + TextPad;
        int gridLeft = Margin + (labelWidth > 0 ? labelWidth + LabelGap : 0);
        int width = gridLeft + columnWidth.Sum() + Gap * (columns - 1) + Margin;
        int height = Margin + titleBand + headerBand
            + Enumerable.Range(0, rows.Count).Sum(r => tileHeight[r] + (hasCaption[r] ? captionBand : 0)) + Gap * (rows.Count - 1)
            + footerBand + Margin;
        width = Math.Max(width, Margin * 2 + FooterWidth(footer));

        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        using var canvas = new SKCanvas(bitmap);
        canvas.Clear(Background);
        using var textPaint = new SKPaint { Color = TextColor, IsAntialias = true };
        using var captionPaint = new SKPaint { Color = CaptionColor, IsAntialias = true };

        int y = Margin;
        if (Title is not null)
        {
            DrawLine(canvas, Title, Margin, y, SKTextAlign.Left, title, textPaint);
            y += titleBand;
        }
        var columnLeft = new int[columns];
        for (int c = 0, x = gridLeft; c < columns; x += columnWidth[c] + Gap, c++)
        {
            columnLeft[c] = x;
            DrawLine(canvas, ColumnHeaders[c], x + columnWidth[c] / 2f, y, SKTextAlign.Center, header, textPaint);
        }
        y += headerBand;
        for (int r = 0; r < rows.Count; r++)
        {
            DrawLine(canvas, rows[r].Label, Margin, y + (tileHeight[r] - LineHeight(label)) / 2f, SKTextAlign.Left, label, textPaint);
            for (int c = 0; c < columns; c++)
            {
                if (tiles[r][c] is { } tile)
                {
                    using var tileBitmap = SkiaBitmaps.ToBitmap(tile);
                    canvas.DrawBitmap(tileBitmap, columnLeft[c] + (columnWidth[c] - tile.Width) / 2, y + (tileHeight[r] - tile.Height) / 2);
                }
                if (rows[r].Cells[c]?.Caption is { } text)
                    DrawLine(canvas, text, columnLeft[c] + columnWidth[c] / 2f, y + tileHeight[r] + TextPad / 2f, SKTextAlign.Center, caption, captionPaint);
            }
            y += tileHeight[r] + (hasCaption[r] ? captionBand : 0) + Gap;
        }
        if (footerBand > 0) DrawFooter(canvas, footer, captionPaint, Margin, y); // y already includes the gap above the footer
        canvas.Flush();
        return SkiaBitmaps.FromBitmap(bitmap);
    }

    private RgbImage Enlarge(RgbImage image) => Overlays.Upscale(image, Tiles.ScaleFor(image.Width, image.Height, MinTileSide));

    private int FooterWidth(SKFont font)
    {
        int w = 0;
        if (ColorBar is not null) w += TextWidth(font, "min") + ColorBarWidth + TextWidth(font, "max") + 4 * TextPad;
        if (Footnote is not null) w += TextWidth(font, Footnote);
        return w;
    }

    private void DrawFooter(SKCanvas canvas, SKFont font, SKPaint paint, int x, int top)
    {
        int lineHeight = LineHeight(font);
        float barTop = top + (lineHeight - ColorBarHeight) / 2f;
        if (ColorBar is { } map)
        {
            DrawLine(canvas, "min", x, top, SKTextAlign.Left, font, paint);
            x += TextWidth(font, "min") + TextPad;
            for (int i = 0; i < ColorBarWidth; i++)
            {
                var (r, g, b) = map.Map(i / (double)(ColorBarWidth - 1));
                using var fill = new SKPaint { Color = new SKColor(r, g, b) };
                canvas.DrawRect(x + i, barTop, 1, ColorBarHeight, fill);
            }
            x += ColorBarWidth + TextPad;
            DrawLine(canvas, "max", x, top, SKTextAlign.Left, font, paint);
            x += TextWidth(font, "max") + 2 * TextPad;
        }
        if (Footnote is not null) DrawLine(canvas, Footnote, x, top, SKTextAlign.Left, font, paint);
    }

    /// <summary>Draws one line of text whose top (ascent) is at <paramref name="top"/>.</summary>
    private static void DrawLine(SKCanvas canvas, string text, float x, float top, SKTextAlign align, SKFont font, SKPaint paint) =>
        canvas.DrawText(text, x, top - font.Metrics.Ascent, align, font, paint);

    private static int TextWidth(SKFont font, string text) => (int)Math.Ceiling(font.MeasureText(text));

    private static int LineHeight(SKFont font) => (int)Math.Ceiling(font.Metrics.Descent - font.Metrics.Ascent);
}
