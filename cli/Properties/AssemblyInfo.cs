// The CLI tests drive internal hooks (e.g. TrainRun.InterruptWhen, a programmatic Ctrl-C).
[assembly: System.Runtime.CompilerServices.InternalsVisibleTo("CrateIL.Cli.Tests")]
