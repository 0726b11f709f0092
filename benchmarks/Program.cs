using BenchmarkDotNet.Running;

namespace CrateIL.Benchmarks;

public static class Program
{
    /// <summary>Run with: dotnet run -c Release --project benchmarks -- --filter '*Gemm*'</summary>
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
