using System.Text.Json;
using CrateIL.Cli.Commands;
using CrateIL.Cli.Reporting;
using CrateIL.Crate.Checkpoints;
using CrateIL.Crate.Data;
using CrateIL.Crate.Training;
using CrateIL.Imaging;
using Xunit;

namespace CrateIL.Cli.Tests;

/// <summary><c>crate train</c> as a user runs it: JSON lines, plain lines, checkpoint files, curves, Ctrl-C and resume.</summary>
public sealed class TrainCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("crateil-train-cli-").FullName;

    public void Dispose()
    {
        TrainRun.InterruptWhen = null;
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>A tiny run: 64 shapes images, batch 16 → 4 steps per epoch, 2 epochs, a 2-layer model of width 24.</summary>
    private static string[] Tiny(string output, params string[] more) =>
    [
        "train", "--data", "shapes", "--train-size", "64", "--val-size", "16", "--batch", "16", "--epochs", "2",
        "--dim", "24", "--depth", "2", "--heads", "2", "--lr", "1e-3", "--device", "cpu", "--threads", "1", "--workers", "0",
        "--out", output, .. more,
    ];

    /// <param name="minBlue">Pixels in the first line colour expected: fewer before any epoch finished (only the schedule taken so far).</param>
    private static void AssertCurvesDrawn(string output, int minBlue = 500)
    {
        string path = Path.Combine(output, TrainCurves.FileName);
        Assert.True(File.Exists(path), path);
        var image = ImageFile.LoadRgb(path);
        Assert.Equal((1400, 1200), (image.Width, image.Height));
        // Not blank: lines in the model colours (blue #1F77B4) and plenty of distinct colours (text, grid, viridis layers).
        var colours = new HashSet<int>();
        int blue = 0;
        for (int p = 0; p < image.Width * image.Height; p++)
        {
            int r = image.Data[3 * p], g = image.Data[3 * p + 1], b = image.Data[3 * p + 2];
            colours.Add(r << 16 | g << 8 | b);
            if (Math.Abs(r - 0x1F) <= 8 && Math.Abs(g - 0x77) <= 8 && Math.Abs(b - 0xB4) <= 8) blue++;
        }
        Assert.True(colours.Count > 50, $"{colours.Count} colours");
        Assert.True(blue > minBlue, $"{blue} blue pixels");
    }

    [Fact]
    public void JsonPrintsOnlyObjectsOfTheDocumentedShape()
    {
        string output = Path.Combine(_dir, "json");
        var (exit, stdout, stderr) = CliRunner.Run(Tiny(output, "--json", "--log-every", "2", "--keep", "1"));
        Assert.True(exit == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var objects = lines.Select(l => JsonDocument.Parse(l).RootElement).ToArray(); // every stdout line is JSON
        Assert.Equal(["start", "step", "step", "epoch", "step", "step", "epoch", "done"], objects.Select(o => o.GetProperty("type").GetString()));

        var start = objects[0];
        Assert.Equal(4, start.GetProperty("steps_per_epoch").GetInt32());
        Assert.Equal(8, start.GetProperty("total_steps").GetInt64());
        Assert.Equal(0, start.GetProperty("step").GetInt64());
        Assert.Equal(Path.GetFullPath(output), start.GetProperty("output").GetString());

        var steps = objects.Where(o => o.GetProperty("type").GetString() == "step").ToArray();
        Assert.Equal([2L, 4, 6, 8], steps.Select(s => s.GetProperty("step").GetInt64()));
        Assert.Equal([2, 4, 2, 4], steps.Select(s => s.GetProperty("step_in_epoch").GetInt32()));
        Assert.Equal([1, 1, 2, 2], steps.Select(s => s.GetProperty("epoch").GetInt32()));
        foreach (var s in steps)
        {
            Assert.Equal(8, s.GetProperty("total_steps").GetInt64());
            Assert.Equal(4, s.GetProperty("steps_per_epoch").GetInt32());
            Assert.InRange(s.GetProperty("loss").GetDouble(), 0.1, 10);
            Assert.InRange(s.GetProperty("lr").GetDouble(), 0, 1e-3);
            Assert.True(s.GetProperty("images_per_s").GetDouble() > 0);
            Assert.True(s.GetProperty("eta_s").GetDouble() >= 0);
        }
        Assert.Equal(0, steps[^1].GetProperty("eta_s").GetDouble());

        var epochs = objects.Where(o => o.GetProperty("type").GetString() == "epoch").ToArray();
        var recorded = File.ReadAllLines(Path.Combine(output, MetricsLog.JsonName));
        for (int e = 0; e < 2; e++)
        {
            Assert.Equal(e + 1, epochs[e].GetProperty("epoch").GetInt32());
            // The epoch object is the metrics.jsonl record with its type in front.
            Assert.Equal(TrainProgress.EpochJson(EpochMetrics.FromJson(recorded[e])), lines[Array.IndexOf(objects, epochs[e])]);
            Assert.Equal(2, epochs[e].GetProperty("probes").GetArrayLength());
            foreach (var key in new[] { "step", "lr", "train_loss", "val_loss", "top1", "top5", "images_per_s", "grad_norm" })
                Assert.True(epochs[e].GetProperty(key).ValueKind == JsonValueKind.Number, key);
        }

        var done = objects[^1];
        Assert.Equal(8, done.GetProperty("steps").GetInt64());
        Assert.Equal(Path.Combine(Path.GetFullPath(output), CheckpointRotation.LastName), done.GetProperty("last").GetString());
        Assert.InRange(done.GetProperty("best_epoch").GetInt32(), 1, 2);

        // --keep 1: only the newest epoch file beside last and best.
        Assert.Equal(["best.safetensors", "epoch-0002.safetensors", "last.safetensors"],
            Directory.GetFiles(output, "*.safetensors").Select(Path.GetFileName).Order(StringComparer.Ordinal));
        // Every checkpoint records how photos are prepared for the model (ModelInput).
        foreach (string file in Directory.GetFiles(output, "*.safetensors"))
            Assert.True(Safetensors.ReadHeader(file).Metadata.ContainsKey("crate_input"), file);
        AssertCurvesDrawn(output);
    }

    [Fact]
    public void RedirectedOutputGetsPlainStepAndEpochLinesAndStaleTemporariesAreRemoved()
    {
        string output = Path.Combine(_dir, "plain");
        Directory.CreateDirectory(output);
        string stale = AtomicFile.TemporaryName("epoch-0001.safetensors");
        File.WriteAllText(Path.Combine(output, stale), "cut short");
        File.WriteAllText(Path.Combine(output, "notes.tmp"), "not ours");
        var (exit, stdout, stderr) = CliRunner.Run(Tiny(output, "--keep", "0"));
        Assert.True(exit == 0, stderr);
        Assert.Contains($"removed 1 stale temporary file(s) of interrupted checkpoint writes: {stale}", stdout);
        Assert.False(File.Exists(Path.Combine(output, stale)));
        Assert.True(File.Exists(Path.Combine(output, "notes.tmp")));
        var lines = stdout.Split('\n');
        // Default --log-every: a tenth of an epoch, at least 1 step → every step of these 4-step epochs.
        Assert.Equal(8, lines.Count(l => l.StartsWith("epoch 1/2  step ", StringComparison.Ordinal) || l.StartsWith("epoch 2/2  step ", StringComparison.Ordinal)));
        Assert.Contains(lines, l => l.StartsWith("epoch 2/2  step 4/4  loss ", StringComparison.Ordinal) && l.Contains(" img/s  ETA 0:00", StringComparison.Ordinal));
        Assert.Equal(2, lines.Count(l => l.StartsWith("epoch   ", StringComparison.Ordinal) && l.Contains("top1 ", StringComparison.Ordinal)));
        Assert.Contains(lines, l => l.StartsWith("done: 8 steps", StringComparison.Ordinal));
        Assert.DoesNotContain('\u001b', stdout); // no terminal control sequences when redirected
        Assert.Equal(["best.safetensors", "last.safetensors"],
            Directory.GetFiles(output, "*.safetensors").Select(Path.GetFileName).Order(StringComparer.Ordinal));
        AssertCurvesDrawn(output);
    }

    [Fact]
    public void InterruptWritesAResumableCheckpointExitsWith130AndTheSuggestedResumeMatchesAnUninterruptedRun()
    {
        string straight = Path.Combine(_dir, "straight"), interrupted = Path.Combine(_dir, "interrupted");
        var (exit, _, stderr) = CliRunner.Run(Tiny(straight));
        Assert.True(exit == 0, stderr);

        TrainRun.InterruptWhen = s => s.Step == 3;
        (exit, var stdout, stderr) = CliRunner.Run(Tiny(interrupted));
        TrainRun.InterruptWhen = null;
        Assert.Equal(TrainRun.InterruptedExitCode, exit);
        Assert.Contains("interrupt: finishing the current step", stdout);
        string last = Path.Combine(Path.GetFullPath(interrupted), CheckpointRotation.LastName);
        Assert.Contains($"interrupted at epoch 1 step 3 of 4; checkpoint {last}; resume with: crate train ", stderr);
        Assert.EndsWith($"--resume {last}", stderr.TrimEnd());
        var state = TrainingCheckpoint.ReadState(last);
        Assert.Equal(3, state.Step);
        Assert.Equal(3, state.StepInEpoch);
        Assert.True(Safetensors.ReadHeader(last).Metadata.ContainsKey("crate_input"));
        Assert.False(File.Exists(Path.Combine(interrupted, MetricsLog.JsonName))); // no epoch finished
        AssertCurvesDrawn(interrupted, minBlue: 100);

        // Run exactly what the message suggests.
        string suggested = stderr.TrimEnd()[(stderr.IndexOf("resume with: crate ", StringComparison.Ordinal) + "resume with: crate ".Length)..];
        (exit, stdout, stderr) = CliRunner.Run(suggested.Split(' '));
        Assert.True(exit == 0, stderr);
        Assert.Contains("resuming at epoch 1 step 3 of 4 (3 of 8 steps done)", stdout);
        Assert.Equal(File.ReadAllBytes(Path.Combine(straight, "epoch-0002.safetensors")), File.ReadAllBytes(Path.Combine(interrupted, "epoch-0002.safetensors")));
        Assert.Equal(File.ReadAllBytes(Path.Combine(straight, CheckpointRotation.LastName)), File.ReadAllBytes(last));
        Assert.Equal(2, MetricsLog.Read(interrupted).Count);
    }

    [Fact]
    public void ADivergingRunExitsWith3NamingItsStepsAndWritesNoCheckpoint()
    {
        string output = Path.Combine(_dir, "diverged");
        var args = Tiny(output, "--log-every", "3").Select(a => a == "1e-3" ? "1e30" : a).ToArray();
        var (exit, stdout, stderr) = CliRunner.Run(args);
        Assert.True(exit == 3, $"exit {exit}: {stderr}");
        var errors = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var error = Assert.Single(errors);
        // Read once per 3 steps: found reading steps 0–2 or 3 (the epoch's last), no checkpoint yet.
        Assert.StartsWith("error: training diverged at epoch 0, optimizer step ", error);
        Assert.Contains("no checkpoint was written yet", error);
        Assert.DoesNotContain("   at ", stderr); // no stack trace
        Assert.Empty(Directory.Exists(output) ? Directory.GetFiles(output, "*.safetensors") : []);
        Assert.DoesNotContain("epoch   1", stdout);
    }

    [Fact]
    public void AugmentAppliesToShapesTrainingImagesOnly()
    {
        var config = TrainCommand.CiConfig(16) with { PatchSize = 4 };
        var (plainTrain, plainVal) = TrainCommand.OpenProcedural("shapes", config, 0, 8, 4, stream: false, "none")!.Value;
        var (flipTrain, flipVal) = TrainCommand.OpenProcedural("shapes", config, 0, 8, 4, stream: false, "flip")!.Value;
        var (cropTrain, _) = TrainCommand.OpenProcedural("shapes", config, 0, 8, 4, stream: false, "crop")!.Value;
        int n = plainTrain.SampleLength, side = 16;
        float[] Load(IDataset d, int index, int stream)
        {
            var buffer = new float[n];
            var random = SampleRandom.For(1, 0, stream);
            d.Load(index, buffer, ref random);
            return buffer;
        }
        var original = Load(plainTrain, 0, 0);
        var mirror = new float[n];
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < side; y++)
                for (int x = 0; x < side; x++)
                    mirror[(c * side + y) * side + x] = original[(c * side + y) * side + side - 1 - x];
        Assert.NotEqual(original, mirror);
        var flips = Enumerable.Range(0, 32).Select(s => Load(flipTrain, 0, s)).ToArray();
        int flipped = flips.Count(f => f.SequenceEqual(mirror)), kept = flips.Count(f => f.SequenceEqual(original));
        Assert.Equal(32, flipped + kept); // every draw is the image or its mirror…
        Assert.InRange(flipped, 6, 26);   // …about half of them mirrored (p = 0.5)
        var crops = Enumerable.Range(0, 16).Select(s => Load(cropTrain, 0, s)).ToArray();
        Assert.True(crops.Count(c => !c.SequenceEqual(original) && !c.SequenceEqual(mirror)) >= 8);
        // The held-out set is never augmented.
        Assert.Equal(Load(plainVal, 1, 0), Load(flipVal, 1, 7));
        Assert.Equal(Enumerable.Range(0, 8).Select(plainTrain.GetLabel), Enumerable.Range(0, 8).Select(flipTrain.GetLabel));
    }
}
