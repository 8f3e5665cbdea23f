using QueCC.Model.Runtime;
using System.Text.Json;
using System.Text.Json.Serialization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace QueCC.Model.Clip;

/// <summary>HF <c>CLIPVisionConfig</c>; defaults are HF's (ViT-B/32-224) so a sparse config.json means what it means in transformers.</summary>
public sealed record ClipVisionConfig
{
    [JsonPropertyName("hidden_size")] public int HiddenSize { get; init; } = 768;
    [JsonPropertyName("intermediate_size")] public int IntermediateSize { get; init; } = 3072;
    [JsonPropertyName("num_hidden_layers")] public int NumHiddenLayers { get; init; } = 12;
    [JsonPropertyName("num_attention_heads")] public int NumAttentionHeads { get; init; } = 12;
    [JsonPropertyName("num_channels")] public int NumChannels { get; init; } = 3;
    [JsonPropertyName("image_size")] public int ImageSize { get; init; } = 224;
    [JsonPropertyName("patch_size")] public int PatchSize { get; init; } = 32;
    [JsonPropertyName("hidden_act")] public string HiddenAct { get; init; } = "quick_gelu";
    [JsonPropertyName("layer_norm_eps")] public double LayerNormEps { get; init; } = 1e-5;

    public int NumPatchesPerSide => ImageSize / PatchSize;
    public int NumPatches => NumPatchesPerSide * NumPatchesPerSide;
    /// <summary>Patches plus the CLS token.</summary>
    public int NumPositions => NumPatches + 1;
    public int HeadDim => HiddenSize / NumAttentionHeads;

    /// <summary>Throws an error naming <paramref name="source"/> and the offending field when shapes cannot work.</summary>
    public ClipVisionConfig Validate(string source = "CLIP vision config")
    {
        UserInputException Bad(string key, object? value, string expected) => new(source, key, value?.ToString() ?? "null", expected);
        void Positive(string key, int v) { if (v <= 0) throw Bad(key, v, "a positive integer"); }
        Positive("hidden_size", HiddenSize); Positive("intermediate_size", IntermediateSize); Positive("num_hidden_layers", NumHiddenLayers);
        Positive("num_attention_heads", NumAttentionHeads); Positive("image_size", ImageSize); Positive("patch_size", PatchSize);
        if (NumChannels != 3) throw Bad("num_channels", NumChannels, "3 (the image processor produces RGB)");
        if (HiddenSize % NumAttentionHeads != 0)
            throw Bad("hidden_size", HiddenSize, $"a multiple of num_attention_heads {NumAttentionHeads}");
        if (PatchSize > ImageSize || ImageSize % PatchSize != 0)
            throw Bad("image_size", ImageSize, $"a multiple of patch_size {PatchSize}");
        // The preprocessed image (3 × image_size²) and the patch grid must stay far from int overflow.
        if (ImageSize > MaxImageSize) throw Bad("image_size", ImageSize, $"at most {MaxImageSize} pixels per side");
        if (HiddenAct is not ("quick_gelu" or "gelu"))
            throw Bad("hidden_act", $"'{HiddenAct}'", "quick_gelu or gelu");
        if (!(LayerNormEps > 0 && double.IsFinite(LayerNormEps))) throw Bad("layer_norm_eps", LayerNormEps, "a positive finite number");
        return this;
    }

    /// <summary>Largest image_size accepted (CLIP towers use 224–448).</summary>
    public const int MaxImageSize = 8192;

    /// <summary>Parameters of the tower from the shapes alone, in floating point so absurd configs cannot overflow.</summary>
    public double ParameterEstimate()
    {
        double h = HiddenSize, inter = IntermediateSize;
        double perLayer = 4 * (h * h + h) + 2 * h * inter + inter + h + 4 * h;   // q, k, v, o; fc1, fc2; two LayerNorms
        return NumChannels * (double)PatchSize * PatchSize * h + h + (NumPositions + 0.0) * h + 4 * h + NumHiddenLayers * perLayer;
    }

