using QueCC.Model.Runtime;
using System.Text.Json;
using System.Text.Json.Serialization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace QueCC.Model.Decoder;

/// <summary>Fields shared by HF Qwen2Config and LlamaConfig (<see cref="Qwen2Config"/>, <see cref="LlamaConfig"/>); one set of decoder blocks serves both (they differ in biases and defaults).</summary>
public abstract record DecoderConfig
{
    [JsonPropertyName("model_type")] public string ModelType { get; init; } = "";
    [JsonPropertyName("vocab_size")] public int VocabSize { get; init; }
    [JsonPropertyName("hidden_size")] public int HiddenSize { get; init; }
    [JsonPropertyName("intermediate_size")] public int IntermediateSize { get; init; }
    [JsonPropertyName("num_hidden_layers")] public int NumHiddenLayers { get; init; }
    [JsonPropertyName("num_attention_heads")] public int NumAttentionHeads { get; init; }
    /// <summary>Null in old Llama configs, meaning plain multi-head attention.</summary>
    [JsonPropertyName("num_key_value_heads")] public int? NumKeyValueHeads { get; init; }
    [JsonPropertyName("hidden_act")] public string HiddenAct { get; init; } = "silu";
    [JsonPropertyName("max_position_embeddings")] public int MaxPositionEmbeddings { get; init; }
    [JsonPropertyName("rms_norm_eps")] public double RmsNormEps { get; init; } = 1e-6;
    [JsonPropertyName("rope_theta")] public double RopeTheta { get; init; } = 10000.0;
    [JsonPropertyName("rope_scaling")] public JsonElement? RopeScaling { get; init; }
    [JsonPropertyName("tie_word_embeddings")] public bool TieWordEmbeddings { get; init; }
    [JsonPropertyName("torch_dtype")] public string? TorchDtype { get; init; }
    [JsonPropertyName("bos_token_id")] public int? BosTokenId { get; init; }
    [JsonPropertyName("eos_token_id"), JsonConverter(typeof(IntOrIntArrayConverter))] public int[]? EosTokenId { get; init; }

    /// <summary>HF's optional <c>head_dim</c> (Llama, Mistral-style configs); absent → hidden_size / num_attention_heads.</summary>
    [JsonPropertyName("head_dim")] public int? ExplicitHeadDim { get; init; }

    /// <summary>Whether q/k/v projections carry a bias (always for Qwen2, <c>attention_bias</c> for Llama).</summary>
    [JsonIgnore] public abstract bool QkvBias { get; }
    /// <summary>Whether o_proj carries a bias (Llama's <c>attention_bias</c> covers it; Qwen2's o_proj never has one).</summary>
    [JsonIgnore] public virtual bool OutputBias => false;
    /// <summary>Whether gate/up/down projections carry a bias (Llama's <c>mlp_bias</c>).</summary>
    [JsonIgnore] public virtual bool MlpBiasEnabled => false;
    [JsonIgnore] public int KeyValueHeads => NumKeyValueHeads ?? NumAttentionHeads;
    [JsonIgnore] public int HeadDim => ExplicitHeadDim ?? HiddenSize / NumAttentionHeads;

    /// <summary>LLM parameters N from the shapes alone (the paper's cost model 2·N·(Q+V) needs it for configs with no weights).</summary>
    public long ParameterCount() => checked(ParameterCountUnchecked());

    private long ParameterCountUnchecked()
    {
        checked
        {
        long h = HiddenSize, q = (long)NumAttentionHeads * HeadDim, kv = (long)KeyValueHeads * HeadDim, inter = IntermediateSize, vocab = VocabSize;
        long attention = h * q + 2 * h * kv + q * h + (QkvBias ? q + 2 * kv : 0) + (OutputBias ? h : 0); // q, k, v, o (+ biases)
        long perLayer = attention + 3 * h * inter + (MlpBiasEnabled ? 2 * inter + h : 0) + 2 * h;       // + gate/up/down (+ biases) + two RMSNorms
        return vocab * h * (TieWordEmbeddings ? 1 : 2) + NumHiddenLayers * perLayer + h;
        }
    }

