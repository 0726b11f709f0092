using CrateIL.Compute.Devices;
using CrateIL.Crate.Models;
using CrateIL.Crate.Training;

namespace CrateIL.Cli.Images;

/// <summary>
/// A model loaded from a checkpoint together with what its metadata says about inputs (<see cref="ModelInput"/>: the
/// evaluation resize, normalisation and class names). Plain model files and <c>crate train</c> epoch checkpoints both
/// load (optimizer tensors are skipped). Disposing it disposes the model, not the device.
/// </summary>
internal sealed class CheckpointModel : IDisposable
{
    private CheckpointModel(string path, CrateModel model, ModelInput input)
    {
        Path = path;
        Model = model;
        Input = input;
    }

    /// <summary>The checkpoint file (full path).</summary>
    public string Path { get; }

    public CrateModel Model { get; }

    /// <summary>How photos are prepared for the model and what its classes are called (defaults when the checkpoint says nothing).</summary>
    public ModelInput Input { get; }

    public CrateConfig Config => Model.Config;

    /// <summary>
    /// Loads <paramref name="checkpointPath"/> onto <paramref name="device"/>. A missing or malformed file raises the
    /// checkpoint's own typed errors (one line through <c>CliErrors.Run</c>).
    /// </summary>
    public static CheckpointModel Open(string checkpointPath, Device device)
    {
        ArgumentNullException.ThrowIfNull(checkpointPath);
        ArgumentNullException.ThrowIfNull(device);
        string path = System.IO.Path.GetFullPath(checkpointPath);
        if (!File.Exists(path)) throw new FileNotFoundException($"--checkpoint '{checkpointPath}': no such file", checkpointPath);
        var model = TrainingCheckpoint.LoadModel(path, device);
        try
        {
            var input = ModelInput.Read(path, model.Config);
            model.Training = false;
            // Inference only: layers derive what depends on the weights (packed GEMM operands, ISTA's folded dictionary) once.
            model.Parameters.Freeze();
            return new CheckpointModel(path, model, input);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    public void Dispose() => Model.Dispose();
}
