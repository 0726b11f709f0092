using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using CrateIL.Crate.Training;
using Spectre.Console;

namespace CrateIL.Cli.Reporting;

/// <summary>How a training run reports its progress.</summary>
internal enum ProgressStyle
{
    /// <summary>A live Spectre.Console bar per epoch (a terminal); epoch lines print above it.</summary>
    Bar,

    /// <summary>Plain text lines: a step line every <see cref="TrainProgress.LogEvery"/> steps and the epoch lines (output redirected).</summary>
    Lines,

    /// <summary>One JSON object per line for steps (every <see cref="TrainProgress.LogEvery"/>) and epochs, nothing else.</summary>
    Json,
}

/// <summary>
/// The progress display of <c>crate train</c> and <c>crate emerge</c>: hooks a <see cref="Trainer"/>'s
/// <see cref="Trainer.StepCompleted"/> and <see cref="Trainer.EpochCompleted"/> (keeping handlers already set) and
/// shows step, loss, learning rate, images/s and ETA as a bar per epoch, plain lines or JSON lines.
/// </summary>
internal sealed class TrainProgress
{
    private readonly Trainer _trainer;
    private readonly ProgressStyle _style;
    private readonly Action<string> _writeLine;
    private readonly Stopwatch _runClock = new();
    private readonly Stopwatch _epochClock = new();
    private long _stepsThisRun, _stepsThisEpoch;
    private ProgressTask? _task;
    private int _taskEpoch = -1;
    private ProgressContext? _context;

    /// <param name="writeLine">Where <see cref="ProgressStyle.Lines"/> and <see cref="ProgressStyle.Json"/> lines go (stdout for the CLI).</param>
    public TrainProgress(Trainer trainer, ProgressStyle style, Action<string> writeLine)
    {
        ArgumentNullException.ThrowIfNull(trainer);
        ArgumentNullException.ThrowIfNull(writeLine);
        _trainer = trainer;
        _style = style;
        _writeLine = writeLine;
    }

    /// <summary>The style for this process: JSON when asked, a bar on a terminal, plain lines when stdout or stderr is redirected.</summary>
    public static ProgressStyle StyleFor(bool json) =>
        json ? ProgressStyle.Json : !Console.IsOutputRedirected && !Console.IsErrorRedirected ? ProgressStyle.Bar : ProgressStyle.Lines;

    /// <summary>Put before every step line and bar (e.g. the model's name when several are trained).</summary>
    public string Label { get; init; } = "";

    /// <summary>The text line for a finished epoch (bar and plain styles); null prints none.</summary>
    public Func<EpochMetrics, string>? EpochLine { get; init; }

    /// <summary>
    /// Steps between step lines (plain and JSON styles; also every epoch's last step); 0: no step lines. The trainer
    /// reports once per logging interval (<see cref="Trainer.LogEvery"/>): the CLI passes that interval, so every report
    /// but an interrupt's partial one prints; the bar moves once per interval.
    /// </summary>
    public int LogEvery { get; init; }

