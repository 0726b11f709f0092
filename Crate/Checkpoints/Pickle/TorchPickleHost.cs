using System.Buffers.Binary;

namespace CrateIL.Crate.Checkpoints.Pickle;

/// <summary>A tensor rebuilt from a PyTorch pickle: contiguous float32 values plus the file's dtype.</summary>
public sealed class TorchTensor
{
    internal TorchTensor(int[] shape, float[] data, TensorDType dtype, bool requiresGrad, bool isParameter)
    {
        Shape = shape;
        Data = data;
        DType = dtype;
        RequiresGrad = requiresGrad;
        IsParameter = isParameter;
    }

    public int[] Shape { get; }

    /// <summary>Row-major values (views and strided tensors are materialised).</summary>
    public float[] Data { get; }

    public TensorDType DType { get; }
    public bool RequiresGrad { get; }

    /// <summary>Whether it was saved as an <c>nn.Parameter</c>.</summary>
    public bool IsParameter { get; }

    public override string ToString() => $"tensor {ShapeText.Format(Shape)} {DType}";
}

/// <summary>A storage named by a persistent id; its bytes come from the archive's <c>data/&lt;key&gt;</c> entry.</summary>
internal sealed class TorchStorage(string key, TensorDType dtype, long numel, byte[] bytes)
{
    public string Key { get; } = key;
    public TensorDType DType { get; } = dtype;
    public long Numel { get; } = numel;
    public byte[] Bytes { get; } = bytes;
}

/// <summary>A numpy dtype object (only as the first argument of a numpy scalar).</summary>
internal sealed class NumpyDType(string code)
{
    public string Code { get; } = code;
    public bool BigEndian { get; set; }
}

/// <summary>
/// The PyTorch allow-list on top of <see cref="SafePickleHost"/>: <c>torch._utils._rebuild_tensor_v2</c>,
/// <c>_rebuild_tensor</c>, <c>_rebuild_parameter</c>, <c>_rebuild_parameter_with_state</c>, the typed storage classes
/// (<c>torch.FloatStorage</c>, …) as persistent-id tags, <c>torch.Size</c>, and numpy scalars
/// (<c>numpy.core.multiarray.scalar</c> with <c>numpy.dtype</c>, which some training scripts save as best accuracy).
/// </summary>
internal sealed class TorchPickleHost(Func<string, long, TensorDType, byte[]> readStorage, bool bigEndian) : SafePickleHost
{
    private const int RebuildTensorV2 = 100, RebuildTensor = 101, RebuildParameter = 102, RebuildParameterWithState = 103,
        StorageType = 104, TorchSize = 105, NumpyScalar = 106, NumpyDTypeGlobal = 107;

    /// <summary>Largest tensor materialised from a smaller storage (a broadcast view saved with zero strides).</summary>
    public const long MaxExpandedElements = 1L << 26;

    private readonly Dictionary<string, TorchStorage> _storages = new(StringComparer.Ordinal);

    private static readonly Dictionary<string, TensorDType> StorageTypes = new(StringComparer.Ordinal)
    {
        ["FloatStorage"] = TensorDType.Float32,
        ["DoubleStorage"] = TensorDType.Float64,
        ["HalfStorage"] = TensorDType.Float16,
        ["BFloat16Storage"] = TensorDType.BFloat16,
        ["LongStorage"] = TensorDType.Int64,
        ["IntStorage"] = TensorDType.Int32,
        ["ShortStorage"] = TensorDType.Int16,
        ["CharStorage"] = TensorDType.Int8,
        ["ByteStorage"] = TensorDType.UInt8,
        ["BoolStorage"] = TensorDType.Bool,
    };

    public override object? ResolveGlobal(string module, string name)
    {
        int kind = (module, name) switch
        {
            ("torch._utils", "_rebuild_tensor_v2") => RebuildTensorV2,
            ("torch._utils", "_rebuild_tensor") => RebuildTensor,
            ("torch._utils", "_rebuild_parameter") => RebuildParameter,
            ("torch._utils", "_rebuild_parameter_with_state") => RebuildParameterWithState,
            ("torch", "Size") => TorchSize,
            ("torch", _) when StorageTypes.ContainsKey(name) => StorageType,
            ("numpy.core.multiarray" or "numpy._core.multiarray", "scalar") => NumpyScalar,
            ("numpy", "dtype") => NumpyDTypeGlobal,
            _ => 0,
        };
        return kind == 0 ? base.ResolveGlobal(module, name) : new PickleGlobal(module, name, kind);
    }

