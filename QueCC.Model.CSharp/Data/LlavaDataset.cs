using System.Text;
using System.Text.Json;
using QueCC.Model.Clip;
using QueCC.Model.Llava;
using QueCC.Model.Text;
using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace QueCC.Model.Data;

/// <summary>A record of a LLaVA conversation file that passed validation: one image and (user, assistant) turns.</summary>
public sealed record LlavaRecord(string Id, string ImagePath, IReadOnlyList<(string User, string? Assistant)> Turns);

/// <summary>A record left out of training, with the reason (written to the log and to skipped_records.jsonl).</summary>
public sealed record SkippedRecord(int Index, string Id, string Reason);

/// <summary>A record tokenized through the model's template: ids and labels with one image placeholder, the QueCC query ids,
/// and <see cref="Length"/>, the sequence length the LLM sees after the placeholder becomes the visual tokens.</summary>
public sealed record TokenizedExample(string Id, string ImagePath, List<int> Ids, List<int> Labels, IReadOnlyList<int> QueryIds, int Length)
{
    /// <summary>Positions that carry a loss after the next-token shift.</summary>
    public int SupervisedTokens => Labels.Skip(1).Count(l => l != LlavaModel.IgnoreIndex);
}

/// <summary>
/// The LLaVA conversation JSON format: <c>[{"id", "image": "relative/path.png", "conversations": [{"from": "human",
/// "value": "&lt;image&gt;\nQ"}, {"from": "gpt", "value": "A"}, …]}]</c>, images relative to an image folder.
/// </summary>
public static class LlavaJson
{
    private static readonly System.Text.UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
    private static readonly string[] UserRoles = { "human", "user" };
    private static readonly string[] AssistantRoles = { "gpt", "assistant" };

    /// <summary>
    /// Reads and validates every record. A file that is not LLaVA JSON at all (missing, bad JSON, not an array) throws
    /// with a one-line message naming the file; a malformed record is returned in <c>Skipped</c> with its reason.
    /// The &lt;image&gt; placeholder is moved to the front of the first user turn as LLaVA's preprocess_multimodal does
    /// (and added there when a record with an image has none).
    /// </summary>
    public static (List<LlavaRecord> Records, List<SkippedRecord> Skipped) Read(string jsonPath, string imagesDir)
    {
        if (Directory.Exists(jsonPath)) throw new UserInputException($"{jsonPath}: is a folder; expected a LLaVA data JSON file (e.g. {Path.Combine(jsonPath, "data.json")})");
        if (!File.Exists(jsonPath)) throw new UserInputException($"{jsonPath}: LLaVA data file not found");
        var bytes = File.ReadAllBytes(jsonPath);
        var body = bytes.AsMemory();
        if (body.Span.StartsWith("\uFEFF"u8)) body = body[3..];
        // System.Text.Json validates UTF-8 inside strings only when they are read (and then throws
        // InvalidOperationException mid-record), so the whole file is checked up front, naming the line.
        try { StrictUtf8.GetCharCount(body.Span); }
        catch (DecoderFallbackException e)
        {
            int line = 1 + body.Span[..Math.Max(0, e.Index)].Count((byte)'\n');
            throw new UserInputException($"{jsonPath}:{line}: not valid UTF-8 (byte {e.Index}); expected a UTF-8 JSON file");
        }
        JsonDocument doc;
        try { doc = JsonDocument.Parse(body, new JsonDocumentOptions { AllowTrailingCommas = true }); }
        catch (JsonException e) { throw new UserInputException($"{jsonPath}: not LLaVA JSON: the file is not valid JSON ({e.Message})"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Array)
                throw new UserInputException($"{jsonPath}: not LLaVA JSON: expected a top-level array of {{\"id\", \"image\", \"conversations\"}} records, found {doc.RootElement.ValueKind.ToString().ToLowerInvariant()}");
            var records = new List<LlavaRecord>();
            var skipped = new List<SkippedRecord>();
            int index = 0;
            var firstOfId = new Dictionary<string, int>();
            foreach (var e in doc.RootElement.EnumerateArray())
            {
                string id = $"#{index}";
                string? reason;
                LlavaRecord? record = null;
                try
                {
                    Runtime.JsonInput.CheckWellFormed(e, jsonPath, $"$[{index}]");
                    if (e.ValueKind == JsonValueKind.Object && e.TryGetProperty("id", out var idEl))
                        id = idEl.ValueKind == JsonValueKind.String ? idEl.GetString()! : idEl.GetRawText();
                    // A repeated id is a copied record: training on it twice would silently reweight the data.
                    reason = firstOfId.TryGetValue(id, out var first)
                        ? $"id repeats record {first}; expected each id once"
                        : Validate(e, imagesDir, out record, id);
                }
                catch (UserInputException u) { reason = u.Message[(jsonPath.Length + 2)..]; }
                if (reason is null) { records.Add(record!); firstOfId[id] = index; }
                else skipped.Add(new SkippedRecord(index, UserInputException.Shorten(id), reason));
                index++;
            }
            return (records, skipped);
        }
    }