    public DecoderConfig Validate(string source = "decoder config")
    {
        UserInputException Bad(string key, object? value, string expected) => new(source, key, value?.ToString() ?? "null", expected);
        void Positive(string key, int v) { if (v <= 0) throw Bad(key, v, "a positive integer"); }
        Positive("vocab_size", VocabSize); Positive("hidden_size", HiddenSize); Positive("intermediate_size", IntermediateSize);
        Positive("num_hidden_layers", NumHiddenLayers); Positive("num_attention_heads", NumAttentionHeads); Positive("num_key_value_heads", KeyValueHeads);
        Positive("max_position_embeddings", MaxPositionEmbeddings);
        if (ExplicitHeadDim is { } hd && hd <= 0) throw Bad("head_dim", hd, "a positive integer");
        if (ExplicitHeadDim is null && HiddenSize % NumAttentionHeads != 0)
            throw Bad("hidden_size", HiddenSize, $"a multiple of num_attention_heads {NumAttentionHeads} (or an explicit head_dim)");
        if (HeadDim % 2 != 0)
            throw Bad(ExplicitHeadDim is null ? "num_attention_heads" : "head_dim", ExplicitHeadDim ?? NumAttentionHeads, $"a value giving an even head dim for RoPE (head dim = {HeadDim})");
        if (NumAttentionHeads % KeyValueHeads != 0)
            throw Bad("num_key_value_heads", KeyValueHeads, $"a divisor of num_attention_heads {NumAttentionHeads}");
        if (HiddenAct != "silu")
            throw Bad("hidden_act", $"'{HiddenAct}'", "silu");
        if (RopeScaling is { ValueKind: not JsonValueKind.Null })
            throw Bad("rope_scaling", RopeScaling.Value.GetRawText(), "null or absent (rope scaling is not supported)");
        if (!(RmsNormEps > 0 && double.IsFinite(RmsNormEps))) throw Bad("rms_norm_eps", RmsNormEps, "a positive finite number");
        if (!(RopeTheta > 1 && double.IsFinite(RopeTheta))) throw Bad("rope_theta", RopeTheta, "a finite number > 1");
        if (BosTokenId is { } bos && (bos < 0 || bos >= VocabSize)) throw Bad("bos_token_id", bos, $"a token id in [0, vocab_size {VocabSize})");
        foreach (var eos in EosTokenId ?? [])
            if (eos < 0 || eos >= VocabSize) throw Bad("eos_token_id", eos, $"token ids in [0, vocab_size {VocabSize})");
        if (TorchDtype is not (null or "float32" or "float16" or "bfloat16" or "auto"))
            throw Bad("torch_dtype", $"'{TorchDtype}'", "float32, float16, bfloat16 or auto");
        try { _ = ParameterCount(); }
        catch (OverflowException) { throw Bad("hidden_size", HiddenSize, $"sizes whose parameter count fits in 64 bits (vocab_size {VocabSize}, intermediate_size {IntermediateSize}, num_hidden_layers {NumHiddenLayers})"); }
        return this;
    }

    /// <summary>Parses a HF config.json; <c>model_type</c> picks the record (qwen2 / llama, and LLaVA's llava_qwen2 / llava_llama / llava).</summary>
    public static DecoderConfig FromJson(string json, string source = "config.json")
    {
        var root = Runtime.JsonInput.ParseRoot(json, source);
        if (root.ValueKind != JsonValueKind.Object) throw new UserInputException($"{source}: decoder config is a JSON {root.ValueKind.ToString().ToLowerInvariant()}; expected an object");
        string modelType = root.TryGetProperty("model_type", out var mt) && mt.ValueKind == JsonValueKind.String ? mt.GetString()! : mt.ValueKind == JsonValueKind.Undefined ? "" : mt.GetRawText();
        DecoderConfig cfg = modelType switch
        {
            "qwen2" or "llava_qwen2" or "llava_qwen" => Runtime.JsonInput.Deserialize<Qwen2Config>(root, source, "decoder config"),
            "llama" or "llava_llama" or "llava" => Runtime.JsonInput.Deserialize<LlamaConfig>(root, source, "decoder config"),
            _ => throw new UserInputException(source, "model_type", $"'{modelType}'", "qwen2, llama, llava_qwen2 or llava_llama"),
        };
        return cfg.Validate(source);
    }

    public static DecoderConfig Load(string path)
    {
        if (!File.Exists(path)) throw new UserInputException($"{path}: decoder config file not found");
        return FromJson(File.ReadAllText(path), path);
    }

    public string ToJson() => JsonSerializer.Serialize<object>(this, new JsonSerializerOptions { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull });
}

