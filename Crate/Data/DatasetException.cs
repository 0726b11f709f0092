namespace CrateIL.Crate.Data;

/// <summary>
/// A dataset that cannot be read: a missing or empty folder, an undecodable image, a malformed idx or CIFAR file.
/// The message names the file (or folder) and the problem.
/// </summary>
public class DatasetException : Exception
{
    public DatasetException(string file, string problem) : base($"{file}: {problem}")
    {
        File = file;
        Problem = problem;
    }

    public DatasetException(string file, string problem, Exception inner) : base($"{file}: {problem}", inner)
    {
        File = file;
        Problem = problem;
    }

    /// <summary>The file or folder at fault.</summary>
    public string File { get; }

    /// <summary>What is wrong with it, without the file name.</summary>
    public string Problem { get; }
}
