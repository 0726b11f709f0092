using System.Runtime.InteropServices;

namespace CrateIL.Distributed;

/// <summary>
/// The few Open MPI entry points CrateIL uses, bound by P/Invoke to Debian's <c>libmpi.so.40</c> (Open MPI 4.x).
/// <para>
/// Why our own layer and not MPI.NET 1.4.0 from NuGet: the spike (docs/distributed.md) showed that package's
/// netstandard2.0 build binds <c>msmpi.dll</c> with MS-MPI's integer handles (MPI_COMM_WORLD = 0x44000000); Open MPI's
/// handles are pointers to exported objects (<c>&amp;ompi_mpi_comm_world</c>), so it cannot talk to Open MPI at all.
/// Here the handles are the addresses of those exports, read once with <see cref="NativeLibrary.GetExport"/>; this
/// is Open MPI's ABI only (MPICH's integer handles would need a second table).
/// </para>
/// </summary>
internal static unsafe partial class MpiLibrary
{
    public const string Name = "libmpi.so.40";

    /// <summary>MPI_THREAD_SERIALIZED: any thread may call MPI, one at a time (the trainer's thread does).</summary>
    public const int ThreadSerialized = 2;

    /// <summary>MPI_IN_PLACE in Open MPI's mpi.h: <c>((void *) 1)</c>.</summary>
    public static readonly nint InPlace = 1;

    public const int Success = 0;

    private static readonly Lazy<Handles?> Loaded = new(LoadHandles);

    /// <summary>Null where libmpi.so.40 cannot be loaded or is not Open MPI; <see cref="LoadError"/> says why.</summary>
    public static Handles? Table => Loaded.Value;

    public static string? LoadError { get; private set; }

    internal sealed record Handles(nint CommWorld, nint Float, nint Double, nint Int64, nint Byte, nint OpSum, nint OpMin, nint OpMax);

    private static Handles? LoadHandles()
    {
        if (!NativeLibrary.TryLoad(Name, out nint library))
        {
            LoadError = $"{Name} was not found (install Open MPI: apt-get install openmpi-bin libopenmpi-dev)";
            return null;
        }
        nint Export(string symbol) =>
            NativeLibrary.TryGetExport(library, symbol, out nint address) ? address
                : throw new DllNotFoundException($"{Name} has no symbol {symbol}: it is not Open MPI 4.x");
        try
        {
            return new Handles(Export("ompi_mpi_comm_world"), Export("ompi_mpi_float"), Export("ompi_mpi_double"),
                Export("ompi_mpi_int64_t"), Export("ompi_mpi_byte"), Export("ompi_mpi_op_sum"), Export("ompi_mpi_op_min"),
                Export("ompi_mpi_op_max"));
        }
        catch (DllNotFoundException e)
        {
            LoadError = e.Message;
            return null;
        }
    }

    [LibraryImport(Name, EntryPoint = "MPI_Init_thread")]
    public static partial int InitThread(int* argc, byte*** argv, int required, int* provided);

    [LibraryImport(Name, EntryPoint = "MPI_Initialized")]
    public static partial int Initialized(int* flag);

    [LibraryImport(Name, EntryPoint = "MPI_Finalized")]
    public static partial int Finalized(int* flag);

    [LibraryImport(Name, EntryPoint = "MPI_Finalize")]
    public static partial int FinalizeMpi();

    [LibraryImport(Name, EntryPoint = "MPI_Comm_rank")]
    public static partial int CommRank(nint comm, int* rank);

    [LibraryImport(Name, EntryPoint = "MPI_Comm_size")]
    public static partial int CommSize(nint comm, int* size);

    [LibraryImport(Name, EntryPoint = "MPI_Allreduce")]
    public static partial int Allreduce(void* send, void* receive, int count, nint datatype, nint op, nint comm);

    [LibraryImport(Name, EntryPoint = "MPI_Iallreduce")]
    public static partial int Iallreduce(void* send, void* receive, int count, nint datatype, nint op, nint comm, nint* request);

    [LibraryImport(Name, EntryPoint = "MPI_Test")]
    public static partial int Test(nint* request, int* flag, void* status);

    [LibraryImport(Name, EntryPoint = "MPI_Wait")]
    public static partial int Wait(nint* request, void* status);

    [LibraryImport(Name, EntryPoint = "MPI_Bcast")]
    public static partial int Bcast(void* buffer, int count, nint datatype, int root, nint comm);

    [LibraryImport(Name, EntryPoint = "MPI_Barrier")]
    public static partial int Barrier(nint comm);

    [LibraryImport(Name, EntryPoint = "MPI_Abort")]
    public static partial int Abort(nint comm, int errorCode);

    [LibraryImport(Name, EntryPoint = "MPI_Wtime")]
    public static partial double Wtime();

    [LibraryImport(Name, EntryPoint = "MPI_Get_processor_name")]
    public static partial int GetProcessorName(byte* name, int* length);

    [LibraryImport(Name, EntryPoint = "MPI_Get_library_version")]
    public static partial int GetLibraryVersion(byte* version, int* length);
}
