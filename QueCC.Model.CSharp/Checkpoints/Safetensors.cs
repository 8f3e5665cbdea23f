using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using TorchSharp;
using QueCC.Model.Data;
using static TorchSharp.torch;

namespace QueCC.Model.Checkpoints;

/// <summary>A malformed or inconsistent checkpoint file; the message starts with the file path and names the problem.</summary>
public class CheckpointFormatException(string message) : UserInputException(message);

/// <summary>Where one tensor lives: dtype name as in the file, shape, and byte range relative to the data section.</summary>
public sealed record TensorInfo(string Name, string DType, long[] Shape, long Begin, long End)
{
    public long ByteCount => End - Begin;
}

/// <summary>
/// The safetensors format: 8-byte little-endian header length n, n bytes of UTF-8 JSON
/// (name → {dtype, shape, data_offsets: [begin, end)} plus optional "__metadata__": {string: string}),
/// then the raw little-endian tensor bytes. Offsets are relative to the byte after the header.
/// </summary>
public static class Safetensors
{
    /// <summary>Same cap as the reference implementation: a header beyond this is a corrupt length field, not a real header.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private static readonly (string Name, ScalarType Type, int Size)[] DTypes =
    [
        ("F32", ScalarType.Float32, 4), ("F16", ScalarType.Float16, 2), ("BF16", ScalarType.BFloat16, 2),
        ("F64", ScalarType.Float64, 8), ("I64", ScalarType.Int64, 8), ("I32", ScalarType.Int32, 4),
        ("U8", ScalarType.Byte, 1), ("BOOL", ScalarType.Bool, 1),
    ];

    public static IReadOnlyList<string> SupportedDTypes { get; } = DTypes.Select(d => d.Name).ToArray();

    public static bool TryScalarType(string dtype, out ScalarType type, out int elementSize)
    {
        foreach (var d in DTypes)
            if (d.Name == dtype) { type = d.Type; elementSize = d.Size; return true; }
        type = default; elementSize = 0;
        return false;
    }

    public static string DTypeName(ScalarType type)
    {
        foreach (var d in DTypes)
            if (d.Type == type) return d.Name;
        throw new ArgumentException($"tensor dtype {type} cannot be written to safetensors; supported: {string.Join(", ", SupportedDTypes)}");
    }

    /// <summary>Opens a file and validates its header; tensors are read one at a time with <see cref="SafetensorsFile.Read"/>.</summary>
    public static SafetensorsFile Open(string path) => new(path);

    /// <summary>Reads every tensor of one file (for small files; large checkpoints should read by name).</summary>
    public static Dictionary<string, Tensor> Load(string path)
    {
        using var file = Open(path);
        return file.Tensors.Keys.ToDictionary(k => k, file.Read);
    }

    /// <summary>
    /// Writes tensors (any device; copied to CPU contiguous) to <paramref name="path"/> atomically:
    /// a temporary file in the same folder is written, flushed, then renamed over the target,
    /// so a failure midway leaves any existing file untouched and no partial file behind.
    /// </summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = tensors.ToList();
        var seen = new HashSet<string>();
        foreach (var (name, _) in list)
        {
            if (name == "__metadata__") throw new ArgumentException($"{path}: tensor name '__metadata__' is reserved by the safetensors format");
            if (!seen.Add(name)) throw new ArgumentException($"{path}: tensor name '{name}' given twice");
        }

        using var header = new MemoryStream();
        using (var json = new Utf8JsonWriter(header))
        {
            json.WriteStartObject();
            if (metadata is not null)
            {
                json.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata) json.WriteString(k, v);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, t) in list)
            {
                var dtype = DTypeName(t.dtype);
                long bytes = t.numel() * t.ElementSize;
                json.WriteStartObject(name);
                json.WriteString("dtype", dtype);
                json.WriteStartArray("shape");
                foreach (var d in t.shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + bytes);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += bytes;
            }
            json.WriteEndObject();
        }
        // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
        while (header.Length % 8 != 0) header.WriteByte((byte)' ');

        AtomicFile.Write(path, fs =>
        {
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
            fs.Write(len);
            header.Position = 0;
            header.CopyTo(fs);
            foreach (var (_, t) in list)
            {
                if (t.numel() == 0) continue;
                // Each intermediate is a `using` local, never a temporary of a chain like t.detach().cpu().contiguous():
                // a temporary is unreachable once its native handle is read, so a GC started meanwhile by another thread
                // lets the finalizer free its at::Tensor while libtorch is still reading it. Checkpoints are written outside
                // any dispose scope, so nothing else kept them alive: `train` died with SIGSEGV in THSTensor_contiguous.
                using var detached = t.detach();
                using var cpu = detached.cpu();
                using var c = cpu.contiguous();
                // Written in ≤ 1 MiB slices straight from the tensor's memory, not with WriteBytesToStream, which allocates a
                // fresh 1 MiB (large-object) buffer per tensor: ~40 gen-2 GCs per checkpoint, after each of which the
                // finalizer thread allocates (ArrayPool trimming), starting GCs at random points of the training thread —
                // what lets a temporary, e.g. TorchSharp's own implicit Scalar in Tensor + Tensor (dotnet/TorchSharp#1434),
                // be freed under a native call.
                using var flat = c.reshape(-1);
                long n = flat.numel(), slice = Math.Max(1, (1 << 20) / c.ElementSize);
                for (long start = 0; start < n; start += slice)
                {
                    using var part = flat.narrow(0, start, Math.Min(slice, n - start));
                    fs.Write(part.bytes);
                }
            }
        });
    }
}

