using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using QueCC.Model.Checkpoints;
using QueCC.Model.Clip;
using QueCC.Model.Compression;
using QueCC.Model.Decoder;
using QueCC.Model.Generation;
using QueCC.Model.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace QueCC.Model.Llava;

/// <summary>The LLaVA-specific keys of a checkpoint's config.json (besides the LLM's keys and the projector's mm_* keys).</summary>
public sealed record LlavaSettings
{
    /// <summary>Where the reference loads the tower from (a HF id); informational here, the tower lives in its own folder.</summary>
    [JsonPropertyName("mm_vision_tower")] public string? VisionTower { get; init; }
    [JsonPropertyName("mm_vision_select_layer")] public int SelectLayer { get; init; } = -2;
    [JsonPropertyName("mm_vision_select_feature")] public string SelectFeature { get; init; } = "patch";
    /// <summary>CLIP hidden-state indices QueCC concatenates; the reference hard-codes 12, 16, 22, 23.</summary>
    [JsonPropertyName("mm_vision_multi_level_layers")] public int[]? MultiLevelLayers { get; init; }
    [JsonPropertyName("image_aspect_ratio")] public string ImageAspectRatio { get; init; } = "pad";
    /// <summary>qwen_1_5 or vicuna_v1; absent → from model_type.</summary>
    [JsonPropertyName("conversation_template")] public string? ConversationTemplate { get; init; }
    /// <summary>Where the QueCC query text ends: "first_user_turn" (default) or "authors_fork" (llava_arch.py exactly; see <see cref="Text.QueryRule"/>).</summary>
    [JsonPropertyName("quecc_query_rule")] public string QueryRuleName { get; init; } = "first_user_turn";

    [JsonIgnore] public Text.QueryRule QueryRule => QueryRuleName switch
    {
        "first_user_turn" => Text.QueryRule.FirstUserTurn,
        "authors_fork" => Text.QueryRule.AuthorsFork,
        _ => throw new UserInputException($"quecc_query_rule '{QueryRuleName}': expected first_user_turn or authors_fork"),
    };

    [JsonIgnore] public IReadOnlyList<int> Layers => MultiLevelLayers ?? ClipFeatures.QueccMultiLevelLayers.ToArray();

    public ImageAspectMode AspectMode(string source) => ImageAspectRatio switch
    {
        "pad" => ImageAspectMode.Pad,
        "square" or "resize" or "crop" => ImageAspectMode.CenterCrop,
        _ => throw new UserInputException(source, "image_aspect_ratio", $"'{ImageAspectRatio}'", "pad or square (QueCC rejects anyres)"),
    };
}

/// <summary>Everything config.json of a LLaVA checkpoint folder says, parsed by the three owners of its keys.</summary>
public sealed record LlavaConfig(DecoderConfig Text, ProjectorConfig Projector, LlavaSettings Settings, string Source)
{
    public ConversationStyle Style => Settings.ConversationTemplate is { } t ? Conversation.ParseStyle(t) : Conversation.ForModelType(Text.ModelType);

    public static LlavaConfig Load(string path)
    {
        if (!File.Exists(path)) throw new UserInputException($"{path}: LLaVA config.json not found");
        var json = File.ReadAllText(path);
        var text = DecoderConfig.FromJson(json, path);
        var projector = ProjectorConfig.Parse(json, path);
        var settings = Runtime.JsonInput.Deserialize<LlavaSettings>(Runtime.JsonInput.ParseRoot(json, path), path, "LLaVA settings");
        if (projector.LlmHidden != text.HiddenSize)
            throw new UserInputException(path, "hidden_size", text.HiddenSize.ToString(), $"the projector's output width {projector.LlmHidden}");
        ValidateSettings(settings, path);
        return new LlavaConfig(text, projector, settings, path);
    }

    /// <summary>Settings checked at load so a bad value is reported before any weight is allocated.</summary>
    private static void ValidateSettings(LlavaSettings s, string path)
    {
        _ = s.AspectMode(path);
        if (s.SelectFeature != "patch") throw new UserInputException(path, "mm_vision_select_feature", $"'{s.SelectFeature}'", "patch");
        if (s.MultiLevelLayers is { Length: 0 }) throw new UserInputException(path, "mm_vision_multi_level_layers", "[]", "a non-empty list of CLIP hidden-state indices");
        if (s.QueryRuleName is not ("first_user_turn" or "authors_fork"))
            throw new UserInputException(path, "quecc_query_rule", s.QueryRuleName ?? "null", "first_user_turn or authors_fork");
        if (s.ConversationTemplate is { } t) _ = Conversation.ParseStyle(t);
    }