    private static string? Validate(JsonElement e, string imagesDir, out LlavaRecord? record, string id)
    {
        record = null;
        if (e.ValueKind != JsonValueKind.Object) return $"expected an object, found {e.ValueKind.ToString().ToLowerInvariant()}";
        if (!e.TryGetProperty("image", out var img) || img.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(img.GetString()))
            return "field 'image': expected a relative image path (QueCC trains on exactly one image per sample)";
        var imagePath = Path.Combine(imagesDir, img.GetString()!);
        if (!File.Exists(imagePath)) return $"image file not found: {imagePath}";
        using (var codec = SKCodec.Create(imagePath))
        {
            if (codec is null) return $"image file is not a readable image (PNG, JPEG, WebP, GIF, BMP): {imagePath}";
            long pixels = (long)codec.Info.Width * codec.Info.Height;
            if (pixels > RgbImage.MaxPixels) return $"image {imagePath} declares {codec.Info.Width}x{codec.Info.Height} pixels, more than the limit {RgbImage.MaxPixels} ({RgbImage.MaxPixelsVariable})";
        }
        if (!e.TryGetProperty("conversations", out var conv) || conv.ValueKind != JsonValueKind.Array)
            return "field 'conversations': expected an array of {\"from\", \"value\"} turns";
        var msgs = new List<(bool User, string Value)>();
        int k = 0;
        foreach (var t in conv.EnumerateArray())
        {
            if (t.ValueKind != JsonValueKind.Object || !t.TryGetProperty("from", out var from) || from.ValueKind != JsonValueKind.String
                || !t.TryGetProperty("value", out var value) || value.ValueKind != JsonValueKind.String)
                return $"conversations[{k}]: expected {{\"from\": string, \"value\": string}}";
            var role = from.GetString()!.ToLowerInvariant();
            bool user = UserRoles.Contains(role);
            if (!user && !AssistantRoles.Contains(role)) return $"conversations[{k}].from '{from.GetString()}': expected human or gpt";
            msgs.Add((user, value.GetString()!));
            k++;
        }
        if (msgs.Count == 0) return "field 'conversations' is empty";
        if (!msgs.Any(m => !m.User)) return "no assistant (gpt) turn";
        for (int i = 0; i < msgs.Count; i++)
            if (msgs[i].User != (i % 2 == 0))
                return $"conversations[{i}]: expected {(i % 2 == 0 ? "human" : "gpt")} (turns alternate, starting with human)";
        if (msgs.Count % 2 == 1) return $"conversations[{msgs.Count - 1}]: the last human turn has no gpt answer";
        int placeholders = msgs.Sum(m => CountOf(m.Value, LlavaModel.ImagePlaceholder));
        if (placeholders > 1) return $"{placeholders} {LlavaModel.ImagePlaceholder} placeholders; expected one (one image per sample)";
        if (placeholders == 1 && CountOf(msgs[0].Value, LlavaModel.ImagePlaceholder) == 0)
            return $"the {LlavaModel.ImagePlaceholder} placeholder is not in the first human turn";
        if (msgs.Any(m => !m.User && m.Value.Trim().Length == 0)) return "an assistant (gpt) turn is empty";
        var first = LlavaModel.QueryText(msgs[0].Value);
        if (first.Length == 0) return "the first human turn has no text besides <image> (QueCC's query needs text)";
        var turns = new List<(string, string?)> { (LlavaModel.ImagePlaceholder + "\n" + first, msgs[1].Value) };
        for (int i = 2; i < msgs.Count; i += 2) turns.Add((msgs[i].Value, msgs[i + 1].Value));
        record = new LlavaRecord(id, imagePath, turns);
        return null;
    }

    private static int CountOf(string s, string sub)
    {
        int n = 0;
        for (int i = s.IndexOf(sub, StringComparison.Ordinal); i >= 0; i = s.IndexOf(sub, i + sub.Length, StringComparison.Ordinal)) n++;
        return n;
    }
}

/// <summary>A LLaVA data file tokenized for one model: the usable examples and the skipped records.</summary>
public sealed class LlavaDataset
{
    public string Source { get; }
    public IReadOnlyList<TokenizedExample> Examples { get; }
    public IReadOnlyList<SkippedRecord> Skipped { get; }

