namespace CrateIL.Imaging;

/// <summary>An image file that cannot be read, decoded or written; the message names the file and the problem.</summary>
public class ImageFormatException : Exception
{
    public ImageFormatException(string file, string problem) : base($"{file}: {problem}")
    {
        File = file;
        Problem = problem;
    }

    public ImageFormatException(string file, string problem, Exception inner) : base($"{file}: {problem}", inner)
    {
        File = file;
        Problem = problem;
    }

    /// <summary>The file (or the name given to in-memory bytes) at fault.</summary>
    public string File { get; }

    /// <summary>What is wrong with it, without the file name.</summary>
    public string Problem { get; }
}