    public override object? Call(object callable, object?[] args)
    {
        if (callable is not PickleGlobal global) return base.Call(callable, args);
        switch (global.Kind)
        {
            case RebuildTensorV2:
                // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
                if (args.Length is < 6 or > 7) throw new InvalidDataException($"_rebuild_tensor_v2 takes 6 or 7 arguments, got {args.Length}");
                CheckHooks(args[5]);
                return Rebuild(args[0], args[1], args[2], args[3], args[4] is true, isParameter: false);
            case RebuildTensor:
                if (args.Length != 4) throw new InvalidDataException($"_rebuild_tensor takes 4 arguments, got {args.Length}");
                return Rebuild(args[0], args[1], args[2], args[3], requiresGrad: false, isParameter: false);
            case RebuildParameter:
            case RebuildParameterWithState:
                // (data, requires_grad, backward_hooks[, state]): the extra state holds Python attributes we do not need.
                int expected = global.Kind == RebuildParameter ? 3 : 4;
                if (args.Length != expected) throw new InvalidDataException($"{global.Name} takes {expected} arguments, got {args.Length}");
                if (args[0] is not TorchTensor data) throw new InvalidDataException($"{global.Name} data must be a tensor, got {PickleText.TypeName(args[0])}");
                CheckHooks(args[2]);
                return new TorchTensor(data.Shape, data.Data, data.DType, args[1] is true, isParameter: true);
            case TorchSize:
                if (args is not [object?[] dims]) throw new InvalidDataException("torch.Size takes one tuple");
                return dims;
            case NumpyDTypeGlobal:
                if (args.Length < 1 || args[0] is not string code) throw new InvalidDataException("numpy.dtype needs a type code string");
                return new NumpyDType(code);
            case NumpyScalar:
                if (args is not [NumpyDType dtype, byte[] bytes]) throw new InvalidDataException("numpy scalar needs (dtype, bytes)");
                return NumpyScalarValue(dtype, bytes);
            case StorageType:
                throw new InvalidDataException($"{global} may only appear inside a storage persistent id");
            default:
                return base.Call(callable, args);
        }
    }

    public override void Build(object? target, object? state)
    {
        // numpy.dtype's __setstate__: (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata]).
        if (target is NumpyDType dtype)
        {
            if (state is not object?[] { Length: >= 2 } tuple || tuple[1] is not string order)
                throw new InvalidDataException("numpy.dtype state must be a tuple with a byte order");
            dtype.BigEndian = order == ">";
            return;
        }
        base.Build(target, state);
    }

    public override object? PersistentLoad(object? pid)
    {
        // ('storage', storage_type, key, location, numel)
        if (pid is not object?[] { Length: 5 } tuple || tuple[0] is not "storage")
            throw new InvalidDataException($"persistent id {PickleText.Describe(pid)} is not ('storage', type, key, location, numel)");
        if (tuple[1] is not PickleGlobal { Kind: StorageType } storageType)
            throw new InvalidDataException($"storage type {PickleText.Describe(tuple[1])} is not a torch storage class");
        if (tuple[2] is not string key) throw new InvalidDataException("storage key must be a string");
        if (tuple[4] is not long numel || numel < 0) throw new InvalidDataException($"storage '{key}' numel {PickleText.Describe(tuple[4])} is not a non-negative int");
        var dtype = StorageTypes[storageType.Name];
        if (_storages.TryGetValue(key, out var cached))
        {
            if (cached.DType != dtype || cached.Numel != numel)
                throw new InvalidDataException($"storage '{key}' is referenced as both {cached.DType}[{cached.Numel}] and {dtype}[{numel}]");
            return cached;
        }
        var storage = new TorchStorage(key, dtype, numel, readStorage(key, numel, dtype));
        _storages[key] = storage;
        return storage;
    }

    private static void CheckHooks(object? hooks)
    {
        if (hooks is not (null or PickleDict { Count: 0 }))
            throw new InvalidDataException("tensor has backward hooks; only an empty OrderedDict is accepted");
    }