    private LlavaDataset(string source, List<TokenizedExample> examples, List<SkippedRecord> skipped) =>
        (Source, Examples, Skipped) = (source, examples, skipped);

    /// <summary>
    /// Reads <paramref name="jsonPath"/> and tokenizes each record through the model's template. A sequence longer than
    /// <paramref name="maxLength"/> (counting the visual tokens) is cut at the end, as LLaVA truncates to model_max_length;
    /// a record left with no supervised token is skipped. With <paramref name="strict"/> the first malformed record
    /// throws instead. Each skipped record is reported to <paramref name="log"/> with its id and reason.
    /// </summary>
    public static LlavaDataset Load(string jsonPath, string imagesDir, ChatTokenizer tok, ConversationStyle style, int visualTokens,
                                    int maxLength, bool strict = false, Action<string>? log = null,
                                    QueryRule queryRule = QueryRule.FirstUserTurn)
    {
        if (maxLength <= visualTokens + 1) throw new UserInputException($"max length {maxLength}: expected more than the {visualTokens} visual tokens + 1");
        var (records, skipped) = LlavaJson.Read(jsonPath, imagesDir);
        if (strict && skipped.Count > 0)
            throw new UserInputException($"{jsonPath}: record {skipped[0].Index} (id {skipped[0].Id}): {skipped[0].Reason} (strict mode stops at the first malformed record)");
        var examples = new List<TokenizedExample>();
        foreach (var r in records)
        {
            var encoded = ConversationEncoder.Encode(tok, style, r.Turns, queryRule);
            var (ids, labels) = (encoded.InputIds, encoded.Labels);
            int keep = maxLength - visualTokens + 1; // the placeholder id becomes V tokens
            if (ids.Count > keep) { ids.RemoveRange(keep, ids.Count - keep); labels.RemoveRange(keep, labels.Count - keep); }
            var ex = new TokenizedExample(r.Id, r.ImagePath, ids, labels, encoded.QueryIds, ids.Count - 1 + visualTokens);
            if (!ids.Contains(LlavaModel.ImageTokenIndex) || ex.SupervisedTokens == 0)
            {
                var s = new SkippedRecord(-1, r.Id, $"longer than max length {maxLength}: no assistant token is left after truncation");
                if (strict) throw new UserInputException($"{jsonPath}: record id {r.Id}: {s.Reason} (strict mode stops at the first malformed record)");
                skipped.Add(s);
                continue;
            }
            examples.Add(ex);
        }
        foreach (var s in skipped) log?.Invoke($"{jsonPath}: skipped record {(s.Index >= 0 ? s.Index + " " : "")}(id {s.Id}): {s.Reason}");
        if (examples.Count == 0)
            throw new UserInputException($"{jsonPath}: no usable LLaVA records ({skipped.Count} skipped{(skipped.Count > 0 ? $"; first: id {skipped[0].Id}: {skipped[0].Reason}" : "")})");
        return new LlavaDataset(jsonPath, examples, skipped);
    }

    /// <summary>Preprocessed pixels (3, S, S) of one example's image (LLaVA's "pad" aspect mode unless the model says otherwise).</summary>
    public static Tensor LoadPixels(string imagePath, ImageAspectMode mode, ClipImageProcessorConfig cfg) =>
        ClipImageProcessor.Preprocess(RgbImage.Load(imagePath), mode, cfg);

    /// <summary>
    /// A batch of examples for <paramref name="model"/>: images loaded and preprocessed, visual tokens spliced in,
    /// right-padded. With <paramref name="cache"/>, the tower's features of each image come from it (computed on first use).
    /// </summary>
    public static LlavaBatch Collate(LlavaModel model, IReadOnlyList<TokenizedExample> batch, TowerFeatureCache? cache = null)
    {
        using var scope = torch.NewDisposeScope();
        var ids = batch.Select(e => e.Ids).ToList();
        var labels = batch.Select(e => e.Labels).ToList();
        var queries = batch.Select(e => e.QueryIds).ToList();
        LlavaBatch b;
        if (cache is null)
        {
            var mode = model.Config.Settings.AspectMode(model.Config.Source);
            var pixels = torch.stack(batch.Select(e => LoadPixels(e.ImagePath, mode, model.ImageProcessorConfig)).ToArray()); // (B, 3, S, S)
            b = model.PrepareTokenized(pixels, ids, labels, queries);
        }
        else
        {
            var feats = batch.Select(e => cache.Get(model, e.ImagePath)).ToList();
            var x = torch.stack(feats.Select(f => f.X).ToArray());                                          // (B, N, C)
            var multi = feats[0].Multi is null ? null : torch.stack(feats.Select(f => f.Multi!).ToArray()); // (B, N, C·L)
            b = model.PrepareFromFeatures(x, multi, ids, labels, queries);
        }
        return new LlavaBatch(b.InputsEmbeds.MoveToOuterDisposeScope(), b.AttentionMask.MoveToOuterDisposeScope(), b.Labels.MoveToOuterDisposeScope());
    }
}