internal sealed class IntOrIntArrayConverter : JsonConverter<int[]>
{
    public override int[]? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.Null) return null;
        if (reader.TokenType == JsonTokenType.Number)
            return reader.TryGetInt32(out var id) ? new[] { id } : throw new JsonException("The JSON value could not be converted to System.Int32.");
        return JsonSerializer.Deserialize<int[]>(ref reader);
    }

    public override void Write(Utf8JsonWriter writer, int[] value, JsonSerializerOptions options)
    {
        if (value.Length == 1) writer.WriteNumberValue(value[0]);
        else JsonSerializer.Serialize(writer, value);
    }
}

/// <summary>Per-layer keys and values of the tokens seen so far. Passed into and updated by <see cref="CausalLM.Forward"/>; owns its tensors.</summary>
public sealed class KvCache : IDisposable
{
    private readonly Tensor?[] _keys, _values;

    public KvCache(int numLayers) { _keys = new Tensor?[numLayers]; _values = new Tensor?[numLayers]; }

    /// <summary>Number of cached positions (including padding positions).</summary>
    public long Length => _keys[0]?.shape[2] ?? 0;

    /// <summary>Bytes the cached keys and values occupy (all layers).</summary>
    public long Bytes => _keys.Concat(_values).Sum(t => t is null ? 0 : t.numel() * t.ElementSize);

    /// <summary>Appends this step's (B, KVH, T, D) keys/values for a layer and returns the full (B, KVH, P+T, D) ones.</summary>
    internal (Tensor K, Tensor V) Append(int layer, Tensor k, Tensor v)
    {
        var newK = _keys[layer] is { } oldK ? torch.cat(new[] { oldK, k }, 2) : k.alias();
        var newV = _values[layer] is { } oldV ? torch.cat(new[] { oldV, v }, 2) : v.alias();
        _keys[layer]?.Dispose(); _values[layer]?.Dispose();
        _keys[layer] = newK.DetachFromDisposeScope();
        _values[layer] = newV.DetachFromDisposeScope();
        return (newK, newV);
    }

    public void Dispose()
    {
        for (int i = 0; i < _keys.Length; i++) { _keys[i]?.Dispose(); _values[i]?.Dispose(); _keys[i] = _values[i] = null; }
    }
}

/// <summary>HF LlamaRMSNorm / Qwen2RMSNorm: normalise in float32, scale in the input dtype.</summary>
public sealed class RmsNorm : Module<Tensor, Tensor>
{
    private readonly double _eps;
    private readonly Parameter weight;

    public RmsNorm(int size, double eps, Device? device = null) : base(nameof(RmsNorm))
    {
        _eps = eps;
        weight = new Parameter(torch.ones(size, device: device));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        var dtype = x.dtype;
        var h = x.to_type(ScalarType.Float32);
        h = h * torch.rsqrt(h.pow(2).mean(new long[] { -1 }, keepdim: true).Plus(_eps));
        return weight * h.to_type(dtype);
    }
}

/// <summary>RoPE with HF's rotate_half convention (first half / second half of each head, not interleaved pairs).</summary>
public static class Rotary
{
    /// <summary>cos, sin of shape (B, 1, T, D) for (B, T) positions.</summary>
    public static (Tensor Cos, Tensor Sin) CosSin(Tensor positionIds, int headDim, double theta, ScalarType dtype)
    {
        var invFreq = torch.pow(theta, torch.arange(0, headDim, 2, dtype: ScalarType.Int64, device: positionIds.device).to_type(ScalarType.Float32).Over(headDim)).reciprocal(); // (D/2)
        var freqs = positionIds.to_type(ScalarType.Float32).unsqueeze(-1) * invFreq; // (B, T, D/2)
        var emb = torch.cat(new[] { freqs, freqs }, -1);                              // (B, T, D)
        return (emb.cos().to_type(dtype).unsqueeze(1), emb.sin().to_type(dtype).unsqueeze(1));
    }

    public static Tensor RotateHalf(Tensor x)
    {
        long half = x.shape[^1] / 2;
        return torch.cat(new[] { -x.narrow(-1, half, half), x.narrow(-1, 0, half) }, -1);
    }

    /// <summary>x (B, H, T, D) rotated by cos/sin (B, 1, T, D).</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin) => (x * cos).Plus(RotateHalf(x) * sin);
}