    /// <summary>One JSON object: LLM keys, then mm_* projector keys, then LLaVA settings (as the reference's config.json).</summary>
    public string ToJson()
    {
        var obj = JsonNode.Parse(Text.ToJson())!.AsObject();
        foreach (var part in new[] { Projector.ToJson(), JsonSerializer.Serialize(Settings, new JsonSerializerOptions { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull }) })
            foreach (var (k, v) in JsonNode.Parse(part)!.AsObject())
                obj[k] = v?.DeepClone();
        obj["architectures"] = new JsonArray(Text.ModelType == "llama" ? "LlavaLlamaForCausalLM" : "LlavaQwen2ForCausalLM");
        return obj.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }
}

/// <summary>One training/eval example: an image and (user, assistant) turns; the first user turn holds the &lt;image&gt; placeholder.</summary>
public sealed record LlavaSample(Tensor Pixels, IReadOnlyList<(string User, string? Assistant)> Turns);

/// <summary>A right-padded batch ready for the LLM: (B, L, D) embeddings, (B, L) mask, (B, L) labels (−100 = no loss).</summary>
public sealed record LlavaBatch(Tensor InputsEmbeds, Tensor AttentionMask, Tensor Labels);

/// <summary>
/// The reference's CLIPVisionTower: a holder whose one child, <c>vision_tower</c>, is the CLIP vision model, which is why
/// LLaVA checkpoints name the tower's tensors <c>model.vision_tower.vision_tower.vision_model.*</c>.
/// </summary>
public sealed class ClipVisionTower : nn.Module
{
    private readonly ClipVisionModel vision_tower;

    public ClipVisionTower(ClipVisionModel tower) : base(nameof(ClipVisionTower))
    {
        vision_tower = tower;
        RegisterComponents();
    }
}

/// <summary>
/// The reference's LlavaLlamaModel / LlavaQwen2Model, the checkpoint's <c>model.*</c>: the decoder body's modules
/// (<c>embed_tokens</c>, <c>layers</c>, <c>norm</c>: the same objects the <see cref="CausalLM"/> runs), then
/// <c>vision_tower</c> and <c>mm_projector</c>, in the reference's order.
/// </summary>
public sealed class LlavaDecoderModel : nn.Module
{
    public LlavaDecoderModel(CausalLM llm, ClipVisionTower tower, MultimodalProjector projector) : base(nameof(LlavaDecoderModel))
    {
        foreach (var (name, child) in llm.Body.named_children()) register_module(name, child);
        register_module("vision_tower", tower);
        register_module("mm_projector", projector);
    }
}

/// <summary>
/// LLaVA-1.5 with a QueCC (or baseline) compressor: CLIP tower → feature selection → compressor + MLP projector →
/// visual tokens spliced into the LLM's input at the &lt;image&gt; placeholder.
/// One module tree whose names are the keys of a LLaVA checkpoint (the reference's LlavaLlamaForCausalLM):
/// <c>model.{embed_tokens, layers.N, norm}.*</c>, <c>model.vision_tower.vision_tower.vision_model.*</c>,
/// <c>model.mm_projector.*</c>, <c>lm_head.weight</c> (untied LLMs only). <see cref="Llm"/>, <see cref="VisionTower"/> and
/// <see cref="Projector"/> are views of the same modules. The folder format stores the tower in its own folder
/// (<see cref="LlavaCheckpoint"/>), its keys without the prefix.
/// </summary>
public sealed class LlavaModel : nn.Module
{
    /// <summary>LLaVA's IMAGE_TOKEN_INDEX: the placeholder id that tokenizer_image_token puts where &lt;image&gt; was.</summary>
    public const int ImageTokenIndex = -200;
    public const string ImagePlaceholder = "<image>";
    public const int IgnoreIndex = -100;
    public const string ProjectorPrefix = "model.mm_projector.";
    /// <summary>Where the CLIP model's own keys (<c>vision_model.*</c>) stand in the tree and in LLaVA's saves.</summary>
    public const string TowerPrefix = "model.vision_tower.vision_tower.";

    private readonly LlavaDecoderModel model;

