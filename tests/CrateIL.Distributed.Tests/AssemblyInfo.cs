// The job tests start mpirun with two ranks each; on a shared 2-core machine they take turns.
[assembly: Xunit.CollectionBehavior(DisableTestParallelization = true)]
