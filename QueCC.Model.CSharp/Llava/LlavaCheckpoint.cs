using System.Text.Json;
using System.Text.Json.Nodes;
using QueCC.Model.Checkpoints;
using QueCC.Model.Clip;
using QueCC.Model.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace QueCC.Model.Llava;

/// <summary>
/// Checkpoint folders. Model folder: config.json (LLM keys + mm_* keys + LLaVA settings), model.safetensors or
/// model-0000i-of-0000n.safetensors + model.safetensors.index.json, tokenizer files. Vision tower folder
/// (default <c>vision_tower/</c> inside the model folder): config.json (CLIPVisionConfig) + model.safetensors with <c>vision_model.*</c>.
/// The two hold the keys of the <see cref="LlavaModel"/> tree: the model folder all but the tower's, the tower folder those
/// under <see cref="LlavaModel.TowerPrefix"/> with the prefix dropped.
/// </summary>
public static class LlavaCheckpoint
{
    public const string VisionTowerFolder = "vision_tower";

    public static ScalarType ParseDType(string name) => name.Trim().ToLowerInvariant() switch
    {
        "float32" or "f32" or "fp32" => ScalarType.Float32,
        "float16" or "f16" or "fp16" => ScalarType.Float16,
        "bfloat16" or "bf16" => ScalarType.BFloat16,
        _ => throw new UserInputException($"dtype '{name}': expected float32, float16 or bfloat16"),
    };

    private static string DTypeJsonName(ScalarType t) => t switch
    {
        ScalarType.Float16 => "float16", ScalarType.BFloat16 => "bfloat16", _ => "float32",
    };

    /// <summary>Writes the model folder (and the tower into <c>vision_tower/</c>). Shards when the tensors exceed <paramref name="maxShardBytes"/> (0 = one file).</summary>
    public static void Save(LlavaModel model, string dir, ScalarType dtype = ScalarType.Float32, long maxShardBytes = 0, string? visionTowerDir = null)
    {
        Directory.CreateDirectory(dir);
        var cfg = model.Config with { Text = model.Config.Text with { TorchDtype = DTypeJsonName(dtype) } };
        File.WriteAllText(Path.Combine(dir, "config.json"), cfg.ToJson());
        WriteTensors(dir, model.LanguageStateDict().ToList(), dtype, maxShardBytes);
        SaveVisionTower(model.VisionTower, visionTowerDir ?? Path.Combine(dir, VisionTowerFolder), dtype);
    }