    /// <summary>Reads a HF CLIPVisionConfig json, or a full CLIPConfig json (its <c>vision_config</c> object).</summary>
    public static ClipVisionConfig FromJson(string json, string source = "config.json")
    {
        var root = Runtime.JsonInput.ParseRoot(json, source);
        if (root.ValueKind != JsonValueKind.Object) throw new UserInputException($"{source}: CLIP config is a JSON {root.ValueKind.ToString().ToLowerInvariant()}; expected an object");
        var node = root.TryGetProperty("vision_config", out var vc) && vc.ValueKind == JsonValueKind.Object ? vc : root;
        var cfg = Runtime.JsonInput.Deserialize<ClipVisionConfig>(node, source, "CLIP vision config");
        return cfg.Validate(source);
    }

    public static ClipVisionConfig Load(string path)
    {
        if (!File.Exists(path)) throw new UserInputException($"{path}: CLIP config file not found");
        return FromJson(File.ReadAllText(path), path);
    }

    public string ToJson() => JsonSerializer.Serialize(this, new JsonSerializerOptions { WriteIndented = true });
}

/// <summary>All hidden states as HF returns them with output_hidden_states: [0] = embeddings after pre_layrnorm, [i] = output of layer i.</summary>
public sealed record ClipVisionOutput(IReadOnlyList<Tensor> HiddenStates, Tensor LastHiddenState, Tensor PooledOutput);

internal static class Activations
{
    public static Tensor Apply(string name, Tensor x) => name switch
    {
        "quick_gelu" => x * torch.sigmoid(x.Times(1.702)),
        "gelu" => functional.gelu(x),
        "silu" => functional.silu(x),
        _ => throw new InvalidDataException($"hidden_act '{name}' is not supported"),
    };
}

public sealed class ClipVisionEmbeddings : Module<Tensor, Tensor>
{
    private readonly ClipVisionConfig _cfg;
    private readonly Parameter class_embedding;
    private readonly Conv2d patch_embedding;
    private readonly Embedding position_embedding;

    public ClipVisionEmbeddings(ClipVisionConfig cfg, Device? device = null) : base(nameof(ClipVisionEmbeddings))
    {
        _cfg = cfg;
        class_embedding = new Parameter(torch.randn(cfg.HiddenSize, device: device));
        patch_embedding = Conv2d(cfg.NumChannels, cfg.HiddenSize, kernel_size: cfg.PatchSize, stride: cfg.PatchSize, bias: false, device: device);
        position_embedding = Embedding(cfg.NumPositions, cfg.HiddenSize, device: device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor pixelValues) // (B, 3, H, W)
    {
        long b = pixelValues.shape[0];
        if (pixelValues.shape[2] != _cfg.ImageSize || pixelValues.shape[3] != _cfg.ImageSize)
            throw new ArgumentException($"pixel values are {pixelValues.shape[2]}x{pixelValues.shape[3]}; the CLIP config expects image_size {_cfg.ImageSize}");
        var patches = patch_embedding.forward(pixelValues.to_type(patch_embedding.weight!.dtype)); // (B, C, h, w)
        patches = patches.flatten(2).transpose(1, 2);                                               // (B, h*w, C)
        var cls = class_embedding.expand(b, 1, -1);                                                 // (B, 1, C)
        var x = torch.cat(new[] { cls, patches }, 1);                                               // (B, 1+h*w, C)
        var positions = torch.arange(_cfg.NumPositions, dtype: ScalarType.Int64, device: x.device);
        return x.Plus(position_embedding.forward(positions).unsqueeze(0));
    }
}

public sealed class ClipAttention : Module<Tensor, Tensor>
{
    private readonly ClipVisionConfig _cfg;
    private readonly Linear q_proj, k_proj, v_proj, out_proj;

