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

/// <summary>
/// Strict state-dict loading by key name (module field names equal checkpoint keys). <c>LoadStrict</c> is the one
/// implementation (the whole LLaVA tree in one call, a causal LM, a CLIP tower, a projector, trainer checkpoints); <c>Load</c>
/// applies it to a module under a key prefix.
/// </summary>
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
        Load(module, checkpoint.Keys.ToList(), k => checkpoint.Info(k).Shape, checkpoint.Read, checkpoint.Source, prefixes);

    /// <summary>Same rules for an in-memory state dict.</summary>
    public static void Load(nn.Module module, IReadOnlyDictionary<string, Tensor> stateDict, IReadOnlyList<string>? prefixes = null, string source = "<state dict>") =>
        Load(module, stateDict.Keys.ToList(), k => stateDict[k].shape, k => stateDict[k].alias(), source, prefixes);

    private static void Load(nn.Module module, List<string> keys, Func<string, long[]> shapeOf, Func<string, Tensor> read, string source, IReadOnlyList<string>? prefixes)
    {
        prefixes ??= ProjectorPrefixes;
        var prefix = prefixes.FirstOrDefault(p => keys.Any(k => k.StartsWith(p, StringComparison.Ordinal))) ?? "";
        var targets = module.state_dict().Select(kv => (prefix + kv.Key, kv.Value));
        var subject = prefix.Length > 0 ? $"the module (keys under '{prefix}')" : "the module";
        LoadStrict(targets, keys, shapeOf, read, source, k => !k.StartsWith(prefix, StringComparison.Ordinal), subject);
    }

    /// <summary>
    /// Copies checkpoint tensors into module tensors by full checkpoint key (converting dtype). Every target key must be
    /// present with its shape, and every checkpoint key not <paramref name="ignore"/>d must be a target; all missing,
    /// unexpected and mis-shaped keys are reported at once (<see cref="StateDictMismatchException"/>), before anything is copied.
    /// </summary>
    public static void LoadStrict(IEnumerable<(string Key, Tensor Target)> targets, Checkpoint checkpoint, Func<string, bool> ignore, string subject = "the model") =>
        LoadStrict(targets, checkpoint.Keys.ToList(), k => checkpoint.Info(k).Shape, checkpoint.Read, checkpoint.Source, ignore, subject);

    private static void LoadStrict(IEnumerable<(string Key, Tensor Target)> targets, List<string> keys, Func<string, long[]> shapeOf, Func<string, Tensor> read,
                                   string source, Func<string, bool> ignore, string subject)
    {
        var list = targets.ToList();
        var present = keys.ToHashSet();
        var wanted = list.Select(t => t.Key).ToHashSet();
        var missing = list.Where(t => !present.Contains(t.Key)).Select(t => t.Key).ToList();
        var unexpected = keys.Where(k => !wanted.Contains(k) && !ignore(k)).OrderBy(k => k).ToList();
        var mismatched = list.Where(t => present.Contains(t.Key) && !shapeOf(t.Key).SequenceEqual(t.Target.shape))
            .Select(t => $"{t.Key}: checkpoint ({string.Join(", ", shapeOf(t.Key))}) vs module ({string.Join(", ", t.Target.shape)})").ToList();
        if (missing.Count + unexpected.Count + mismatched.Count > 0)
        {
            var parts = new List<string>();
            if (missing.Count > 0) parts.Add($"missing {missing.Count}: {List(missing)}");
            if (unexpected.Count > 0) parts.Add($"unexpected {unexpected.Count}: {List(unexpected)}");
            if (mismatched.Count > 0) parts.Add($"shape mismatch {mismatched.Count}: {List(mismatched)}");
            throw new StateDictMismatchException($"{source}: checkpoint does not match {subject}; {string.Join("; ", parts)}", missing, unexpected, mismatched);
        }

        using var _ = torch.no_grad();
        foreach (var (key, target) in list)
        {
            using var src = read(key);
            target.copy_(src);
        }
    }

    private static string List(List<string> items) =>
        string.Join(", ", items.Take(20)) + (items.Count > 20 ? $", … ({items.Count - 20} more)" : "");
}
