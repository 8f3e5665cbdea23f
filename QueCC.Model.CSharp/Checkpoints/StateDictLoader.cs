using TorchSharp;
using static TorchSharp.torch;

namespace QueCC.Model.Checkpoints;

/// <summary>A checkpoint that does not fit a module: every missing, unexpected and mis-shaped key is listed.</summary>
public sealed class StateDictMismatchException(string message, IReadOnlyList<string> missing, IReadOnlyList<string> unexpected, IReadOnlyList<string> shapeMismatches)
    : CheckpointFormatException(message)
{
    public IReadOnlyList<string> Missing { get; } = missing;
    public IReadOnlyList<string> Unexpected { get; } = unexpected;
    public IReadOnlyList<string> ShapeMismatches { get; } = shapeMismatches;
}

/// <summary>Strict state-dict loading by key name (module field names equal checkpoint keys).</summary>
public static class StateDictLoader
{
    /// <summary>Prefixes under which LLaVA checkpoints store the projector: full model, then the stage-1 mm_projector file.</summary>
    public static readonly string[] ProjectorPrefixes = ["model.mm_projector.", "mm_projector."];

    /// <summary>
    /// Copies the checkpoint into <paramref name="module"/>'s parameters and buffers (no_grad, converting dtype).
    /// If some key starts with one of <paramref name="prefixes"/> (first match wins), only keys under that prefix
    /// are considered (the rest of a full VLM checkpoint belongs to other modules) and the prefix is stripped;
    /// otherwise all keys are taken as bare module keys. Nothing is copied unless every key matches.
    /// </summary>
    public static void Load(nn.Module module, Checkpoint checkpoint, IReadOnlyList<string>? prefixes = null) =>
        Load(module, checkpoint.Keys.ToList(), checkpoint.Info, k => checkpoint.Read(k), checkpoint.Source, prefixes);

    /// <summary>Same rules for an in-memory state dict.</summary>
    public static void Load(nn.Module module, IReadOnlyDictionary<string, Tensor> stateDict, IReadOnlyList<string>? prefixes = null, string source = "<state dict>") =>
        Load(module, stateDict.Keys.ToList(), k => new TensorInfo(k, "", stateDict[k].shape, 0, 0), k => stateDict[k].alias(), source, prefixes);

    private static void Load(nn.Module module, List<string> keys, Func<string, TensorInfo> info, Func<string, Tensor> read, string source, IReadOnlyList<string>? prefixes)
    {
        prefixes ??= ProjectorPrefixes;
        var prefix = prefixes.FirstOrDefault(p => keys.Any(k => k.StartsWith(p, StringComparison.Ordinal))) ?? "";
        var available = keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal))
            .ToDictionary(k => k[prefix.Length..], k => k);

        var targets = module.state_dict();
        var missing = targets.Keys.Where(k => !available.ContainsKey(k)).Select(k => prefix + k).ToList();
        var unexpected = available.Where(kv => !targets.ContainsKey(kv.Key)).Select(kv => kv.Value).ToList();
        var mismatched = new List<string>();
        foreach (var (k, t) in targets)
        {
            if (!available.TryGetValue(k, out var full)) continue;
            var shape = info(full).Shape;
            if (!shape.SequenceEqual(t.shape))
                mismatched.Add($"{full}: checkpoint ({string.Join(", ", shape)}) vs module ({string.Join(", ", t.shape)})");
        }
        if (missing.Count + unexpected.Count + mismatched.Count > 0)
        {
            var parts = new List<string>();
            if (missing.Count > 0) parts.Add($"missing {missing.Count}: {List(missing)}");
            if (unexpected.Count > 0) parts.Add($"unexpected {unexpected.Count}: {List(unexpected)}");
            if (mismatched.Count > 0) parts.Add($"shape mismatch {mismatched.Count}: {List(mismatched)}");
            var where = prefix.Length > 0 ? $" (keys under '{prefix}')" : "";
            throw new StateDictMismatchException($"{source}: checkpoint does not match the module{where}; {string.Join("; ", parts)}", missing, unexpected, mismatched);
        }

        using var _ = torch.no_grad();
        foreach (var (k, t) in targets)
        {
            using var src = read(available[k]);
            t.copy_(src);
        }
    }

    private static string List(List<string> items) =>
        string.Join(", ", items.Take(20)) + (items.Count > 20 ? $", … ({items.Count - 20} more)" : "");
}