/// <summary>
/// The frozen vision tower's features of each image of a training run, computed on first use and kept. The tower trains in
/// neither LLaVA stage and images are not augmented, so an image's features are the same at every visit; on the tiny
/// presets the tower's forward was most of a training step. Each image is encoded alone (a batch of one), so its
/// features do not depend on which images shared its first batch and a resumed run sees the numbers an uninterrupted one
/// saw. Past <see cref="BudgetBytes"/> further images are encoded at each visit instead of kept.
/// </summary>
public sealed class TowerFeatureCache : IDisposable
{
    private readonly Dictionary<string, (Tensor X, Tensor? Multi)> kept = new();

    public TowerFeatureCache(long budgetBytes) => BudgetBytes = budgetBytes;

    public long BudgetBytes { get; }
    public long Bytes { get; private set; }
    public int Count => kept.Count;

    /// <summary>Features (N, C) and (N, C·L) or null of one image; kept ones belong to the cache, others to the caller's dispose scope.</summary>
    public (Tensor X, Tensor? Multi) Get(LlavaModel model, string imagePath)
    {
        if (kept.TryGetValue(imagePath, out var f)) return f;
        var mode = model.Config.Settings.AspectMode(model.Config.Source);
        var pixels = LlavaDataset.LoadPixels(imagePath, mode, model.ImageProcessorConfig).unsqueeze(0).to(model.VisionTower.parameters().First().device);
        var (x, multi) = model.TowerFeatures(pixels);
        var one = (X: x.squeeze(0), Multi: multi?.squeeze(0));
        long bytes = one.X.NumberOfElements * one.X.ElementSize + (one.Multi is null ? 0 : one.Multi.NumberOfElements * one.Multi.ElementSize);
        if (Bytes + bytes > BudgetBytes) return one;
        one.X.DetachFromDisposeScope();
        one.Multi?.DetachFromDisposeScope();
        kept[imagePath] = one;
        Bytes += bytes;
        return one;
    }

    public void Dispose()
    {
        foreach (var (x, multi) in kept.Values) { x.Dispose(); multi?.Dispose(); }
        kept.Clear();
        Bytes = 0;
    }
}

/// <summary>
/// The order in which a run visits the examples: a permutation per epoch drawn from (seed, epoch) alone, so a resumed
/// run recomputes it exactly; optionally grouped by length as LLaVA's LengthGroupedSampler (llava_trainer.py,
/// get_length_grouped_indices, which group_by_modality_length reduces to when every sample has an image): the shuffled
/// order cut into mega-batches of one optimizer step's samples (per-device batch × world size × grad accum, as
/// LLaVATrainer passes them), each sorted longest first. Only the order inside a step changes, so which samples share a
/// step stays random. (HF's own sampler sorts 50 steps at once; on data whose length gives away the question type — the
/// synthetic sets — that runs the steps type by type and leaves the model answering the last type's answer to everything.)
/// </summary>
public static class DataOrder
{
    /// <param name="lengths">Token length of each example (the grouping key).</param>
    /// <param name="seed">Run seed.</param>
    /// <param name="epoch">Epoch index (0-based); with the seed it fixes the permutation.</param>
    /// <param name="megaBatch">Samples per optimizer step (batch size × grad accum here, one process).</param>
    /// <param name="groupByLength">Sort each step's samples longest first (LLaVA's group_by_length).</param>
    public static int[] Epoch(IReadOnlyList<int> lengths, int seed, int epoch, int megaBatch, bool groupByLength)
    {
        var rng = new Random(unchecked(seed * 1_000_003 + epoch));
        var perm = Enumerable.Range(0, lengths.Count).ToArray();
        rng.Shuffle(perm);
        if (!groupByLength) return perm;
        int mega = Math.Max(1, megaBatch);
        var result = new List<int>(perm.Length);
        for (int i = 0; i < perm.Length; i += mega)
            result.AddRange(perm.Skip(i).Take(mega).OrderByDescending(j => lengths[j])); // stable: ties keep the shuffled order
        return result.ToArray();
    }
}
