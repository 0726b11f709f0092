// The tests redirect Console and run the CLI in-process: they take turns.
[assembly: Xunit.CollectionBehavior(DisableTestParallelization = true)]