    /// <summary>Runs <paramref name="train"/> (which calls the trainer) with the display installed; exceptions pass through.</summary>
    public T Run<T>(Func<T> train)
    {
        ArgumentNullException.ThrowIfNull(train);
        var previousStep = _trainer.StepCompleted;
        var previousEpoch = _trainer.EpochCompleted;
        _trainer.StepCompleted = s =>
        {
            previousStep?.Invoke(s);
            OnStep(s);
        };
        _trainer.EpochCompleted = m =>
        {
            previousEpoch?.Invoke(m);
            OnEpoch(m);
        };
        _runClock.Restart();
        _epochClock.Restart();
        try
        {
            if (_style != ProgressStyle.Bar) return train();
            T result = default!;
            AnsiConsole.Progress()
                .AutoClear(false)
                .HideCompleted(true)
                .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                    new RemainingTimeColumn(), new SpinnerColumn())
                .Start(ctx =>
                {
                    _context = ctx;
                    if (_trainer.EpochsCompleted < _trainer.Options.Epochs) Bar(_trainer.EpochsCompleted, _trainer.StepInEpoch, null);
                    result = train();
                });
            return result;
        }
        finally
        {
            _context = null;
            _trainer.StepCompleted = previousStep;
            _trainer.EpochCompleted = previousEpoch;
        }
    }

    /// <summary>A step's numbers as the display shows them.</summary>
    private readonly record struct StepView(int Epoch, int StepInEpoch, StepProgress Progress, double ImagesPerSecond, double EtaSeconds);

    private void OnStep(StepProgress s)
    {
        // One report per logging interval, covering s.Steps optimizer steps.
        _stepsThisRun += s.Steps;
        _stepsThisEpoch += s.Steps;
        int perEpoch = _trainer.StepsPerEpoch;
        var view = new StepView((int)((s.Step - 1) / perEpoch), (int)((s.Step - 1) % perEpoch) + 1, s,
            _stepsThisEpoch * (double)_trainer.Options.BatchSize / Math.Max(1e-9, _epochClock.Elapsed.TotalSeconds),
            // The whole run's pace so far (evaluations included) times the steps left.
            (s.TotalSteps - s.Step) * _runClock.Elapsed.TotalSeconds / _stepsThisRun);
        bool logged = LogEvery > 0 && (view.StepInEpoch % LogEvery == 0 || view.StepInEpoch == perEpoch);
        switch (_style)
        {
            case ProgressStyle.Bar:
                Bar(view.Epoch, view.StepInEpoch, view);
                break;
            case ProgressStyle.Lines when logged:
                _writeLine(Describe(view));
                break;
            case ProgressStyle.Json when logged:
                _writeLine(StepJson(view));
                break;
        }
    }

    private void OnEpoch(EpochMetrics m)
    {
        if (_style == ProgressStyle.Json) _writeLine(EpochJson(m));
        else if (EpochLine is not null)
        {
            string line = EpochLine(m);
            if (_style == ProgressStyle.Bar && _context is not null) AnsiConsole.WriteLine(line);
            else _writeLine(line);
        }
        if (_task is not null) _task.Value = _task.MaxValue;
        _stepsThisEpoch = 0;
        _epochClock.Restart();
    }

    private void Bar(int epoch, int stepInEpoch, StepView? view)
    {
        if (_context is null) return;
        if (_task is null || _taskEpoch != epoch)
        {
            if (_task is not null) _task.Value = _task.MaxValue;
            _task = _context.AddTask(Markup.Escape(Waiting(epoch, stepInEpoch)), maxValue: _trainer.StepsPerEpoch);
            _taskEpoch = epoch;
        }
        _task.Value = stepInEpoch;
        if (view is { } v) _task.Description = Markup.Escape(Describe(v));
    }

    private string Waiting(int epoch, int stepInEpoch) => string.Create(CultureInfo.InvariantCulture,
        $"{Label}epoch {epoch + 1}/{_trainer.Options.Epochs}  step {stepInEpoch}/{_trainer.StepsPerEpoch}");

    private string Describe(StepView v) => string.Create(CultureInfo.InvariantCulture,
        $"{Label}epoch {v.Epoch + 1}/{_trainer.Options.Epochs}  step {v.StepInEpoch}/{_trainer.StepsPerEpoch}  loss {v.Progress.Loss:F4}  lr {v.Progress.LearningRate:E2}  {v.ImagesPerSecond:F0} img/s  ETA {Duration(v.EtaSeconds)}");

    /// <summary>h:mm:ss, or m:ss under an hour.</summary>
    public static string Duration(double seconds)
    {
        if (!double.IsFinite(seconds) || seconds < 0) return "-";
        var t = TimeSpan.FromSeconds(Math.Round(seconds));
        return t.TotalHours >= 1
            ? string.Create(CultureInfo.InvariantCulture, $"{(int)t.TotalHours}:{t.Minutes:D2}:{t.Seconds:D2}")
            : string.Create(CultureInfo.InvariantCulture, $"{t.Minutes}:{t.Seconds:D2}");
    }

    private string StepJson(StepView v)
    {
        var o = new JsonObject
        {
            ["type"] = "step", ["epoch"] = v.Epoch + 1, ["step_in_epoch"] = v.StepInEpoch, ["steps_per_epoch"] = _trainer.StepsPerEpoch,
            ["step"] = v.Progress.Step, ["total_steps"] = v.Progress.TotalSteps, ["loss"] = v.Progress.Loss, ["lr"] = v.Progress.LearningRate,
            ["images_per_s"] = Math.Round(v.ImagesPerSecond, 2), ["eta_s"] = Math.Round(v.EtaSeconds, 1),
        };
        if (Label.Length > 0) o["label"] = Label.Trim();
        return o.ToJsonString();
    }

    /// <summary>The epoch's metrics.jsonl object with <c>"type": "epoch"</c> first.</summary>
    public static string EpochJson(EpochMetrics m)
    {
        var o = new JsonObject { ["type"] = "epoch" };
        foreach (var (key, value) in JsonNode.Parse(m.Json())!.AsObject()) o[key] = value?.DeepClone();
        return o.ToJsonString();
    }

    /// <summary>Any other object of the JSON stream: <c>"type": type</c> first, then <paramref name="fields"/>.</summary>
    public static string Json(string type, params (string Key, object? Value)[] fields)
    {
        var o = new JsonObject { ["type"] = type };
        foreach (var (key, value) in fields) o[key] = JsonSerializer.SerializeToNode(value);
        return o.ToJsonString();
    }
}
