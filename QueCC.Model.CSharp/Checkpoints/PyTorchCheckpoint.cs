using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace QueCC.Model.Checkpoints;

/// <summary>One file of a checkpoint: its tensor entries and a way to read one of them.</summary>
public interface ITensorFile : IDisposable
{
    string Path { get; }
    IReadOnlyDictionary<string, TensorInfo> Tensors { get; }
    Tensor Read(string name);
}

/// <summary>
/// A PyTorch <c>torch.save</c> file in the zip format (PyTorch ≥ 1.6: <c>…/data.pkl</c> + <c>…/data/&lt;storage&gt;</c>), read
/// weights-only: the pickle may name only tensor-rebuilding functions, storage types and OrderedDict, the analogue of
/// <c>torch.load(weights_only=True)</c>. Any other global (a class, <c>os.system</c>, …) is refused with its name before
/// anything else is read; nothing from the file is ever executed or instantiated.
/// </summary>
/// <remarks>
/// Written here rather than through TorchSharp.PyBridge: PyBridge unpickles with Razorvine.Pickle, which turns any unknown
/// global into a dictionary-backed object instead of refusing it, so it cannot give the weights-only guarantee, and it loads
/// every tensor at once where a sharded 7B checkpoint should be read one tensor at a time.
/// </remarks>
public sealed class PyTorchFile : ITensorFile
{
    private sealed record StorageRef(string DType, string Key, long Numel);
    private sealed record TensorRef(StorageRef Storage, long Offset, long[] Size, long[] Stride);
    private sealed record Global(string Module, string Name)
    {
        public override string ToString() => $"{Module}.{Name}";
    }
    private sealed class Mark;

    private static readonly Dictionary<string, (string DType, ScalarType Type, int Size)> StorageTypes = new()
    {
        ["FloatStorage"] = ("F32", ScalarType.Float32, 4), ["HalfStorage"] = ("F16", ScalarType.Float16, 2),
        ["BFloat16Storage"] = ("BF16", ScalarType.BFloat16, 2), ["DoubleStorage"] = ("F64", ScalarType.Float64, 8),
        ["LongStorage"] = ("I64", ScalarType.Int64, 8), ["IntStorage"] = ("I32", ScalarType.Int32, 4),
        ["ShortStorage"] = ("I16", ScalarType.Int16, 2), ["CharStorage"] = ("I8", ScalarType.Int8, 1),
        ["ByteStorage"] = ("U8", ScalarType.Byte, 1), ["BoolStorage"] = ("BOOL", ScalarType.Bool, 1),
    };

    private static readonly HashSet<string> AllowedGlobals = new(StorageTypes.Keys.Select(k => "torch." + k))
    {
        "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
    };

    public string Path { get; }
    public IReadOnlyDictionary<string, TensorInfo> Tensors { get; }
    private readonly Dictionary<string, TensorRef> refs;
    private readonly ZipArchive zip;
    private readonly string prefix;

    private PyTorchFile(string path, ZipArchive zip, string prefix, Dictionary<string, TensorRef> refs)
    {
        Path = path; this.zip = zip; this.prefix = prefix; this.refs = refs;
        Tensors = refs.ToDictionary(kv => kv.Key, kv =>
        {
            long bytes = kv.Value.Size.Aggregate(1L, (a, b) => a * b) * StorageTypes.Values.First(s => s.DType == kv.Value.Storage.DType).Size;
            return new TensorInfo(kv.Key, kv.Value.Storage.DType, kv.Value.Size, 0, bytes);
        });
    }

    private static CheckpointFormatException Bad(string path, string problem) => new($"{path}: {problem}");

