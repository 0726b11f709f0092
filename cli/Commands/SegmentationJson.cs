using System.Text.Encodings.Web;
using System.Text.Json;

namespace CrateIL.Cli.Commands;

/// <summary>The <c>--json</c> format of the segmentation commands (export, crf, maskcut, segeval): snake_case, indented.</summary>
internal static class SegmentationJson
{
    public static JsonSerializerOptions Options { get; } = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };
}
