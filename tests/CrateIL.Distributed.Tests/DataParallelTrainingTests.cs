using System.Diagnostics;
using CrateIL.Crate.Checkpoints;
using CrateIL.Testing;
using Xunit;

namespace CrateIL.Distributed.Tests;

/// <summary>
/// `crate train` as a 2-rank Open MPI job on this machine (tiny model, CPU, one thread per rank): equivalence with one
/// process, the failure modes (a rank killed, a rank raising, mismatched commands) and resuming with another rank count.
/// </summary>
public sealed class DataParallelTrainingTests : IDisposable
{
    private static readonly TimeSpan JobTimeout = TimeSpan.FromSeconds(240);

    /// <summary>Time a surviving rank may take to end after its peer died or failed.</summary>
    private static readonly TimeSpan FailureBound = TimeSpan.FromSeconds(30);

    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"crateil-dp-{Guid.NewGuid():N}");

    public DataParallelTrainingTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    /// <summary>A tiny run: dim 32, depth 2, 64 shapes images, AdamW (Lion's sign() would turn 1-ulp differences into lr-sized ones).</summary>
    private string[] Train(string output, int batch, int epochs, params string[] extra) =>
    [
        "train", "--model", "ci", "--dim", "32", "--depth", "2", "--heads", "2", "--train-size", "64", "--val-size", "16",
        "--threads", "1", "--workers", "0", "--optimizer", "adamw", "--lr", "1e-3", "--seed", "3",
        "--batch", batch.ToString(System.Globalization.CultureInfo.InvariantCulture),
        "--epochs", epochs.ToString(System.Globalization.CultureInfo.InvariantCulture), "--out", Path.Combine(_dir, output), .. extra,
    ];

    private static string[] Seeded(string[] args, int seed) => With(args, "--seed", seed.ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>A copy of <paramref name="args"/> with <paramref name="option"/>'s value replaced.</summary>
    private static string[] With(string[] args, string option, string value)
    {
        var copy = (string[])args.Clone();
        copy[Array.IndexOf(copy, option) + 1] = value;
        return copy;
    }

    private string Checkpoint(string output, int epoch) => Path.Combine(_dir, output, $"epoch-{epoch:D4}.safetensors");

    private static void AssertSucceeded(MpiJob.Result r, string what) =>
        Assert.True(r.Exit == 0, $"{what} exited {r.Exit}:\n{r.Output}");

    /// <summary>Largest |a − b| over every weight of two checkpoints (same names and shapes required).</summary>
    private static double MaxWeightDifference(string a, string b, out bool identical)
    {
        var x = Safetensors.Read(a);
        var y = Safetensors.Read(b);
        Assert.Equal(x.Names.Order(), y.Names.Order());
        double worst = 0;
        identical = true;
        foreach (var t in x)
        {
            var u = y[t.Name];
            Assert.Equal(t.Shape, u.Shape);
            for (int i = 0; i < t.Data.Length; i++)
            {
                Assert.True(float.IsFinite(t.Data[i]) && float.IsFinite(u.Data[i]), $"{t.Name}[{i}] is not finite");
                if (BitConverter.SingleToInt32Bits(t.Data[i]) != BitConverter.SingleToInt32Bits(u.Data[i])) identical = false;
                worst = Math.Max(worst, Math.Abs((double)t.Data[i] - u.Data[i]));
            }
        }
        return worst;
    }

    [SkippableFact]
    public void Two_ranks_of_batch_b_train_the_weights_of_one_process_of_batch_2b()
    {
        MpiJob.RequireOpenMpi();
        // 8 steps of a global batch of 8: each rank reads 4 images per step.
        var bucketed = MpiJob.Run(2, Train("bucketed", 8, 1, "--bucket-mb", "0.02"), JobTimeout);
        AssertSucceeded(bucketed, "2 ranks, bucketed");
        Assert.Contains("distributed: 2 ranks", bucketed.Output);
        Assert.Matches(@"gradients: [2-9]\d* bucket\(s\)", bucketed.Output);
        var flat = MpiJob.Run(2, Train("flat", 8, 1, "--flat-allreduce"), JobTimeout);
        AssertSucceeded(flat, "2 ranks, flat");
        var single = MpiJob.RunAlone(Train("single", 8, 1), JobTimeout);
        AssertSucceeded(single, "1 process");

        // Buckets and the flat all-reduce sum the same two buffers (a + b, commutative): bit for bit the same run.
        Assert.Equal(0, MaxWeightDifference(Checkpoint("bucketed", 1), Checkpoint("flat", 1), out bool same));
        Assert.True(same, "bucketed and flat all-reduce must give identical weights");
        // One process sums the 8 images' gradients inside its GEMMs in another order: equal to float rounding. After
        // 8 AdamW steps at lr 1e-3 the weights (|w| up to ~3) differ by about one ulp; 1e-5 leaves room, while a
        // wrong shard, loss weight or reduction moves them by ~lr = 1e-3.
        double diff = MaxWeightDifference(Checkpoint("bucketed", 1), Checkpoint("single", 1), out _);
        Assert.True(diff <= 1e-5, $"2 ranks × 4 vs 1 process × 8: max weight difference {diff:E2} > 1e-5");
        // The same epoch metrics: the training loss is the mean over both ranks' shards.
        string Line(MpiJob.Result r) => r.Output.Split('\n').First(l => l.TrimStart().StartsWith("epoch", StringComparison.Ordinal));
        Assert.Equal(Field(Line(single), "train"), Field(Line(bucketed), "train"));
        Assert.Equal(Field(Line(single), "top1"), Field(Line(bucketed), "top1"));
    }

    [SkippableFact]
    public void Gradients_on_a_device_go_through_host_staging_and_match_one_process()
    {
        MpiJob.RequireOpenMpi();
        // PoCL's OpenCL device stands in for a GPU: the gradient buffer is not host memory, so every bucket is staged.
        Backends.Get(Backends.OpenCL);
        var env = new Dictionary<string, string> { ["CRATEIL_OPENCL_ALLOW_POCL"] = "1" };
        string[] Small(string output) => With(Train(output, 8, 1, "--device", "opencl", "--bucket-mb", "0.02"), "--train-size", "16");
        var ranks = MpiJob.Run(2, Small("staged"), JobTimeout, env);
        AssertSucceeded(ranks, "2 ranks on OpenCL");
        Assert.Contains("uses opencl:", ranks.Output);
        var single = MpiJob.RunAlone(Small("staged-single"), JobTimeout, env);
        AssertSucceeded(single, "1 process on OpenCL");
        double diff = MaxWeightDifference(Checkpoint("staged", 1), Checkpoint("staged-single", 1), out _);
        Assert.True(diff <= 1e-5, $"2 ranks vs 1 process on OpenCL: max weight difference {diff:E2} > 1e-5");
    }

    private static string Field(string line, string name)
    {
        var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return parts[Array.IndexOf(parts, name) + 1];
    }

    [SkippableFact]
    public void A_killed_rank_ends_the_job_and_the_last_checkpoint_resumes_with_one_process()
    {
        MpiJob.RequireOpenMpi();
        string checkpoint = Checkpoint("killed", 1);
        var killedAt = Stopwatch.StartNew();
        int? victim = null;
        var r = MpiJob.Run(2, Train("killed", 8, 200), JobTimeout, whileRunning: job =>
        {
            var wait = Stopwatch.StartNew();
            while (!File.Exists(checkpoint) && !job.HasExited && wait.Elapsed < JobTimeout) Thread.Sleep(100);
            victim = MpiJob.RankPid(job, 1);
            if (victim is int pid)
            {
                killedAt.Restart();
                Process.GetProcessById(pid).Kill(); // SIGKILL on Unix: kill -9
            }
        });
        Assert.True(victim is not null, $"rank 1 was not found among mpirun's children:\n{r.Output}");
        var bound = killedAt.Elapsed;
        Assert.True(bound < FailureBound, $"the job took {bound.TotalSeconds:F1} s to end after rank 1 was killed");
        Assert.NotEqual(0, r.Exit);
        // mpirun's "exited on signal 9" notice is its help text, which it occasionally fails to deliver
        // ("ORTE_ERROR_LOG … show_help.c"); check the text whenever it arrived.
        if (!r.Output.Contains("show_help.c", StringComparison.Ordinal))
        {
            Assert.Contains("rank 1", r.Output);
            Assert.Contains("signal 9", r.Output);
        }
        Assert.False(File.Exists(Checkpoint("killed", 200)));

        // The newest checkpoint on disk was written atomically: it loads, and one process (another N) continues it.
        string last = Directory.GetFiles(Path.Combine(_dir, "killed"), "epoch-*.safetensors").Order().Last();
        int done = int.Parse(Path.GetFileNameWithoutExtension(last)["epoch-".Length..], System.Globalization.CultureInfo.InvariantCulture);
        var resumed = MpiJob.RunAlone([.. Train("killed", 8, done + 1), "--resume", last], JobTimeout);
        AssertSucceeded(resumed, "resume with 1 process");
        Assert.True(File.Exists(Checkpoint("killed", done + 1)), resumed.Output);
    }

    [SkippableFact]
    public void A_rank_that_raises_aborts_the_job_with_its_error()
    {
        MpiJob.RequireOpenMpi();
        var env = new Dictionary<string, string> { ["CRATEIL_FAULT_RANK"] = "1", ["CRATEIL_FAULT_STEP"] = "3" };
        var r = MpiJob.Run(2, Train("raised", 8, 200), JobTimeout, env);
        Assert.NotEqual(0, r.Exit);
        Assert.Contains("error: rank 1 of 2 failed: injected fault on rank 1 after step 3", r.Output);
        // Open MPI's own "MPI_ABORT was invoked" help text is not asserted: mpirun loses it now and then
        // ("ORTE_ERROR_LOG: Data unpack would read past end of buffer … show_help.c", about 1 run in 3 here);
        // our line above, the non-zero exit and the bounded time are what the user relies on.
        Assert.False(File.Exists(Checkpoint("raised", 1)), "no checkpoint may appear after the failing step 3 of epoch 1");
    }

    [SkippableFact]
    public void Ranks_with_different_commands_stop_at_start_up_naming_the_difference()
    {
        MpiJob.RequireOpenMpi();
        var r = MpiJob.RunPerRank([Train("mismatch", 8, 1), Train("mismatch", 16, 1)], JobTimeout);
        Assert.Equal(2, r.Exit);
        Assert.Contains("the 2 ranks disagree on batch (--batch, --accumulate)", r.Output);
        Assert.False(File.Exists(Checkpoint("mismatch", 1)));

        var model = MpiJob.RunPerRank([Train("mismatch", 8, 1), Seeded(Train("mismatch", 8, 1), 4)], JobTimeout);
        Assert.Equal(2, model.Exit);
        Assert.Contains("seed", model.Output);
        Assert.Contains("initial weights", model.Output);
    }

    [SkippableFact]
    public void Bench_allreduce_checks_its_sums_over_two_ranks()
    {
        MpiJob.RequireOpenMpi();
        var r = MpiJob.Run(2, ["bench", "allreduce", "--min", "4K", "--max", "64K", "--seconds", "0.02"], JobTimeout);
        AssertSucceeded(r, "bench allreduce");
        Assert.Contains("over 2 ranks", r.Output);
        Assert.Contains("65536", r.Output);
    }
}
