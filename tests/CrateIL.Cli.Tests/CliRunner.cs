namespace CrateIL.Cli.Tests;

/// <summary>Runs <c>crate</c> in-process with stdout and stderr captured.</summary>
internal static class CliRunner
{
    private static readonly Lock Gate = new();

    public static (int Exit, string Out, string Err) Run(params string[] args)
    {
        lock (Gate)
        {
            var (oldOut, oldErr) = (Console.Out, Console.Error);
            using var o = new StringWriter();
            using var e = new StringWriter();
            Console.SetOut(o);
            Console.SetError(e);
            try
            {
                int exit = Program.Main(args);
                return (exit, o.ToString(), e.ToString());
            }
            finally
            {
                Console.SetOut(oldOut);
                Console.SetError(oldErr);
            }
        }
    }
}
