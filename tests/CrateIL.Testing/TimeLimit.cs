using Xunit;

namespace CrateIL.Testing;

/// <summary>
/// Runs a body that could hang (a lost wake-up, a spinning wait) on a dedicated thread and fails the test when it
/// takes longer than a limit, instead of stalling the whole test run. A body that does hang keeps its (background)
/// thread spinning until the test process exits.
/// </summary>
public static class TimeLimit
{
    /// <summary>The default limit: generous for the small problems these tests run on a loaded 2-core machine.</summary>
    public static readonly TimeSpan Default = TimeSpan.FromSeconds(30);

    /// <summary>Runs <paramref name="body"/> and returns its result; fails with <paramref name="what"/> past <paramref name="limit"/>.</summary>
    public static async Task<T> Within<T>(Func<T> body, string what, TimeSpan? limit = null)
    {
        var span = limit ?? Default;
        var task = Task.Factory.StartNew(body, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        bool finished = await Task.WhenAny(task, Task.Delay(span)).ConfigureAwait(false) == task;
        Assert.True(finished, $"{what} did not finish within {span.TotalSeconds:0} s (hung?)");
        return await task.ConfigureAwait(false);
    }

    /// <summary>The same for a body without a result.</summary>
    public static Task Within(Action body, string what, TimeSpan? limit = null) =>
        Within(() => { body(); return true; }, what, limit);
}