/// <summary>
/// One open safetensors file with a validated header. Reading a tensor seeks to its bytes and reads just
/// those into a fresh tensor, so a multi-GB checkpoint never sits in memory twice.
/// </summary>
public sealed class SafetensorsFile : ITensorFile
{
    public string Path { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }
    /// <summary>Tensor entries in header order.</summary>
    public IReadOnlyDictionary<string, TensorInfo> Tensors { get; }
    private readonly long dataStart;
    private readonly FileStream stream;

    internal SafetensorsFile(string path)
    {
        Path = path;
        if (!File.Exists(path)) throw new CheckpointFormatException($"{path}: safetensors file not found");
        stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        try
        {
            (Metadata, Tensors, dataStart) = ReadHeader();
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    private CheckpointFormatException Bad(string problem) => new($"{Path}: {problem}");

    private (Dictionary<string, string>, Dictionary<string, TensorInfo>, long) ReadHeader()
    {
        long fileLength = stream.Length;
        if (fileLength < 8) throw Bad($"file is {fileLength} bytes, too short for the 8-byte header length (truncated or not safetensors)");
        Span<byte> lenBytes = stackalloc byte[8];
        stream.ReadExactly(lenBytes);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(lenBytes);
        if (n > (ulong)Safetensors.MaxHeaderBytes)
            throw Bad($"header length {n} is too large (limit {Safetensors.MaxHeaderBytes} bytes; corrupt length field or not safetensors)");
        if ((long)n > fileLength - 8)
            throw Bad($"header length {n} reaches beyond the end of the file ({fileLength} bytes; truncated or corrupt length field)");
        if (n < 2) throw Bad($"header length {n} is too small for a JSON object");
        var headerBytes = new byte[n];
        stream.ReadExactly(headerBytes);
        long dataLength = fileLength - 8 - (long)n;

        // System.Text.Json defers UTF-8 validation of strings until they are read (and then throws
        // InvalidOperationException), so the whole header is checked here first, as the reference reader does.
        try { StrictUtf8.GetCharCount(headerBytes); }
        catch (DecoderFallbackException e)
        {
            throw Bad($"header is not valid UTF-8 (byte {e.Index} of the header)");
        }
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(headerBytes);
        }
        catch (Exception e) when (e is JsonException or ArgumentException or DecoderFallbackException)
        {
            throw Bad($"header is not valid JSON: {e.Message}");
        }
        using var _ = doc;
        // A key given twice inside an entry ({"dtype": "F32", "dtype": "I32"}) would silently resolve to one of them.
        try { Runtime.JsonInput.CheckWellFormed(doc.RootElement, "header"); }
        catch (UserInputException e) { throw Bad(e.Message); }
        try
        {
            return ParseHeader(doc, n, dataLength);
        }
        catch (InvalidOperationException e)
        {
            // An escaped lone surrogate ("\ud800") in a name or value cannot become a .NET string.
            throw Bad($"header holds a string that is not valid Unicode (an unpaired surrogate escape?): {e.Message}");
        }
    }

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>More dimensions than this are rejected: no real tensor has them, and libtorch kernels cap ranks at 25–64.</summary>
    public const int MaxRank = 32;

    private (Dictionary<string, string>, Dictionary<string, TensorInfo>, long) ParseHeader(JsonDocument doc, ulong n, long dataLength)
    {
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw Bad($"header JSON is a {doc.RootElement.ValueKind}, expected an object of tensor entries");

        var metadata = new Dictionary<string, string>();
        var tensors = new Dictionary<string, TensorInfo>();
        bool seenMetadata = false;
        foreach (var entry in doc.RootElement.EnumerateObject())
        {
            if (entry.Name == "__metadata__")
            {
                if (entry.Value.ValueKind != JsonValueKind.Object) throw Bad("__metadata__ must be an object of string values");
                if (seenMetadata) throw Bad("__metadata__ appears twice in the header");
                seenMetadata = true;
                foreach (var m in entry.Value.EnumerateObject())
                {
                    if (m.Value.ValueKind != JsonValueKind.String) throw Bad($"__metadata__['{Safe(m.Name)}'] is a {m.Value.ValueKind}, expected a string");
                    if (!metadata.TryAdd(m.Name, m.Value.GetString()!)) throw Bad($"__metadata__ key '{Safe(m.Name)}' appears twice");
                }
                continue;
            }
            if (tensors.ContainsKey(entry.Name)) throw Bad($"tensor '{Safe(entry.Name)}' appears twice in the header");
            if (entry.Name.Length == 0) throw Bad("a tensor has an empty name");
            tensors[entry.Name] = ParseEntry(entry.Name, entry.Value, dataLength);
        }

        // As the reference reader: the byte ranges, in order, tile the data section exactly. An overlap would make
        // two tensors alias the same bytes; a gap or trailing bytes mean offsets that were written wrongly.
        TensorInfo? prev = null;
        long cursor = 0;
        foreach (var t in tensors.Values.OrderBy(t => t.Begin).ThenBy(t => t.End))
        {
            if (t.Begin < cursor)
                throw Bad($"tensors '{Safe(prev!.Name)}' data_offsets [{prev.Begin}, {prev.End}] and '{Safe(t.Name)}' [{t.Begin}, {t.End}] overlap");
            if (t.Begin > cursor)
                throw Bad($"tensor '{Safe(t.Name)}' data_offsets [{t.Begin}, {t.End}] leave a gap of {t.Begin - cursor} bytes after byte {cursor} of the data section (the ranges must be contiguous)");
            cursor = t.End;
            prev = t;
        }
        if (cursor != dataLength)
            throw Bad($"the tensors cover {cursor} bytes but the data section holds {dataLength} (trailing bytes or wrong data_offsets)");
        return (metadata, tensors, 8 + (long)n);
    }

    private static string Safe(string s) => UserInputException.Shorten(s);

    private TensorInfo ParseEntry(string rawName, JsonElement e, long dataLength)
    {
        var name = Safe(rawName);
        if (e.ValueKind != JsonValueKind.Object) throw Bad($"tensor '{name}' entry is a {e.ValueKind}, expected {{dtype, shape, data_offsets}}");
        if (!e.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String) throw Bad($"tensor '{name}' has no string 'dtype'");
        var dtype = dt.GetString()!;
        if (!Safetensors.TryScalarType(dtype, out _, out var elementSize))
            throw Bad($"tensor '{name}' has unknown dtype '{Safe(dtype)}'; supported: {string.Join(", ", Safetensors.SupportedDTypes)}");
        if (!e.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array) throw Bad($"tensor '{name}' has no 'shape' array");
        if (sh.GetArrayLength() > MaxRank) throw Bad($"tensor '{name}' has {sh.GetArrayLength()} dimensions; expected at most {MaxRank}");
        var shape = new List<long>();
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out var v) || v < 0) throw Bad($"tensor '{name}' shape {Safe(sh.GetRawText())} has an entry that is not a non-negative integer");
            shape.Add(v);
        }
        if (!e.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw Bad($"tensor '{name}' has no 'data_offsets' [begin, end] pair");
        if (off[0].ValueKind != JsonValueKind.Number || off[1].ValueKind != JsonValueKind.Number
            || !off[0].TryGetInt64(out var begin) || !off[1].TryGetInt64(out var end) || begin < 0 || end < begin)
            throw Bad($"tensor '{name}' data_offsets {Safe(off.GetRawText())} are not integers with 0 ≤ begin ≤ end");
        long expected;
        try
        {
            expected = checked(shape.Aggregate(1L, (a, b) => a * b) * elementSize);
            // libtorch computes strides as products of the trailing sizes even when a size is 0, and aborts on overflow.
            _ = checked(shape.Aggregate(1L, (a, b) => a * Math.Max(b, 1)) * elementSize);
        }
        catch (OverflowException)
        {
            throw Bad($"tensor '{name}' shape {Safe(sh.GetRawText())} overflows a 64-bit byte count");
        }
        if (end - begin != expected)
            throw Bad($"tensor '{name}' is {dtype} with shape [{string.Join(", ", shape)}], which needs {expected} bytes, but data_offsets [{begin}, {end}] span {end - begin} (shape/byte-count mismatch)");
        if (end > dataLength)
            throw Bad($"tensor '{name}' data_offsets [{begin}, {end}] lie outside the data section of {dataLength} bytes (file truncated or offsets wrong)");
        return new TensorInfo(rawName, dtype, shape.ToArray(), begin, end);
    }

    /// <summary>Reads one tensor (CPU) by seeking to its bytes.</summary>
    public Tensor Read(string name)
    {
        if (!Tensors.TryGetValue(name, out var info))
            throw Bad($"no tensor '{Safe(name)}' (the file has {Tensors.Count} tensors)");
        Safetensors.TryScalarType(info.DType, out var type, out _);
        var t = torch.empty(info.Shape, dtype: type, device: CPU);
        if (info.ByteCount == 0) return t;
        try
        {
            lock (stream) // seek + read must not interleave between threads sharing this file
            {
                stream.Position = dataStart + info.Begin;
                t.ReadBytesFromStream(stream, (int)Math.Min(info.ByteCount, 1 << 20));
            }
        }
        catch (EndOfStreamException)
        {
            t.Dispose();
            throw Bad($"tensor '{name}' ends past the end of the file (file truncated while open?)");
        }
        return t;
    }

    public void Dispose() => stream.Dispose();
}
