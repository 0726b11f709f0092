using System.CommandLine;

namespace CrateIL.Cli.Commands;

/// <summary><c>crate bench gemm</c> (filled in with the GEMM work).</summary>
internal static class BenchGemm
{
    public static Command Create() => new("gemm", "Time SGEMM");
}