    public ClipAttention(ClipVisionConfig cfg, Device? device = null) : base(nameof(ClipAttention))
    {
        _cfg = cfg;
        q_proj = Linear(cfg.HiddenSize, cfg.HiddenSize, device: device);
        k_proj = Linear(cfg.HiddenSize, cfg.HiddenSize, device: device);
        v_proj = Linear(cfg.HiddenSize, cfg.HiddenSize, device: device);
        out_proj = Linear(cfg.HiddenSize, cfg.HiddenSize, device: device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) // (B, T, C)
    {
        long b = x.shape[0], t = x.shape[1];
        int h = _cfg.NumAttentionHeads, d = _cfg.HeadDim;
        var q = q_proj.forward(x).view(b, t, h, d).transpose(1, 2); // (B, H, T, D)
        var k = k_proj.forward(x).view(b, t, h, d).transpose(1, 2);
        var v = v_proj.forward(x).view(b, t, h, d).transpose(1, 2);
        var y = functional.scaled_dot_product_attention(q, k, v); // (B, H, T, D), scale 1/sqrt(D)
        y = y.transpose(1, 2).reshape(b, t, _cfg.HiddenSize);      // (B, T, C)
        return out_proj.forward(y);
    }
}

public sealed class ClipMlp : Module<Tensor, Tensor>
{
    private readonly string _act;
    private readonly Linear fc1, fc2;

