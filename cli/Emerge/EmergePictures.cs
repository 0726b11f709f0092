namespace CrateIL.Cli.Emerge;

/// <summary>The report's pictures (sample grids and training curves). PROVISIONAL: none yet.</summary>
internal static class EmergePictures
{
    public static IReadOnlyList<(string Title, string File)> Write(string folder, EmergeReportData report, IReadOnlyList<ModelResult> results) => [];
}