    public LlavaConfig Config { get; }
    public ClipVisionModel VisionTower { get; }
    public CausalLM Llm { get; }
    public MultimodalProjector Projector { get; }
    public ChatTokenizer? Tokenizer { get; init; }

    public LlavaModel(LlavaConfig config, ClipVisionConfig vision, Device? device = null) : base(nameof(LlavaModel))
    {
        Config = config;
        var count = vision.NumHiddenLayers + 1;
        // The multi-level layers are read only by compressors that use them (QueCC, TokenPacker); LLaVA-1.5's mlp2x_gelu
        // folder with a small tower must not be refused over QueCC's default [12, 16, 22, 23].
        var used = config.Projector.NeedsMultiLevel ? config.Settings.Layers.Append(config.Settings.SelectLayer) : [config.Settings.SelectLayer];
        foreach (var layer in used)
            if (layer < -count || layer >= count)
                throw new UserInputException(config.Source, "mm_vision_select_layer / mm_vision_multi_level_layers", layer.ToString(), $"hidden-state indices in [{-count}, {count - 1}] (the tower has {vision.NumHiddenLayers} layers)");
        if (device?.type != DeviceType.META)
            Runtime.ModelMemory.Check(config.Source, "the LLaVA model (vision tower + LLM + projector)",
                vision.ParameterEstimate() + config.Text.ParameterCount() + config.Projector.ParameterEstimate());
        if (config.Projector.Width != vision.HiddenSize)
            throw new UserInputException($"{config.Source}: mm_hidden_size {config.Projector.Width} differs from the vision tower's hidden_size {vision.HiddenSize}");
        if (config.Projector.InputTokenCount is { } n && n != vision.NumPatches)
            throw new UserInputException($"{config.Source}: mm_vision_output_token_count {n} differs from the tower's {vision.NumPatches} patches");
        if (config.Projector.NeedsMultiLevel && config.Projector.MultiLevelSize != vision.HiddenSize * config.Settings.Layers.Count)
            throw new UserInputException($"{config.Source}: mm_vision_multi_level_size {config.Projector.MultiLevelSize} ≠ {vision.HiddenSize} × {config.Settings.Layers.Count} multi-level layers");
        if (config.Projector.NeedsText && config.Projector.TextSize != config.Text.HiddenSize)
            throw new UserInputException($"{config.Source}: mm_vision_output_text_embedding_size {config.Projector.TextSize} must equal the LLM hidden_size {config.Text.HiddenSize} (the query embedding is the LLM's hidden state)");
        VisionTower = new ClipVisionModel(vision, device);
        Llm = CausalLM.Create(config.Text, device);
        Projector = new MultimodalProjector(config.Projector, device);
        model = new LlavaDecoderModel(Llm, new ClipVisionTower(VisionTower), Projector);
        // By hand, not RegisterComponents: the properties' backing fields hold modules that would become children a second time.
        register_module("model", model);
        if (Llm.Head is { } head) register_module("lm_head", head);
    }

    /// <summary>Loads a LLaVA folder (safetensors or .bin, tower from <paramref name="visionTowerDir"/> or the folder); see <see cref="Checkpoints.Pretrained.Llava"/>.</summary>
    public static LlavaModel FromPretrained(string dir, Device? device = null, ScalarType? dtype = null, string? visionTowerDir = null) =>
        Checkpoints.Pretrained.Llava(dir, device, dtype, visionTowerDir);

    public ClipImageProcessorConfig ImageProcessorConfig => ClipImageProcessorConfig.ForImageSize(VisionTower.Config.ImageSize);

    public void Eval() => eval();

    /// <summary>The tree, and the <see cref="Llm"/> object, whose body and head are not in the tree themselves (only their modules are).</summary>
    public override void train(bool train = true)
    {
        base.train(train);
        Llm.train(train);
    }

    /// <summary>
    /// Casts the floating-point weights of the whole tree to <paramref name="dtype"/>. TorchSharp replaces the
    /// Parameter objects (as torch's Module.to does), so take parameter references after this call.
    /// </summary>
    public void ToDType(ScalarType dtype) => this.to(dtype);