    public static PyTorchFile Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: PyTorch checkpoint not found", path);
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        try
        {
            Span<byte> head = stackalloc byte[4];
            int n = stream.Read(head);
            if (n < 4 || head[0] != 'P' || head[1] != 'K')
            {
                if (n >= 1 && head[0] == 0x80)
                    throw Bad(path, "this is the legacy (pre-1.6) torch.save format, which is not supported; re-save it with torch.save in a current PyTorch (zip format) or convert it to safetensors");
                throw Bad(path, "not a PyTorch checkpoint (expected the torch.save zip format)");
            }
            stream.Position = 0;
            ZipArchive zip;
            try { zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: false); }
            catch (InvalidDataException e) { throw Bad(path, $"not a readable torch.save zip archive ({e.Message})"); }
            try
            {
                var pkl = zip.Entries.FirstOrDefault(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) && e.FullName.Count(c => c == '/') == 1)
                    ?? throw Bad(path, "the zip archive has no <name>/data.pkl (not written by torch.save)");
                var prefix = pkl.FullName[..^"data.pkl".Length];
                if (zip.GetEntry(prefix + "byteorder") is { } bo)
                {
                    using var r = new StreamReader(bo.Open());
                    var order = r.ReadToEnd().Trim();
                    if (order != "little") throw Bad(path, $"byteorder '{order}' is not supported; expected little");
                }
                byte[] data;
                using (var s = pkl.Open())
                using (var ms = new MemoryStream())
                {
                    s.CopyTo(ms);
                    data = ms.ToArray();
                }
                var root = new Unpickler(data, path).Load();
                var refs = new Dictionary<string, TensorRef>();
                if (root is not Dictionary<object, object?> dict) throw Bad(path, $"the pickle holds a {Describe(root)}, expected a state dict (tensor name → tensor)");
                foreach (var (k, v) in dict)
                {
                    if (k is not string key) throw Bad(path, $"state dict key {Describe(k)} is not a string");
                    if (v is not TensorRef t) throw Bad(path, $"state dict entry '{key}' is a {Describe(v)}, expected a tensor (a flat state dict)");
                    var entry = prefix + "data/" + t.Storage.Key;
                    if (zip.GetEntry(entry) is null) throw Bad(path, $"tensor '{key}' refers to storage '{t.Storage.Key}', which is not in the archive");
                    refs[key] = t;
                }
                return new PyTorchFile(path, zip, prefix, refs);
            }
            catch
            {
                zip.Dispose();
                throw;
            }
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    private static string Describe(object? o) => o switch
    {
        null => "None", string => "string", long => "int", double => "float", bool => "bool",
        object?[] => "tuple", List<object?> => "list", Dictionary<object, object?> => "dict", TensorRef => "tensor",
        _ => o.GetType().Name,
    };

    /// <summary>Reads one tensor (CPU, contiguous) from its storage entry.</summary>
    public Tensor Read(string name)
    {
        if (!refs.TryGetValue(name, out var t)) throw new KeyNotFoundException($"{Path}: no tensor '{name}' (the file has {refs.Count} tensors)");
        var st = StorageTypes.Values.First(s => s.DType == t.Storage.DType);
        var entry = zip.GetEntry(prefix + "data/" + t.Storage.Key)!;
        long expected = t.Storage.Numel * st.Size;
        if (entry.Length != expected) throw Bad(Path, $"storage '{t.Storage.Key}' of tensor '{name}' holds {entry.Length} bytes; {t.Storage.Numel} {t.Storage.DType} elements need {expected}");
        long maxIndex = t.Offset + t.Size.Select((s, i) => s == 0 ? 0 : (s - 1) * t.Stride[i]).Sum();
        if (t.Size.All(s => s > 0) && (t.Offset < 0 || maxIndex >= t.Storage.Numel))
            throw Bad(Path, $"tensor '{name}' (offset {t.Offset}, size [{string.Join(", ", t.Size)}], stride [{string.Join(", ", t.Stride)}]) reaches past its storage of {t.Storage.Numel} elements");
        using var scope = torch.NewDisposeScope();
        var storage = torch.empty(t.Storage.Numel, dtype: st.Type, device: CPU);
        if (expected > 0)
        {
            lock (zip) // entry streams share the archive's file stream
            {
                using var s = entry.Open();
                storage.ReadBytesFromStream(s, (int)Math.Min(expected, 1 << 20));
            }
        }
        return storage.as_strided(t.Size, t.Stride, t.Offset).contiguous().clone().MoveToOuterDisposeScope();
    }

    public void Dispose() => zip.Dispose();

    /// <summary>The subset of pickle (protocols 2–4) torch.save emits for state dicts, with globals restricted to <see cref="AllowedGlobals"/>.</summary>
    private sealed class Unpickler(byte[] d, string path)
    {
        private int pos;
        private readonly List<object?> stack = [];
        private readonly Dictionary<long, object?> memo = [];

        private CheckpointFormatException Bad(string problem) => new($"{path}: data.pkl at byte {pos}: {problem}");
        private byte U8() => pos < d.Length ? d[pos++] : throw Bad("unexpected end of the pickle");
        private ReadOnlySpan<byte> Take(long n)
        {
            if (n < 0 || pos + n > d.Length) throw Bad("unexpected end of the pickle");
            var s = d.AsSpan(pos, (int)n);
            pos += (int)n;
            return s;
        }
        private object? Pop()
        {
            if (stack.Count == 0) throw Bad("pickle stack underflow");
            var o = stack[^1];
            stack.RemoveAt(stack.Count - 1);
            return o;
        }
        private List<object?> PopMark()
        {
            int i = stack.FindLastIndex(o => o is Mark);
            if (i < 0) throw Bad("MARK expected");
            var items = stack.GetRange(i + 1, stack.Count - i - 1);
            stack.RemoveRange(i, stack.Count - i);
            return items;
        }
        private string Line()
        {
            int start = pos;
            while (pos < d.Length && d[pos] != '\n') pos++;
            if (pos >= d.Length) throw Bad("unexpected end of the pickle");
            return Encoding.ASCII.GetString(d, start, pos++ - start);
        }

        private Global MakeGlobal(string module, string name)
        {
            var g = new Global(module, name);
            if (!AllowedGlobals.Contains(g.ToString()))
                throw new CheckpointFormatException($"{path}: the pickle names the global '{g}', which a weights-only load does not allow (only tensors, storages and OrderedDict); the file was not executed. Convert it to safetensors if you trust it");
            return g;
        }

        public object? Load()
        {
            while (true)
            {
                byte op = U8();
                switch (op)
                {
                    case 0x80: U8(); break;                                                       // PROTO
                    case 0x95: Take(8); break;                                                    // FRAME
                    case (byte)'}': stack.Add(new Dictionary<object, object?>()); break;          // EMPTY_DICT
                    case (byte)']': stack.Add(new List<object?>()); break;                        // EMPTY_LIST
                    case (byte)')': stack.Add(Array.Empty<object?>()); break;                     // EMPTY_TUPLE
                    case (byte)'(': stack.Add(new Mark()); break;                                 // MARK
                    case (byte)'t': stack.Add(PopMark().ToArray()); break;                        // TUPLE
                    case 0x85: stack.Add(new[] { Pop() }); break;                                 // TUPLE1
                    case 0x86: { var b = Pop(); var a = Pop(); stack.Add(new[] { a, b }); break; } // TUPLE2
                    case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); stack.Add(new[] { a, b, c }); break; }
                    case (byte)'N': stack.Add(null); break;
                    case 0x88: stack.Add(true); break;
                    case 0x89: stack.Add(false); break;
                    case (byte)'K': stack.Add((long)U8()); break;                                 // BININT1
                    case (byte)'M': stack.Add((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2))); break;
                    case (byte)'J': stack.Add((long)BinaryPrimitives.ReadInt32LittleEndian(Take(4))); break;
                    case 0x8a:                                                                    // LONG1
                    {
                        int n = U8();
                        var bytes = Take(n);
                        if (n > 8) throw Bad($"integer of {n} bytes is out of range");
                        long v = 0;
                        for (int i = n - 1; i >= 0; i--) v = (v << 8) | bytes[i];
                        if (n > 0 && n < 8 && (bytes[n - 1] & 0x80) != 0) v -= 1L << (8 * n);
                        stack.Add(v);
                        break;
                    }
                    case (byte)'G': stack.Add(BinaryPrimitives.ReadDoubleBigEndian(Take(8))); break; // BINFLOAT
                    case (byte)'X': { long n = BinaryPrimitives.ReadUInt32LittleEndian(Take(4)); stack.Add(Encoding.UTF8.GetString(Take(n))); break; }
                    case 0x8c: { int n = U8(); stack.Add(Encoding.UTF8.GetString(Take(n))); break; } // SHORT_BINUNICODE
                    case (byte)'U': { int n = U8(); stack.Add(Encoding.Latin1.GetString(Take(n))); break; }
                    case (byte)'T': { long n = BinaryPrimitives.ReadInt32LittleEndian(Take(4)); stack.Add(Encoding.Latin1.GetString(Take(n))); break; }
                    case (byte)'q': memo[U8()] = stack.Count > 0 ? stack[^1] : throw Bad("BINPUT on an empty stack"); break;
                    case (byte)'r': memo[BinaryPrimitives.ReadUInt32LittleEndian(Take(4))] = stack.Count > 0 ? stack[^1] : throw Bad("LONG_BINPUT on an empty stack"); break;
                    case 0x94: memo[memo.Count] = stack.Count > 0 ? stack[^1] : throw Bad("MEMOIZE on an empty stack"); break;
                    case (byte)'h': stack.Add(memo.TryGetValue(U8(), out var m1) ? m1 : throw Bad("BINGET of an unknown memo entry")); break;
                    case (byte)'j': stack.Add(memo.TryGetValue(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)), out var m2) ? m2 : throw Bad("LONG_BINGET of an unknown memo entry")); break;
                    case (byte)'c': { var module = Line(); var name = Line(); stack.Add(MakeGlobal(module, name)); break; } // GLOBAL
                    case 0x93: { var name = Pop() as string; var module = Pop() as string; stack.Add(MakeGlobal(module ?? "?", name ?? "?")); break; }
                    case (byte)'Q': stack.Add(PersistentLoad(Pop())); break;                      // BINPERSID
                    case (byte)'R': { var args = Pop(); var f = Pop(); stack.Add(Reduce(f, args)); break; }
                    case (byte)'b':                                                               // BUILD
                    {
                        Pop();
                        if (stack.Count == 0 || stack[^1] is not Dictionary<object, object?>)
                            throw Bad($"BUILD on a {(stack.Count == 0 ? "empty stack" : Describe(stack[^1]))}; only a state dict's own attributes (_metadata) may be set");
                        break;
                    }
                    case (byte)'s': { var v = Pop(); var k = Pop(); Dict()[k ?? "None"] = v; break; }
                    case (byte)'u':
                    {
                        var items = PopMark();
                        var dict = Dict();
                        for (int i = 0; i + 1 < items.Count; i += 2) dict[items[i] ?? "None"] = items[i + 1];
                        break;
                    }
                    case (byte)'a': { var v = Pop(); List().Add(v); break; }
                    case (byte)'e': { var items = PopMark(); List().AddRange(items); break; }
                    case (byte)'.': return stack.Count == 1 ? stack[0] : throw Bad($"STOP with {stack.Count} objects on the stack");
                    default: throw Bad($"pickle opcode 0x{op:x2} is not one torch.save writes for a state dict; refusing the file");
                }
            }
        }

        private Dictionary<object, object?> Dict() =>
            stack.Count > 0 && stack[^1] is Dictionary<object, object?> dict ? dict : throw Bad("SETITEM(S) on something that is not a dict");
        private List<object?> List() =>
            stack.Count > 0 && stack[^1] is List<object?> list ? list : throw Bad("APPEND(S) on something that is not a list");

        private object PersistentLoad(object? pid)
        {
            // ('storage', <storage type>, key, location, numel)
            if (pid is not object?[] { Length: 5 } t || t[0] as string != "storage" || t[1] is not Global g || t[2] is not string key || t[4] is not long numel)
                throw Bad("persistent id is not ('storage', type, key, location, numel)");
            if (!StorageTypes.TryGetValue(g.Name, out var st)) throw Bad($"storage type {g} is not supported");
            return new StorageRef(st.DType, key, numel);
        }

        private object? Reduce(object? f, object? args)
        {
            if (f is not Global g) throw Bad($"REDUCE of a {Describe(f)}, expected an allowed global");
            var a = args as object?[] ?? throw Bad($"REDUCE of {g} with {Describe(args)} arguments, expected a tuple");
            switch (g.ToString())
            {
                case "collections.OrderedDict":
                    return new Dictionary<object, object?>();
                case "torch._utils._rebuild_tensor_v2":
                {
                    if (a.Length < 4 || a[0] is not StorageRef s || a[1] is not long offset || a[2] is not object?[] size || a[3] is not object?[] stride)
                        throw Bad("_rebuild_tensor_v2 arguments are not (storage, offset, size, stride, …)");
                    long[] Longs(object?[] xs) => xs.Select(x => x is long l ? l : throw Bad("tensor size/stride entry is not an integer")).ToArray();
                    var sz = Longs(size); var str = Longs(stride);
                    if (sz.Length != str.Length) throw Bad("tensor size and stride differ in length");
                    return new TensorRef(s, offset, sz, str);
                }
                case "torch._utils._rebuild_parameter":
                    return a.Length >= 1 && a[0] is TensorRef t ? t : throw Bad("_rebuild_parameter arguments are not (tensor, requires_grad, hooks)");
                default:
                    throw Bad($"{g} cannot be called");
            }
        }
    }
}
