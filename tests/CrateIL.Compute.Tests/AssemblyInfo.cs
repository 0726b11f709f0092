// ILGPU accelerators and PoCL are shared per process; tests take turns on them.
[assembly: Xunit.CollectionBehavior(DisableTestParallelization = true)]