/// <summary>Additive attention masks: 0 where allowed, the dtype's minimum where not (finite, so fully padded rows stay NaN-free).</summary>
public static class AttentionMasks
{
    /// <summary>(B, 1, T, P+T): query i (absolute position P+i) sees key j iff j ≤ P+i and attentionMask[b, j] ≠ 0.</summary>
    public static Tensor Causal(long batch, long queryLen, long pastLen, Tensor? attentionMask, ScalarType dtype, Device device)
    {
        long total = pastLen + queryLen;
        var q = torch.arange(pastLen, total, dtype: ScalarType.Int64, device: device).unsqueeze(1); // (T, 1)
        var k = torch.arange(0, total, dtype: ScalarType.Int64, device: device).unsqueeze(0);       // (1, S)
        var allowed = k.le(q).unsqueeze(0).unsqueeze(0).expand(batch, 1, queryLen, total);         // (B, 1, T, S)
        if (attentionMask is not null)
        {
            if (attentionMask.shape[0] != batch || attentionMask.shape[1] != total)
                throw new ArgumentException($"attention mask has shape [{string.Join(", ", attentionMask.shape)}]; expected [{batch}, {total}] (past {pastLen} + new {queryLen} tokens)");
            allowed = allowed.logical_and(attentionMask.ne(0).view(batch, 1, 1, total));
        }
        var min = torch.finfo(dtype).min;
        return torch.zeros(allowed.shape, dtype: dtype, device: device).masked_fill(allowed.logical_not(), min);
    }
}

public sealed class DecoderAttention : Module<Tensor, Tensor>
{
    private readonly DecoderConfig _cfg;
    private readonly Linear q_proj, k_proj, v_proj, o_proj;

    public DecoderAttention(DecoderConfig cfg, Device? device = null) : base(nameof(DecoderAttention))
    {
        _cfg = cfg;
        int h = cfg.NumAttentionHeads, kvh = cfg.KeyValueHeads, d = cfg.HeadDim;
        q_proj = Linear(cfg.HiddenSize, h * d, hasBias: cfg.QkvBias, device: device);
        k_proj = Linear(cfg.HiddenSize, kvh * d, hasBias: cfg.QkvBias, device: device);
        v_proj = Linear(cfg.HiddenSize, kvh * d, hasBias: cfg.QkvBias, device: device);
        o_proj = Linear(h * d, cfg.HiddenSize, hasBias: cfg.OutputBias, device: device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => throw new NotSupportedException("call Forward with rotary tables and mask");

    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, Tensor mask, KvCache? cache, int layerIndex) // x (B, T, C)
    {
        long b = x.shape[0], t = x.shape[1];
        int h = _cfg.NumAttentionHeads, kvh = _cfg.KeyValueHeads, d = _cfg.HeadDim;
        var q = q_proj.forward(x).view(b, t, h, d).transpose(1, 2);   // (B, H, T, D)
        var k = k_proj.forward(x).view(b, t, kvh, d).transpose(1, 2); // (B, KVH, T, D)
        var v = v_proj.forward(x).view(b, t, kvh, d).transpose(1, 2);
        q = Rotary.Apply(q, cos, sin);
        k = Rotary.Apply(k, cos, sin);
        if (cache is not null) (k, v) = cache.Append(layerIndex, k, v); // (B, KVH, P+T, D)
        if (kvh != h)
        {
            // HF repeat_kv: query head i uses key/value head i / (H / KVH)
            k = k.repeat_interleave(h / kvh, 1); // (B, H, S, D)
            v = v.repeat_interleave(h / kvh, 1);
        }
        var y = functional.scaled_dot_product_attention(q, k, v, mask); // (B, H, T, D)
        y = y.transpose(1, 2).reshape(b, t, h * d);                      // (B, T, C)
        return o_proj.forward(y);
    }
}

public sealed class DecoderMlp : Module<Tensor, Tensor>
{
    private readonly Linear gate_proj, up_proj, down_proj;