    public ClipMlp(ClipVisionConfig cfg, Device? device = null) : base(nameof(ClipMlp))
    {
        _act = cfg.HiddenAct;
        fc1 = Linear(cfg.HiddenSize, cfg.IntermediateSize, device: device);
        fc2 = Linear(cfg.IntermediateSize, cfg.HiddenSize, device: device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => fc2.forward(Activations.Apply(_act, fc1.forward(x)));
}

public sealed class ClipEncoderLayer : Module<Tensor, Tensor>
{
    private readonly ClipAttention self_attn;
    private readonly LayerNorm layer_norm1;
    private readonly ClipMlp mlp;
    private readonly LayerNorm layer_norm2;

    public ClipEncoderLayer(ClipVisionConfig cfg, Device? device = null) : base(nameof(ClipEncoderLayer))
    {
        self_attn = new ClipAttention(cfg, device);
        layer_norm1 = LayerNorm(cfg.HiddenSize, cfg.LayerNormEps, device: device);
        mlp = new ClipMlp(cfg, device);
        layer_norm2 = LayerNorm(cfg.HiddenSize, cfg.LayerNormEps, device: device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) // (B, T, C), pre-norm residual blocks
    {
        x = x.Plus(self_attn.forward(layer_norm1.forward(x)));
        return x.Plus(mlp.forward(layer_norm2.forward(x)));
    }
}

public sealed class ClipEncoder : Module<Tensor, Tensor>
{
    private readonly ModuleList<ClipEncoderLayer> layers;

    public ClipEncoder(ClipVisionConfig cfg, Device? device = null) : base(nameof(ClipEncoder))
    {
        layers = new ModuleList<ClipEncoderLayer>();
        for (int i = 0; i < cfg.NumHiddenLayers; i++) layers.Add(new ClipEncoderLayer(cfg, device));
        RegisterComponents();
    }

    public IEnumerable<ClipEncoderLayer> Layers => layers;

    public override Tensor forward(Tensor x)
    {
        foreach (var layer in layers) x = layer.forward(x);
        return x;
    }
}

public sealed class ClipVisionTransformer : Module<Tensor, Tensor>
{
    private readonly ClipVisionEmbeddings embeddings;
    private readonly LayerNorm pre_layrnorm; // sic: HF's checkpoint key
    private readonly ClipEncoder encoder;
    private readonly LayerNorm post_layernorm;

    public ClipVisionTransformer(ClipVisionConfig cfg, Device? device = null) : base(nameof(ClipVisionTransformer))
    {
        embeddings = new ClipVisionEmbeddings(cfg, device);
        pre_layrnorm = LayerNorm(cfg.HiddenSize, cfg.LayerNormEps, device: device);
        encoder = new ClipEncoder(cfg, device);
        post_layernorm = LayerNorm(cfg.HiddenSize, cfg.LayerNormEps, device: device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor pixelValues) => Run(pixelValues).LastHiddenState;

    internal ClipVisionOutput Run(Tensor pixelValues)
    {
        var hidden = new List<Tensor>();
        var x = pre_layrnorm.forward(embeddings.forward(pixelValues)); // (B, 1+N, C)
        hidden.Add(x);
        foreach (var layer in encoder.Layers)
        {
            x = layer.forward(x);
            hidden.Add(x);
        }
        var pooled = post_layernorm.forward(x.select(1, 0)); // (B, C): CLS token only, as HF
        return new ClipVisionOutput(hidden, x, pooled);
    }
}

/// <summary>HF <c>CLIPVisionModel</c>: state-dict keys start with <c>vision_model.</c>.</summary>
public sealed class ClipVisionModel : Module<Tensor, Tensor>
{
    private readonly ClipVisionTransformer vision_model;

    public ClipVisionConfig Config { get; }

    public ClipVisionModel(ClipVisionConfig cfg, Device? device = null) : base(nameof(ClipVisionModel))
    {
        Config = cfg.Validate();
        if (device?.type != DeviceType.META) Runtime.ModelMemory.Check("CLIP vision config", "the vision tower", cfg.ParameterEstimate());
        vision_model = new ClipVisionTransformer(cfg, device);
        RegisterComponents();
    }

    /// <summary>Loads a Hugging Face CLIP (vision) folder, safetensors or .bin; see <see cref="Checkpoints.Pretrained.VisionTower"/>.</summary>
    public static ClipVisionModel FromPretrained(string dir, Device? device = null, ScalarType? dtype = null) => Checkpoints.Pretrained.VisionTower(dir, device, dtype);

    public override Tensor forward(Tensor pixelValues) => vision_model.forward(pixelValues);

    /// <summary>Runs the tower and returns every hidden state. The caller owns the dispose scope.</summary>
    public ClipVisionOutput ForwardAll(Tensor pixelValues) => vision_model.Run(pixelValues); // pixelValues (B, 3, S, S)
}

/// <summary>The feature selections LLaVA and QueCC make from CLIP's hidden states.</summary>
public static class ClipFeatures
{
    /// <summary>Layers concatenated for QueCC's keys/values (hidden_states index; 0 is the embedding output).</summary>
    public static readonly IReadOnlyList<int> QueccMultiLevelLayers = new[] { 12, 16, 22, 23 };

    /// <summary>Patch tokens (CLS dropped) of hidden state <paramref name="layer"/>; negative counts from the end as in Python.</summary>
    public static Tensor Select(IReadOnlyList<Tensor> hiddenStates, int layer = -2)
    {
        int i = Resolve(hiddenStates.Count, layer);
        return hiddenStates[i].narrow(1, 1, hiddenStates[i].shape[1] - 1); // (B, N, C)
    }

    /// <summary>Channel-wise concat of the patch tokens of several hidden states: (B, N, C·len(layers)).</summary>
    public static Tensor MultiLevel(IReadOnlyList<Tensor> hiddenStates, IReadOnlyList<int>? layers = null)
    {
        layers ??= QueccMultiLevelLayers;
        if (layers.Count == 0) throw new UserInputException("multi-level feature layer list is empty");
        return torch.cat(layers.Select(l => Select(hiddenStates, l)).ToArray(), 2);
    }

    private static int Resolve(int count, int layer)
    {
        int i = layer < 0 ? count + layer : layer;
        if (i < 0 || i >= count)
            throw new UserInputException($"vision feature layer {layer} is out of range: the tower has {count} hidden states (embeddings + {count - 1} layers)");
        return i;
    }
}
