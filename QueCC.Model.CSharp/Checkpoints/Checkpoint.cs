using System.Text.Json;
using static TorchSharp.torch;

namespace QueCC.Model.Checkpoints;

/// <summary>
/// A checkpoint that may be split into shards: a single <c>.safetensors</c> or PyTorch <c>.bin</c> file, an index
/// (<c>model.safetensors.index.json</c> / <c>pytorch_model.bin.index.json</c>, HF layout: {"metadata": …, "weight_map": {tensor:
/// shard file}}), or a folder holding one of these (safetensors preferred, as transformers does). Shards are opened once and
/// tensors read one at a time; PyTorch pickles are read weights-only (<see cref="PyTorchFile"/>).
/// </summary>
public sealed class Checkpoint : IDisposable
{
    public const string IndexFileName = "model.safetensors.index.json";
    public const string SingleFileName = "model.safetensors";
    public const string BinIndexFileName = "pytorch_model.bin.index.json";
    public const string BinFileName = "pytorch_model.bin";

    /// <summary>What was opened (file, index or folder), for messages.</summary>
    public string Source { get; }
    private readonly Dictionary<string, ITensorFile> byTensor = new();
    private readonly List<ITensorFile> files = [];

    private Checkpoint(string source) => Source = source;

    public IEnumerable<string> Keys => byTensor.Keys;
    public bool Contains(string key) => byTensor.ContainsKey(key);
    public TensorInfo Info(string key) => FileOf(key).Tensors[key];
    public Tensor Read(string key) => FileOf(key).Read(key);

    private ITensorFile FileOf(string key) =>
        byTensor.TryGetValue(key, out var f) ? f : throw new CheckpointFormatException($"{Source}: no tensor '{UserInputException.Shorten(key)}'");

    public static Checkpoint Open(string path)
    {
        if (Directory.Exists(path))
        {
            var index = Path.Combine(path, IndexFileName);
            var single = Path.Combine(path, SingleFileName);
            if (File.Exists(index)) return OpenIndex(index);
            if (File.Exists(single)) return OpenSingle(single);
            if (File.Exists(Path.Combine(path, BinIndexFileName))) return OpenIndex(Path.Combine(path, BinIndexFileName));
            if (File.Exists(Path.Combine(path, BinFileName))) return OpenSingle(Path.Combine(path, BinFileName));
            throw new UserInputException($"{path}: folder holds none of {IndexFileName}, {SingleFileName}, {BinIndexFileName}, {BinFileName}");
        }
        if (!File.Exists(path)) throw new UserInputException($"{path}: checkpoint not found");
        return path.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? OpenIndex(path) : OpenSingle(path);
    }

    /// <summary>
    /// One key space over several open checkpoints: of each part, the tensors whose own key <c>Take</c> accepts, under
    /// <c>Prefix</c> + that key (e.g. a CLIP folder's <c>vision_model.*</c> as <c>model.vision_tower.vision_tower.vision_model.*</c>).
    /// A view that reads through the parts: the caller keeps them open and disposes them. A key given by two parts is an error.
    /// </summary>
    public static Checkpoint Combine(params (Checkpoint Part, string Prefix, Func<string, bool> Take)[] parts)
    {
        var c = new Checkpoint(string.Join(" + ", parts.Select(p => p.Prefix.Length == 0 ? p.Part.Source : $"{p.Part.Source} (as {p.Prefix}*)")));
        foreach (var (part, prefix, take) in parts)
            foreach (var byFile in part.byTensor.Where(kv => take(kv.Key)).GroupBy(kv => kv.Value))
            {
                var file = prefix.Length == 0 ? byFile.Key : new MountedFile(byFile.Key, prefix);
                foreach (var (key, _) in byFile)
                    if (!c.byTensor.TryAdd(prefix + key, file))
                        throw new CheckpointFormatException($"{c.Source}: tensor '{UserInputException.Shorten(prefix + key)}' is given twice");
            }
        return c;
    }

    /// <summary>A part of <see cref="Combine"/>: the file's tensors under a key prefix; disposing it leaves the file open.</summary>
    private sealed class MountedFile(ITensorFile inner, string prefix) : ITensorFile
    {
        public string Path => inner.Path;
        public IReadOnlyDictionary<string, TensorInfo> Tensors { get; } = inner.Tensors.ToDictionary(kv => prefix + kv.Key, kv => kv.Value with { Name = prefix + kv.Key });
        public Tensor Read(string name) => inner.Read(name[prefix.Length..]);
        public void Dispose() { }
    }

    /// <summary>PyTorch pickles by extension (.bin, .pt, .pth), safetensors otherwise.</summary>
    private static ITensorFile OpenFile(string path) =>
        path.EndsWith(".bin", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".pt", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".pth", StringComparison.OrdinalIgnoreCase)
            ? PyTorchFile.Open(path)
            : Safetensors.Open(path);

    private static Checkpoint OpenSingle(string path)
    {
        var c = new Checkpoint(path);
        var f = OpenFile(path);
        c.files.Add(f);
        foreach (var k in f.Tensors.Keys) c.byTensor[k] = f;
        return c;
    }

    private static Checkpoint OpenIndex(string indexPath)
    {
        var c = new Checkpoint(indexPath);
        try
        {
            JsonDocument doc;
            try { doc = JsonDocument.Parse(File.ReadAllBytes(indexPath)); }
            catch (JsonException e) { throw new CheckpointFormatException($"{indexPath}: index is not valid JSON: {e.Message}"); }
            using var _ = doc;
            try { Runtime.JsonInput.CheckWellFormed(doc.RootElement, indexPath); }
            catch (UserInputException e) { throw new CheckpointFormatException(e.Message); }
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new CheckpointFormatException($"{indexPath}: index has no 'weight_map' object (tensor name → shard file)");
            var dir = Path.GetDirectoryName(Path.GetFullPath(indexPath))!;
            var shards = new Dictionary<string, ITensorFile>();
            foreach (var entry in map.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String)
                    throw new CheckpointFormatException($"{indexPath}: weight_map['{UserInputException.Shorten(entry.Name)}'] is a {entry.Value.ValueKind}, expected a shard file name");
                var shard = entry.Value.GetString()!;
                // Shards live beside the index; a path here would let an index point anywhere on disk.
                if (shard.Length == 0 || Path.GetFileName(shard) != shard)
                    throw new CheckpointFormatException($"{indexPath}: weight_map['{UserInputException.Shorten(entry.Name)}'] = '{UserInputException.Shorten(shard)}' is not a plain file name in the index's folder");
                if (!shards.TryGetValue(shard, out var file))
                {
                    var shardPath = Path.Combine(dir, shard);
                    if (!File.Exists(shardPath))
                        throw new CheckpointFormatException($"{indexPath}: shard '{UserInputException.Shorten(shard)}' (for tensor '{UserInputException.Shorten(entry.Name)}') does not exist in {dir}");
                    file = OpenFile(shardPath);
                    shards[shard] = file;
                    c.files.Add(file);
                }
                if (!file.Tensors.ContainsKey(entry.Name))
                    throw new CheckpointFormatException($"{indexPath}: weight_map puts tensor '{UserInputException.Shorten(entry.Name)}' in '{UserInputException.Shorten(shard)}', but that shard has no such tensor");
                c.byTensor[entry.Name] = file;
            }
            return c;
        }
        catch
        {
            c.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        foreach (var f in files) f.Dispose();
        files.Clear();
    }
}
