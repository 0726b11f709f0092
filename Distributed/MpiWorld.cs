using System.Runtime.InteropServices;
using System.Text;

namespace CrateIL.Distributed;

/// <summary>Reduction operators of <see cref="MpiWorld"/>'s collectives.</summary>
public enum ReduceOperation
{
    Sum,
    Min,
    Max,
}

/// <summary>An MPI call returned an error code, or MPI is missing or unusable here.</summary>
public sealed class MpiException(string message) : Exception(message);

/// <summary>
/// MPI_COMM_WORLD of an Open MPI job: rank, size and the collectives data-parallel training needs (all-reduce,
/// non-blocking all-reduce, broadcast, barrier, abort), speaking spans and CrateIL enums, never MPI handles.
/// One instance per process: <see cref="Initialize"/> calls MPI_Init_thread (SERIALIZED), <see cref="Dispose"/>
/// MPI_Finalize. Under <c>mpirun</c> the ranks come from the launcher; started alone it is a singleton job of size 1.
/// <para>
/// Errors: Open MPI's default handler (MPI_ERRORS_ARE_FATAL) stays in force, so a failed collective — e.g. a peer
/// that died — ends the job from inside MPI instead of returning; <c>mpirun</c> then terminates every rank.
/// </para>
/// </summary>
public sealed unsafe class MpiWorld : IDisposable
{
    private static MpiWorld? _current;
    private readonly MpiLibrary.Handles _h;
    private bool _finalized;

    private MpiWorld(MpiLibrary.Handles handles, int rank, int size)
    {
        _h = handles;
        Rank = rank;
        Size = size;
    }

    /// <summary>This process's rank in the job, 0 ≤ Rank &lt; <see cref="Size"/>.</summary>
    public int Rank { get; }

    /// <summary>Processes in the job.</summary>
    public int Size { get; }

    /// <summary>Whether libmpi.so.40 (Open MPI 4.x) can be loaded in this process.</summary>
    public static bool IsAvailable => MpiLibrary.Table is not null;

    /// <summary>Why MPI is not available (null when it is).</summary>
    public static string? UnavailableReason => IsAvailable ? null : MpiLibrary.LoadError;

    /// <summary>
    /// Whether this process was started by Open MPI's launcher (mpirun/mpiexec or a resource manager through PMIx):
    /// the launcher exports OMPI_COMM_WORLD_SIZE to every rank.
    /// </summary>
    public static bool LaunchedByMpirun => Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE") is not null;