    public static void SaveVisionTower(ClipVisionModel tower, string dir, ScalarType dtype = ScalarType.Float32)
    {
        Directory.CreateDirectory(dir);
        var obj = JsonNode.Parse(JsonSerializer.Serialize(tower.Config))!.AsObject();
        obj["model_type"] = "clip_vision_model";
        obj["torch_dtype"] = DTypeJsonName(dtype);
        File.WriteAllText(Path.Combine(dir, "config.json"), obj.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        WriteTensors(dir, tower.state_dict().Select(kv => (kv.Key, kv.Value)).ToList(), dtype, 0);
    }

    private static void WriteTensors(string dir, List<(string Key, Tensor Tensor)> tensors, ScalarType dtype, long maxShardBytes)
    {
        using var scope = torch.NewDisposeScope();
        var converted = tensors.Select(t => new KeyValuePair<string, Tensor>(t.Key, t.Tensor.detach().to_type(dtype))).ToList();
        var meta = new Dictionary<string, string> { ["format"] = "pt" };
        long total = converted.Sum(t => t.Value.numel() * t.Value.ElementSize);
        foreach (var stale in Directory.EnumerateFiles(dir, "model*.safetensors").Concat(Directory.EnumerateFiles(dir, Checkpoint.IndexFileName)))
            File.Delete(stale);
        if (maxShardBytes <= 0 || total <= maxShardBytes)
        {
            Safetensors.Write(Path.Combine(dir, Checkpoint.SingleFileName), converted, meta);
            return;
        }
        var shards = new List<List<KeyValuePair<string, Tensor>>> { new() };
        long size = 0;
        foreach (var t in converted)
        {
            long bytes = t.Value.numel() * t.Value.ElementSize;
            if (size > 0 && size + bytes > maxShardBytes) { shards.Add(new()); size = 0; }
            shards[^1].Add(t);
            size += bytes;
        }
        var weightMap = new JsonObject();
        for (int i = 0; i < shards.Count; i++)
        {
            var name = $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
            Safetensors.Write(Path.Combine(dir, name), shards[i], meta);
            foreach (var t in shards[i]) weightMap[t.Key] = name;
        }
        var index = new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = total }, ["weight_map"] = weightMap };
        File.WriteAllText(Path.Combine(dir, Checkpoint.IndexFileName), index.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>
    /// Loads a model folder. The tower comes from <paramref name="visionTowerDir"/>, else the folder's
    /// <c>vision_tower/</c>, else tensors under <c>model.vision_tower.vision_tower.</c> in the model checkpoint.
    /// One strict load of the whole tree (<see cref="LlavaModel"/>, keys in LLaVA's layout): a tower folder's keys are read
    /// under <see cref="LlavaModel.TowerPrefix"/>, and every missing, unexpected or mis-shaped key of the LLM, projector and
    /// tower is listed in one message.
    /// </summary>
    public static LlavaModel Load(string modelDir, string? visionTowerDir = null, Device? device = null)
    {
        if (!Directory.Exists(modelDir)) throw new UserInputException($"{modelDir}: model folder not found");
        var cfg = LlavaConfig.Load(Path.Combine(modelDir, "config.json"));
        using var ckpt = Checkpoint.Open(modelDir);
        string? towerDir = visionTowerDir ?? (Directory.Exists(Path.Combine(modelDir, VisionTowerFolder)) ? Path.Combine(modelDir, VisionTowerFolder) : null);
        bool embedded = towerDir is null && ckpt.Keys.Any(k => k.StartsWith(LlavaModel.TowerPrefix, StringComparison.Ordinal));
        if (towerDir is null && !embedded)
            throw new UserInputException($"{modelDir}: no vision tower; expected a {VisionTowerFolder}/ folder, a --vision-tower folder, or {LlavaModel.TowerPrefix}* tensors in the checkpoint"
                + (cfg.Settings.VisionTower is { } name ? $" (config.json names mm_vision_tower '{name}': pass a local copy of that checkpoint with --vision-tower DIR)" : ""));
        if (visionTowerDir is not null && !Directory.Exists(visionTowerDir)) throw new UserInputException($"{visionTowerDir}: vision tower folder not found");
        var visionCfg = towerDir is not null ? ClipVisionConfig.Load(Path.Combine(towerDir, "config.json")) : PresetsVisionFor(cfg);
        var tokenizer = HasTokenizer(modelDir) ? ChatTokenizer.Load(modelDir) : null;
        var model = new LlavaModel(cfg, visionCfg, device) { Tokenizer = tokenizer };
        try
        {
            using var towerCkpt = towerDir is not null ? Checkpoint.Open(towerDir) : null;
            // A tower folder takes the place of whatever the model checkpoint holds under model.vision_tower.
            using var combined = towerCkpt is not null
                ? Checkpoint.Combine((ckpt, "", k => !k.StartsWith(TowerWrapperPrefix, StringComparison.Ordinal)), (towerCkpt, LlavaModel.TowerPrefix, _ => true))
                : null;
            StateDictLoader.LoadStrict(model.state_dict().Select(kv => (kv.Key, kv.Value)), combined ?? ckpt,
                                       k => IsIgnoredTowerKey(k) || IsTiedHead(cfg.Text, model.Llm, k), "the LLaVA model (LLM, projector and vision tower)");
            CheckTiedHead(cfg.Text, model.Llm, ckpt);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        model.Eval();
        return model;
    }

    /// <summary>The reference's CLIPVisionTower module: the CLIP model sits one level further in, at <see cref="LlavaModel.TowerPrefix"/>.</summary>
    private const string TowerWrapperPrefix = "model.vision_tower.";

    /// <summary>
    /// Tensors under the tower that are no weights of the CLIP vision model: a full CLIP checkpoint's text tower, projections
    /// and logit_scale, and the position_ids buffer that older saves hold.
    /// </summary>
    private static bool IsIgnoredTowerKey(string key) =>
        key.StartsWith(TowerWrapperPrefix, StringComparison.Ordinal)
        && (!key.StartsWith(LlavaModel.TowerPrefix + "vision_model.", StringComparison.Ordinal) || key.EndsWith("embeddings.position_ids", StringComparison.Ordinal));

    /// <summary>A tied model has no lm_head parameter, yet Hugging Face lists lm_head.weight in _tied_weights_keys and many saves hold it.</summary>
    private static bool IsTiedHead(Decoder.DecoderConfig cfg, nn.Module llm, string key) =>
        cfg.TieWordEmbeddings && key == "lm_head.weight" && !llm.state_dict().ContainsKey(key);

    /// <summary>The stored lm_head.weight of a tied model must equal the embedding it is tied to; otherwise the checkpoint is not what the config says.</summary>
    public static void CheckTiedHead(Decoder.DecoderConfig cfg, nn.Module llm, Checkpoint ckpt)
    {
        const string head = "lm_head.weight", embed = "model.embed_tokens.weight";
        if (!IsTiedHead(cfg, llm, head) || !ckpt.Contains(head)) return;
        using var scope = torch.NewDisposeScope();
        var h = ckpt.Read(head);
        var e = ckpt.Read(embed);
        if (!h.shape.SequenceEqual(e.shape))
            throw new CheckpointFormatException($"{ckpt.Source}: tie_word_embeddings is true but {head} has shape ({string.Join(", ", h.shape)}) and {embed} ({string.Join(", ", e.shape)})");
        var diff = (h.to_type(ScalarType.Float32) - e.to_type(ScalarType.Float32)).abs().max().item<float>();
        if (diff != 0)
            throw new CheckpointFormatException($"{ckpt.Source}: tie_word_embeddings is true but {head} differs from {embed} (max |difference| {diff:G4}); set tie_word_embeddings to false for an untied head");
    }

    private static ClipVisionConfig PresetsVisionFor(LlavaConfig cfg) =>
        cfg.Projector.Width == 1024 ? Presets.Presets.ClipVitL336
        : throw new UserInputException($"{cfg.Source}: the tower is embedded in the checkpoint but its config is unknown for mm_hidden_size {cfg.Projector.Width}; pass a vision tower folder");

    private static bool HasTokenizer(string dir) =>
        File.Exists(Path.Combine(dir, "tokenizer.json")) || File.Exists(Path.Combine(dir, "vocab.json")) || File.Exists(Path.Combine(dir, "tokenizer.model"));

    /// <summary>Loads <c>vision_model.*</c>; a full CLIP checkpoint's text tower, projections, logit_scale and position_ids are skipped.</summary>
    public static void LoadVisionTower(ClipVisionModel tower, Checkpoint ckpt, string prefix)
    {
        bool Ignored(string k) =>
            !k.StartsWith(prefix + "vision_model.", StringComparison.Ordinal) || k.EndsWith("embeddings.position_ids", StringComparison.Ordinal);
        StateDictLoader.LoadStrict(tower.state_dict().Select(kv => (prefix + kv.Key, kv.Value)), ckpt, Ignored);
    }
}