    public DecoderMlp(DecoderConfig cfg, Device? device = null) : base(nameof(DecoderMlp))
    {
        gate_proj = Linear(cfg.HiddenSize, cfg.IntermediateSize, hasBias: cfg.MlpBiasEnabled, device: device);
        up_proj = Linear(cfg.HiddenSize, cfg.IntermediateSize, hasBias: cfg.MlpBiasEnabled, device: device);
        down_proj = Linear(cfg.IntermediateSize, cfg.HiddenSize, hasBias: cfg.MlpBiasEnabled, device: device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => down_proj.forward(functional.silu(gate_proj.forward(x)) * up_proj.forward(x));
}

public sealed class DecoderLayer : Module<Tensor, Tensor>
{
    private readonly RmsNorm input_layernorm;
    private readonly DecoderAttention self_attn;
    private readonly RmsNorm post_attention_layernorm;
    private readonly DecoderMlp mlp;

    public DecoderLayer(DecoderConfig cfg, Device? device = null) : base(nameof(DecoderLayer))
    {
        input_layernorm = new RmsNorm(cfg.HiddenSize, cfg.RmsNormEps, device);
        self_attn = new DecoderAttention(cfg, device);
        post_attention_layernorm = new RmsNorm(cfg.HiddenSize, cfg.RmsNormEps, device);
        mlp = new DecoderMlp(cfg, device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => throw new NotSupportedException("call Forward with rotary tables and mask");

    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, Tensor mask, KvCache? cache, int layerIndex)
    {
        x = x.Plus(self_attn.Forward(input_layernorm.forward(x), cos, sin, mask, cache, layerIndex));
        return x.Plus(mlp.forward(post_attention_layernorm.forward(x)));
    }
}

/// <summary>HF Qwen2Model / LlamaModel: keys under <c>model.</c>.</summary>
public sealed class DecoderModel : Module<Tensor, Tensor>
{
    private readonly DecoderConfig _cfg;
    private readonly Embedding embed_tokens;
    private readonly ModuleList<DecoderLayer> layers;
    private readonly RmsNorm norm;

    public DecoderModel(DecoderConfig cfg, Device? device = null) : base(nameof(DecoderModel))
    {
        _cfg = cfg;
        embed_tokens = Embedding(cfg.VocabSize, cfg.HiddenSize, device: device);
        layers = new ModuleList<DecoderLayer>();
        for (int i = 0; i < cfg.NumHiddenLayers; i++) layers.Add(new DecoderLayer(cfg, device));
        norm = new RmsNorm(cfg.HiddenSize, cfg.RmsNormEps, device);
        RegisterComponents();
    }

    internal Embedding EmbedTokens => embed_tokens;

    public override Tensor forward(Tensor inputIds) => Forward(embed_tokens.forward(inputIds), null, null, null);

    /// <summary>Final-norm hidden states (B, T, C) for (B, T, C) input embeddings.</summary>
    public Tensor Forward(Tensor inputsEmbeds, Tensor? attentionMask, Tensor? positionIds, KvCache? cache)
    {
        long b = inputsEmbeds.shape[0], t = inputsEmbeds.shape[1];
        long past = cache?.Length ?? 0;
        positionIds ??= DefaultPositions(b, t, past, attentionMask, inputsEmbeds.device);
        var (cos, sin) = Rotary.CosSin(positionIds, _cfg.HeadDim, _cfg.RopeTheta, inputsEmbeds.dtype);
        var mask = AttentionMasks.Causal(b, t, past, attentionMask, inputsEmbeds.dtype, inputsEmbeds.device);
        var x = inputsEmbeds;
        int i = 0;
        foreach (var layer in layers) x = layer.Forward(x, cos, sin, mask, cache, i++);
        return norm.forward(x);
    }

    /// <summary>HF generate's positions: cumsum(mask) − 1 so left padding does not shift real tokens; plain past..past+T without a mask.</summary>
    internal static Tensor DefaultPositions(long b, long t, long past, Tensor? attentionMask, Device device)
    {
        if (attentionMask is null)
            return torch.arange(past, past + t, dtype: ScalarType.Int64, device: device).unsqueeze(0).expand(b, t);
        var pos = attentionMask.to_type(ScalarType.Int64).cumsum(-1).Minus(1); // (B, P+T)
        pos = pos.masked_fill(attentionMask.eq(0), 1);
        return pos.narrow(1, past, t);                                     // (B, T)
    }
}

/// <summary>Logits (B, T', V) — T' = T or the last <c>logitsToKeep</c> positions — and the final-norm hidden states (B, T, C).</summary>
public sealed record CausalLMOutput(Tensor Logits, Tensor LastHiddenState);

/// <summary>
/// The body HF's Qwen2ForCausalLM and LlamaForCausalLM share: <c>model.*</c> (<see cref="DecoderModel"/>) and
/// <c>lm_head</c>. With tied embeddings there is no <c>lm_head</c> module and no <c>lm_head.weight</c> key, as in HF's
/// saved files. <see cref="Create"/> and <see cref="FromPretrained"/> pick <see cref="Qwen2ForCausalLM"/> or
/// <see cref="LlamaForCausalLM"/> from the config's <c>model_type</c>.
/// </summary>
public abstract class CausalLM : Module<Tensor, Tensor>
{
    private readonly DecoderModel model;
    private readonly Linear? lm_head;

    public DecoderConfig Config { get; }

    private protected CausalLM(string name, DecoderConfig cfg, Device? device) : base(name)
    {
        Config = cfg.Validate();
        if (device?.type != DeviceType.META) Runtime.ModelMemory.Check("decoder config", "the LLM", cfg.ParameterCount());
        model = new DecoderModel(cfg, device);
        if (!cfg.TieWordEmbeddings) lm_head = Linear(cfg.HiddenSize, cfg.VocabSize, hasBias: false, device: device);
        RegisterComponents();
    }

    /// <summary>The causal LM of a parsed config: <see cref="Qwen2ForCausalLM"/> for a <see cref="Qwen2Config"/>, <see cref="LlamaForCausalLM"/> for a <see cref="LlamaConfig"/>.</summary>
    public static CausalLM Create(DecoderConfig cfg, Device? device = null) => cfg switch
    {
        Qwen2Config q => new Qwen2ForCausalLM(q, device),
        LlamaConfig l => new LlamaForCausalLM(l, device),
        _ => throw new ArgumentException($"no causal LM for config type {cfg.GetType().Name}", nameof(cfg)),
    };

    /// <summary>Loads a Hugging Face Qwen2/Llama folder (safetensors or .bin); see <see cref="Checkpoints.Pretrained.CausalLM"/>.</summary>
    public static CausalLM FromPretrained(string dir, Device? device = null, ScalarType? dtype = null) => Checkpoints.Pretrained.CausalLM(dir, device, dtype);

    /// <summary>The <c>model.*</c> body; LLaVA mounts its modules (not the body itself) in its own tree, see <see cref="Llava.LlavaModel"/>.</summary>
    internal DecoderModel Body => model;
    /// <summary>The untied <c>lm_head</c>, null with tied embeddings.</summary>
    internal Linear? Head => lm_head;

    /// <summary>Token embeddings (B, T, C) for (B, T) ids, for splicing visual tokens into the text.</summary>
    public Tensor EmbedTokens(Tensor inputIds) => model.EmbedTokens.forward(inputIds);

    public KvCache NewCache() => new(Config.NumHiddenLayers);

    /// <summary>HF's _init_weights: Linear and Embedding weights ~ N(0, initializer_range), biases 0, norm gains 1.</summary>
    public void InitializeWeights(double std = 0.02)
    {
        using var _ = torch.no_grad();
        foreach (var (name, p) in named_parameters())
        {
            if (name.EndsWith("layernorm.weight") || name == "model.norm.weight") p.fill_(1);
            else if (name.EndsWith(".bias")) p.zero_();
            else p.normal_(0, std);
        }
    }

    public override Tensor forward(Tensor inputIds) => Forward(inputIds: inputIds).Logits;

    /// <summary>
    /// Exactly one of <paramref name="inputIds"/> (B, T) and <paramref name="inputsEmbeds"/> (B, T, C).
    /// <paramref name="attentionMask"/> (B, P+T) covers cached and new positions (1 = token, 0 = padding).
    /// <paramref name="cache"/> is extended in place with this call's keys/values.
    /// </summary>
    public CausalLMOutput Forward(Tensor? inputIds = null, Tensor? inputsEmbeds = null, Tensor? attentionMask = null,
                                  Tensor? positionIds = null, KvCache? cache = null, int logitsToKeep = 0)
    {
        if ((inputIds is null) == (inputsEmbeds is null))
            throw new ArgumentException("pass exactly one of inputIds and inputsEmbeds");
        using var scope = torch.NewDisposeScope();
        var embeds = inputsEmbeds ?? EmbedTokens(inputIds!);
        var hidden = model.Forward(embeds, attentionMask, positionIds, cache); // (B, T, C)
        var h = logitsToKeep > 0 && logitsToKeep < hidden.shape[1] ? hidden.narrow(1, hidden.shape[1] - logitsToKeep, logitsToKeep) : hidden;
        var logits = lm_head is not null ? lm_head.forward(h) : functional.linear(h, model.EmbedTokens.weight!); // (B, T', V)
        return new CausalLMOutput(logits.MoveToOuterDisposeScope(), hidden.MoveToOuterDisposeScope());
    }
}