    /// <summary>The rank among the processes of this node (OMPI_COMM_WORLD_LOCAL_RANK), 0 when not launched by mpirun.</summary>
    public static int LocalRank =>
        int.TryParse(Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_LOCAL_RANK"), out int r) ? r : 0;

    /// <summary>The world of this process (after <see cref="Initialize"/>, until <see cref="Dispose"/>).</summary>
    public static MpiWorld? Current => _current;

    /// <summary>Initialises MPI once per process and returns MPI_COMM_WORLD.</summary>
    public static MpiWorld Initialize()
    {
        if (_current is not null) return _current;
        var h = MpiLibrary.Table ?? throw new MpiException($"MPI is not available: {MpiLibrary.LoadError}");
        int flag, provided, rank, size;
        Check(MpiLibrary.Initialized(&flag), "MPI_Initialized");
        if (flag != 0) throw new MpiException("MPI was initialised by someone else in this process");
        Check(MpiLibrary.InitThread(null, null, MpiLibrary.ThreadSerialized, &provided), "MPI_Init_thread");
        if (provided < MpiLibrary.ThreadSerialized)
            throw new MpiException($"Open MPI provides thread level {provided}; CrateIL needs MPI_THREAD_SERIALIZED ({MpiLibrary.ThreadSerialized})");
        Check(MpiLibrary.CommRank(h.CommWorld, &rank), "MPI_Comm_rank");
        Check(MpiLibrary.CommSize(h.CommWorld, &size), "MPI_Comm_size");
        _current = new MpiWorld(h, rank, size);
        return _current;
    }

    /// <summary>The node's name as MPI reports it.</summary>
    public string ProcessorName
    {
        get
        {
            byte* name = stackalloc byte[256 + 1];
            int length;
            Check(MpiLibrary.GetProcessorName(name, &length), "MPI_Get_processor_name");
            return Encoding.ASCII.GetString(name, length);
        }
    }

    /// <summary>The MPI library's name and version, e.g. "Open MPI v4.1.4".</summary>
    public static string LibraryVersion
    {
        get
        {
            if (!IsAvailable) return "unavailable";
            byte* text = stackalloc byte[256 + 1];
            int length;
            Check(MpiLibrary.GetLibraryVersion(text, &length), "MPI_Get_library_version");
            return Encoding.ASCII.GetString(text, length).Split('\n')[0].Split(',')[0].Trim();
        }
    }

    /// <summary>Seconds on MPI's wall clock.</summary>
    public static double Time => MpiLibrary.Wtime();

    /// <summary>In-place all-reduce of <paramref name="data"/> (every rank passes the same length).</summary>
    public void Allreduce(Span<float> data, ReduceOperation op = ReduceOperation.Sum)
    {
        fixed (float* p = data) AllreduceInPlace(p, data.Length, _h.Float, op);
    }

    /// <inheritdoc cref="Allreduce(Span{float}, ReduceOperation)"/>
    public void Allreduce(Span<double> data, ReduceOperation op = ReduceOperation.Sum)
    {
        fixed (double* p = data) AllreduceInPlace(p, data.Length, _h.Double, op);
    }

    /// <inheritdoc cref="Allreduce(Span{float}, ReduceOperation)"/>
    public void Allreduce(Span<long> data, ReduceOperation op = ReduceOperation.Sum)
    {
        fixed (long* p = data) AllreduceInPlace(p, data.Length, _h.Int64, op);
    }

    /// <summary>
    /// Starts a non-blocking in-place sum over <paramref name="count"/> floats at <paramref name="data"/>, which
    /// must stay valid and untouched until the request completes (native or pinned memory).
    /// </summary>
    public MpiRequest StartAllreduceSum(float* data, int count)
    {
        ThrowIfFinalized();
        nint request;
        Check(MpiLibrary.Iallreduce((void*)MpiLibrary.InPlace, data, count, _h.Float, _h.OpSum, _h.CommWorld, &request), "MPI_Iallreduce");
        return new MpiRequest(request);
    }

    /// <summary>Blocking in-place sum over native memory (the flat gradient all-reduce).</summary>
    public void AllreduceSum(float* data, int count) => AllreduceInPlace(data, count, _h.Float, ReduceOperation.Sum);

    /// <summary>Whether the request has completed (drives Open MPI's progress engine); true also for a finished one.</summary>
    public bool Test(ref MpiRequest request)
    {
        if (request.IsComplete) return true;
        int flag;
        nint handle = request.Handle;
        Check(MpiLibrary.Test(&handle, &flag, null), "MPI_Test");
        if (flag == 0) return false;
        request = default;
        return true;
    }

    /// <summary>Blocks until the request has completed.</summary>
    public void Wait(ref MpiRequest request)
    {
        if (request.IsComplete) return;
        nint handle = request.Handle;
        Check(MpiLibrary.Wait(&handle, null), "MPI_Wait");
        request = default;
    }

    /// <summary>Broadcasts <paramref name="data"/> from <paramref name="root"/> to every rank.</summary>
    public void Broadcast(Span<byte> data, int root = 0)
    {
        ThrowIfFinalized();
        fixed (byte* p = data) Check(MpiLibrary.Bcast(p, data.Length, _h.Byte, root, _h.CommWorld), "MPI_Bcast");
    }

    /// <inheritdoc cref="Broadcast(Span{byte}, int)"/>
    public void Broadcast(Span<float> data, int root = 0) => Broadcast(MemoryMarshal.AsBytes(data), root);

    public void Barrier()
    {
        ThrowIfFinalized();
        Check(MpiLibrary.Barrier(_h.CommWorld), "MPI_Barrier");
    }

    /// <summary>
    /// Ends every process of the job with <paramref name="exitCode"/> (MPI_Abort on MPI_COMM_WORLD): the way out when
    /// this rank cannot go on and its peers may be blocked in a collective waiting for it. Does not return.
    /// </summary>
    public void Abort(int exitCode)
    {
        Console.Out.Flush();
        Console.Error.Flush();
        MpiLibrary.Abort(_h.CommWorld, exitCode);
        Environment.Exit(exitCode);
    }

    /// <summary>MPI_Finalize (collective: every rank must reach it).</summary>
    public void Dispose()
    {
        if (_finalized) return;
        _finalized = true;
        Check(MpiLibrary.FinalizeMpi(), "MPI_Finalize");
        if (ReferenceEquals(_current, this)) _current = null;
    }

    private void AllreduceInPlace(void* data, int count, nint type, ReduceOperation op)
    {
        ThrowIfFinalized();
        nint handle = op switch
        {
            ReduceOperation.Sum => _h.OpSum,
            ReduceOperation.Min => _h.OpMin,
            ReduceOperation.Max => _h.OpMax,
            _ => throw new ArgumentOutOfRangeException(nameof(op), op, "unknown reduction"),
        };
        Check(MpiLibrary.Allreduce((void*)MpiLibrary.InPlace, data, count, type, handle, _h.CommWorld), "MPI_Allreduce");
    }

    private void ThrowIfFinalized() => ObjectDisposedException.ThrowIf(_finalized, this);

    private static void Check(int code, string call)
    {
        if (code != MpiLibrary.Success) throw new MpiException($"{call} failed with MPI error {code}");
    }
}

/// <summary>A pending non-blocking MPI operation (an Open MPI request handle); default is a completed one.</summary>
public readonly struct MpiRequest
{
    internal MpiRequest(nint handle) => Handle = handle;

    internal nint Handle { get; }

    /// <summary>True once <see cref="MpiWorld.Test"/> or <see cref="MpiWorld.Wait"/> has seen it finish.</summary>
    public bool IsComplete => Handle == 0;
}