    /// <summary>
    /// The tensors of the model folder's weight files, in the order they have always been written: the LLM's
    /// (<c>model.*</c>, <c>lm_head.weight</c>), then <c>model.mm_projector.*</c>. The tower's go to its own folder.
    /// </summary>
    public IEnumerable<(string Key, Tensor Tensor)> LanguageStateDict()
    {
        var folder = state_dict().Where(kv => !kv.Key.StartsWith(TowerPrefix, StringComparison.Ordinal)).ToList();
        bool IsProjector(string k) => k.StartsWith(ProjectorPrefix, StringComparison.Ordinal);
        return folder.Where(kv => !IsProjector(kv.Key)).Concat(folder.Where(kv => IsProjector(kv.Key))).Select(kv => (kv.Key, kv.Value));
    }

    /// <summary>
    /// The QueCC text query: the LLM's last-layer (final-norm) hidden state at the last non-padding token of each
    /// tokenized user query, without gradient. (B, 1, D).
    /// </summary>
    public Tensor QueryEmbedding(IReadOnlyList<IReadOnlyList<int>> queryIds)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var dev = Llm.parameters().First().device;
        int b = queryIds.Count, len = Math.Max(1, queryIds.Max(q => q.Count));
        var ids = new long[b, len];
        var mask = new long[b, len];
        var last = new long[b];
        for (int i = 0; i < b; i++)
        {
            if (queryIds[i].Count == 0) throw new UserInputException($"sample {i}: the user query is empty; QueCC needs query text");
            for (int j = 0; j < queryIds[i].Count; j++) { ids[i, j] = queryIds[i][j]; mask[i, j] = 1; }
            last[i] = queryIds[i].Count - 1;
        }
        var hidden = Llm.Forward(inputIds: torch.tensor(ids, device: dev), attentionMask: torch.tensor(mask, device: dev)).LastHiddenState; // (B, L, D)
        var idx = torch.tensor(last, device: dev).view(b, 1, 1).expand(b, 1, hidden.shape[2]);
        return hidden.gather(1, idx).MoveToOuterDisposeScope(); // (B, 1, D)
    }

    /// <summary>Visual tokens (B, V, D) for preprocessed images (B, 3, S, S) and, for QueCC, the query embedding (B, 1, D).</summary>
    public Tensor EncodeImages(Tensor pixels, Tensor? queryEmbedding = null)
    {
        using var scope = torch.NewDisposeScope();
        var (x, multi) = TowerFeatures(pixels);
        return EncodeFeatures(x, multi, queryEmbedding).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// What the frozen tower hands the projector for preprocessed images (B, 3, S, S), without gradient: the selected
    /// layer's patch tokens (B, N, C) and, where the compressor reads them, the multi-level features (B, N, C·L), else null.
    /// </summary>
    public (Tensor X, Tensor? Multi) TowerFeatures(Tensor pixels)
    {
        using var scope = torch.NewDisposeScope();
        if (Config.Settings.SelectFeature != "patch")
            throw new UserInputException($"{Config.Source}: mm_vision_select_feature '{Config.Settings.SelectFeature}' is not supported; expected patch");
        ClipVisionOutput outp;
        using (torch.no_grad()) outp = VisionTower.ForwardAll(pixels); // the tower is frozen in both stages
        var x = ClipFeatures.Select(outp.HiddenStates, Config.Settings.SelectLayer);                                            // (B, N, C)
        var multi = Config.Projector.NeedsMultiLevel ? ClipFeatures.MultiLevel(outp.HiddenStates, Config.Settings.Layers) : null; // (B, N, C·L)
        return (x.MoveToOuterDisposeScope(), multi?.MoveToOuterDisposeScope());
    }

    /// <summary>Visual tokens (B, V, D) from the tower's features (<see cref="TowerFeatures"/>) and, for QueCC, the query embedding (B, 1, D).</summary>
    public Tensor EncodeFeatures(Tensor x, Tensor? multi, Tensor? queryEmbedding = null)
    {
        using var scope = torch.NewDisposeScope();
        var p = Projector.parameters().FirstOrDefault();
        if (p is not null) { x = x.to_type(p.dtype); multi = multi?.to_type(p.dtype); queryEmbedding = queryEmbedding?.to_type(p.dtype); }
        return Projector.Forward(x, multi, Config.Projector.NeedsText ? queryEmbedding : null).MoveToOuterDisposeScope();
    }

    /// <summary>LLaVA's tokenizer_image_token: text chunks around each &lt;image&gt; tokenized separately, joined by <see cref="ImageTokenIndex"/>; BOS first where the tokenizer adds one.</summary>
    public static List<int> TokenizeWithImage(ChatTokenizer tok, string text) => ConversationEncoder.TokenizerImageToken(tok, text);

    /// <summary>The first user turn without the placeholder (the data reader requires it to be non-empty; the query itself follows the reference's rule in <see cref="ConversationEncoder"/>).</summary>
    public static string QueryText(string firstUserTurn) => firstUserTurn.Replace(ImagePlaceholder, "").Trim();

    private ChatTokenizer Tok => Tokenizer ?? throw new InvalidOperationException("this model was built without a tokenizer");

    /// <summary>Token ids and labels of one conversation through the template, exactly as the reference's preprocess function (see <see cref="ConversationEncoder"/>).</summary>
    public static (List<int> Ids, List<int> Labels) TokenizeConversation(ChatTokenizer tok, ConversationStyle style, IReadOnlyList<(string User, string? Assistant)> turns)
    {
        var e = ConversationEncoder.Encode(tok, style, turns);
        return (e.InputIds, e.Labels);
    }

    /// <summary>Visual tokens per image this model splices in (the compressor's output count, or every patch without one).</summary>
    public int VisualTokenCount => Config.Projector.OutputTokenCount > 0 ? Config.Projector.OutputTokenCount : VisionTower.Config.NumPatches;

    /// <summary>
    /// Token ids and labels of each sample (assistant answers supervised, everything else −100), visual tokens spliced
    /// in, right-padded. Throws when a sample's number of &lt;image&gt; placeholders differs from its one image.
    /// </summary>
    public LlavaBatch Prepare(IReadOnlyList<LlavaSample> samples)
    {
        if (samples.Count == 0) throw new ArgumentException("empty batch");
        using var scope = torch.NewDisposeScope();
        var tok = Tok;
        var encoded = samples.Select(s => ConversationEncoder.Encode(tok, Config.Style, s.Turns, Config.Settings.QueryRule)).ToList();
        var pixels = torch.stack(samples.Select(s => s.Pixels).ToArray());
        var batch = PrepareTokenized(pixels, encoded.Select(e => e.InputIds).ToList(), encoded.Select(e => e.Labels).ToList(), encoded.Select(e => e.QueryIds).ToList());
        return new LlavaBatch(batch.InputsEmbeds.MoveToOuterDisposeScope(), batch.AttentionMask.MoveToOuterDisposeScope(), batch.Labels.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// <see cref="Prepare"/> for samples already tokenized (and possibly truncated) by the caller: pixels (B, 3, S, S),
    /// ids/labels with one <see cref="ImageTokenIndex"/> each, and the token ids of each QueCC query text.
    /// </summary>
    public LlavaBatch PrepareTokenized(Tensor pixels, IReadOnlyList<List<int>> ids, IReadOnlyList<List<int>> labels, IReadOnlyList<IReadOnlyList<int>> queryIds)
    {
        using var scope = torch.NewDisposeScope();
        CheckOneImageEach(ids);
        var (x, multi) = TowerFeatures(pixels.to(VisionTower.parameters().First().device));
        var batch = FromFeatures(x, multi, ids, labels, queryIds);
        return new LlavaBatch(batch.InputsEmbeds.MoveToOuterDisposeScope(), batch.AttentionMask.MoveToOuterDisposeScope(), batch.Labels.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// <see cref="PrepareTokenized"/> from the tower's features (B, N, C) and (B, N, C·L) or null, as <see cref="TowerFeatures"/>
    /// gives them: the trainer's path when it keeps each image's features (the tower is frozen, so they never change).
    /// </summary>
    public LlavaBatch PrepareFromFeatures(Tensor x, Tensor? multi, IReadOnlyList<List<int>> ids, IReadOnlyList<List<int>> labels, IReadOnlyList<IReadOnlyList<int>> queryIds)
    {
        CheckOneImageEach(ids);
        return FromFeatures(x, multi, ids, labels, queryIds);
    }

    // The query, the projector and the splice; callers have checked the placeholders.
    private LlavaBatch FromFeatures(Tensor x, Tensor? multi, IReadOnlyList<List<int>> ids, IReadOnlyList<List<int>> labels, IReadOnlyList<IReadOnlyList<int>> queryIds)
    {
        using var scope = torch.NewDisposeScope();
        var query = Config.Projector.NeedsText ? QueryEmbedding(queryIds) : null;
        var visual = EncodeFeatures(x, multi, query); // (B, V, D)
        var batch = Splice(ids, labels, visual);
        return new LlavaBatch(batch.InputsEmbeds.MoveToOuterDisposeScope(), batch.AttentionMask.MoveToOuterDisposeScope(), batch.Labels.MoveToOuterDisposeScope());
    }

    // The placeholder count first: a prompt with two images has a meaningless query, which would be reported instead.
    private static void CheckOneImageEach(IReadOnlyList<List<int>> ids)
    {
        for (int s = 0; s < ids.Count; s++)
            if (ids[s].Count(t => t == ImageTokenIndex) is var n and not 1)
                throw new UserInputException($"sample {s}: the prompt has {n} {ImagePlaceholder} placeholders but 1 image was given (QueCC takes exactly one image per sample)");
    }

    /// <summary>Replaces each sample's single <see cref="ImageTokenIndex"/> by its V visual tokens and right-pads.</summary>
    public LlavaBatch Splice(IReadOnlyList<List<int>> ids, IReadOnlyList<List<int>> labels, Tensor visual)
    {
        using var scope = torch.NewDisposeScope();
        int b = ids.Count;
        if (visual.shape[0] != b) throw new ArgumentException($"{visual.shape[0]} images for {b} samples");
        var dev = visual.device;
        var embeds = new List<Tensor>();
        var labs = new List<long[]>();
        for (int s = 0; s < b; s++)
        {
            int placeholders = ids[s].Count(t => t == ImageTokenIndex);
            if (placeholders != 1)
                throw new UserInputException($"sample {s}: the prompt has {placeholders} {ImagePlaceholder} placeholders but 1 image was given (QueCC takes exactly one image per sample)");
            int at = ids[s].IndexOf(ImageTokenIndex);
            Tensor Embed(IEnumerable<int> t) => Llm.EmbedTokens(torch.tensor(t.Select(i => (long)i).ToArray(), dtype: ScalarType.Int64, device: dev)).to_type(visual.dtype); // (T, D)
            var v = visual[s];                                                                                      // (V, D)
            embeds.Add(torch.cat(new[] { Embed(ids[s].Take(at)), v, Embed(ids[s].Skip(at + 1)) }, 0));             // (L_s, D)
            labs.Add(labels[s].Take(at).Select(l => (long)l)
                .Concat(Enumerable.Repeat((long)IgnoreIndex, (int)v.shape[0]))
                .Concat(labels[s].Skip(at + 1).Select(l => (long)l)).ToArray());
        }
        long maxLen = embeds.Max(e => e.shape[0]), d = visual.shape[2];
        var x = torch.zeros(b, maxLen, d, dtype: visual.dtype, device: dev);
        var mask = torch.zeros(b, maxLen, dtype: ScalarType.Int64, device: dev);
        var lab = torch.full(b, maxLen, IgnoreIndex, dtype: ScalarType.Int64, device: dev);
        for (int s = 0; s < b; s++)
        {
            long n = embeds[s].shape[0];
            x[s].narrow(0, 0, n).copy_(embeds[s]);
            mask[s].narrow(0, 0, n).fill_(1);
            lab[s].narrow(0, 0, n).copy_(torch.tensor(labs[s], device: dev));
        }
        return new LlavaBatch(x.MoveToOuterDisposeScope(), mask.MoveToOuterDisposeScope(), lab.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Next-token cross-entropy over supervised positions (HF shift: position t predicts label t+1): their mean, or
    /// their sum with <paramref name="reduction"/> Sum (the trainer normalises by the tokens of a whole accumulation window).
    /// </summary>
    public Tensor Loss(LlavaBatch batch, nn.Reduction reduction = nn.Reduction.Mean)
    {
        using var scope = torch.NewDisposeScope();
        var logits = Llm.Forward(inputsEmbeds: batch.InputsEmbeds, attentionMask: batch.AttentionMask).Logits; // (B, L, V)
        long l = logits.shape[1];
        var pred = logits.narrow(1, 0, l - 1).reshape(-1, logits.shape[2]).to_type(ScalarType.Float32);
        var target = batch.Labels.narrow(1, 1, l - 1).reshape(-1);
        return nn.functional.cross_entropy(pred, target, ignore_index: IgnoreIndex, reduction: reduction).MoveToOuterDisposeScope();
    }

    /// <summary>Answers one question about one image (batch of one; the prompt gets "&lt;image&gt;\n" in front when it has no placeholder).</summary>
    public string Answer(RgbImage image, string question, GenerationOptions options)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var tok = Tok;
        var user = question.Contains(ImagePlaceholder) ? question : ImagePlaceholder + "\n" + question;
        var encoded = ConversationEncoder.Encode(tok, Config.Style, new[] { (user, (string?)null) }, Config.Settings.QueryRule);
        var ids = encoded.InputIds;
        var pixels = ClipImageProcessor.Preprocess(image, Config.Settings.AspectMode(Config.Source), ImageProcessorConfig).unsqueeze(0)
            .to(VisionTower.parameters().First().device);
        var query = Config.Projector.NeedsText ? QueryEmbedding(new[] { encoded.QueryIds }) : null;
        var visual = EncodeImages(pixels, query);
        var batch = Splice(new[] { ids }, new[] { ids.Select(_ => IgnoreIndex).ToList() }, visual);
        var stops = new HashSet<int>(options.StopTokenIds);
        if (tok.EosTokenId is { } eos) stops.Add(eos);
        foreach (var s in Conversation.StopStrings(Config.Style)) if (tok.TokenToId(s) is { } id) stops.Add(id);
        var result = TextGenerator.GenerateFromEmbeds(Llm, batch.InputsEmbeds.to_type(Llm.parameters().First().dtype), options with { StopTokenIds = stops });
        return tok.Decode(result.Tokens).Trim();
    }

    /// <summary>
    /// <see cref="Answer"/> for several image–question pairs in one batch: prompts left-padded, one KV cache, each
    /// answer ending at its own stop token (<see cref="TextGenerator.GenerateBatchFromEmbeds"/>). Greedy answers equal
    /// <see cref="Answer"/>'s one by one.
    /// </summary>
    public string[] AnswerBatch(IReadOnlyList<RgbImage> images, IReadOnlyList<string> questions, GenerationOptions options)
    {
        if (images.Count != questions.Count) throw new ArgumentException($"{images.Count} images for {questions.Count} questions");
        if (images.Count == 0) return Array.Empty<string>();
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var tok = Tok;
        var users = questions.Select(q => q.Contains(ImagePlaceholder) ? q : ImagePlaceholder + "\n" + q).ToList();
        var encoded = users.Select(u => ConversationEncoder.Encode(tok, Config.Style, new[] { (u, (string?)null) }, Config.Settings.QueryRule)).ToList();
        var ids = encoded.Select(e => e.InputIds).ToList();
        var dev = VisionTower.parameters().First().device;
        var pixels = torch.stack(images.Select(im => ClipImageProcessor.Preprocess(im, Config.Settings.AspectMode(Config.Source), ImageProcessorConfig)).ToArray()).to(dev); // (B, 3, S, S)
        var query = Config.Projector.NeedsText ? QueryEmbedding(encoded.Select(e => e.QueryIds).ToList()) : null;
        var visual = EncodeImages(pixels, query);
        var right = Splice(ids, ids.Select(s => s.Select(_ => IgnoreIndex).ToList()).ToList(), visual);
        // Splice pads on the right (training); generation continues every row at the end, so move the padding left.
        long b = right.InputsEmbeds.shape[0], len = right.InputsEmbeds.shape[1];
        var x = torch.zeros_like(right.InputsEmbeds);
        var mask = torch.zeros_like(right.AttentionMask);
        for (long s = 0; s < b; s++)
        {
            long n = right.AttentionMask[s].sum().ToInt64();
            x[s].narrow(0, len - n, n).copy_(right.InputsEmbeds[s].narrow(0, 0, n));
            mask[s].narrow(0, len - n, n).fill_(1);
        }
        var stops = new HashSet<int>(options.StopTokenIds);
        if (tok.EosTokenId is { } eos) stops.Add(eos);
        foreach (var s in Conversation.StopStrings(Config.Style)) if (tok.TokenToId(s) is { } id) stops.Add(id);
        var results = TextGenerator.GenerateBatchFromEmbeds(Llm, x.to_type(Llm.parameters().First().dtype), mask, options with { StopTokenIds = stops });
        return results.Select(r => tok.Decode(r.Tokens).Trim()).ToArray();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) Llm.Dispose(); // the body and head objects, which the tree does not hold
        base.Dispose(disposing);
    }
}