    private TorchTensor Rebuild(object? storageObject, object? offsetObject, object? sizeObject, object? strideObject, bool requiresGrad, bool isParameter)
    {
        if (storageObject is not TorchStorage storage) throw new InvalidDataException($"tensor storage must be a persistent storage, got {PickleText.TypeName(storageObject)}");
        if (offsetObject is not long offset || offset < 0) throw new InvalidDataException($"storage offset {PickleText.Describe(offsetObject)} is not a non-negative int");
        int[] shape = IntTuple(sizeObject, "size");
        int[] stride = IntTuple(strideObject, "stride");
        if (shape.Length != stride.Length)
            throw new InvalidDataException($"size {ShapeText.Format(shape)} and stride {ShapeText.Format(stride)} differ in rank");
        long numel = TensorDTypes.Numel(shape);
        if (numel < 0 || numel > Array.MaxLength) throw new InvalidDataException($"size {ShapeText.Format(shape)} is too large");
        if (numel > 0)
        {
            // The last element touched must lie inside the storage.
            long last = offset;
            for (int i = 0; i < shape.Length; i++) last += (long)(shape[i] - 1) * stride[i];
            if (last >= storage.Numel)
                throw new InvalidDataException(
                    $"tensor size {ShapeText.Format(shape)} stride {ShapeText.Format(stride)} offset {offset} reaches element {last} of storage '{storage.Key}' which holds {storage.Numel}");
            // Zero strides (expand) let a tiny storage describe a huge tensor; cap that before allocating.
            if (numel > storage.Numel && numel > MaxExpandedElements)
                throw new InvalidDataException(
                    $"tensor size {ShapeText.Format(shape)} expands storage '{storage.Key}' ({storage.Numel} elements) to {numel}, over the {MaxExpandedElements}-element limit");
        }
        var data = new float[numel];
        if (numel > 0) Gather(storage, offset, shape, stride, data);
        return new TorchTensor(shape, data, storage.DType, requiresGrad, isParameter);
    }

    /// <summary>Copies a (possibly strided) view out of a storage into row-major order.</summary>
    private void Gather(TorchStorage storage, long offset, int[] shape, int[] stride, float[] data)
    {
        if (IsContiguous(shape, stride))
        {
            TensorDTypes.ToFloat(storage.Bytes, storage.DType, offset, data, bigEndian);
            return;
        }
        int rank = shape.Length;
        var index = new int[rank];
        long source = offset;
        for (long n = 0; n < data.Length; n++)
        {
            TensorDTypes.ToFloat(storage.Bytes, storage.DType, source, data.AsSpan((int)n, 1), bigEndian);
            for (int axis = rank - 1; axis >= 0; axis--)
            {
                source += stride[axis];
                if (++index[axis] < shape[axis]) break;
                source -= (long)stride[axis] * shape[axis];
                index[axis] = 0;
            }
        }
    }

    private static bool IsContiguous(int[] shape, int[] stride)
    {
        long expected = 1;
        for (int axis = shape.Length - 1; axis >= 0; axis--)
        {
            if (shape[axis] != 1 && stride[axis] != expected) return false;
            expected *= shape[axis];
        }
        return true;
    }

    private static int[] IntTuple(object? value, string what)
    {
        if (value is not object?[] tuple) throw new InvalidDataException($"tensor {what} must be a tuple, got {PickleText.TypeName(value)}");
        var result = new int[tuple.Length];
        for (int i = 0; i < tuple.Length; i++)
        {
            if (tuple[i] is not long v || v < 0 || v > int.MaxValue)
                throw new InvalidDataException($"tensor {what} entry {i} ({PickleText.Describe(tuple[i])}) is not a non-negative 32-bit int");
            result[i] = (int)v;
        }
        return result;
    }

    private static object NumpyScalarValue(NumpyDType dtype, byte[] bytes)
    {
        bool big = dtype.BigEndian;
        ReadOnlySpan<byte> b = bytes;
        object? value = (dtype.Code, bytes.Length) switch
        {
            ("f8", 8) => big ? BinaryPrimitives.ReadDoubleBigEndian(b) : BinaryPrimitives.ReadDoubleLittleEndian(b),
            ("f4", 4) => (double)(big ? BinaryPrimitives.ReadSingleBigEndian(b) : BinaryPrimitives.ReadSingleLittleEndian(b)),
            ("f2", 2) => (double)(big ? BinaryPrimitives.ReadHalfBigEndian(b) : BinaryPrimitives.ReadHalfLittleEndian(b)),
            ("i8", 8) => big ? BinaryPrimitives.ReadInt64BigEndian(b) : BinaryPrimitives.ReadInt64LittleEndian(b),
            ("i4", 4) => (long)(big ? BinaryPrimitives.ReadInt32BigEndian(b) : BinaryPrimitives.ReadInt32LittleEndian(b)),
            ("b1", 1) => b[0] != 0,
            _ => null,
        };
        return value ?? throw new InvalidDataException($"numpy scalar of dtype '{dtype.Code}' with {bytes.Length} bytes is not supported");
    }
}
