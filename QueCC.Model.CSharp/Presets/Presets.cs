using QueCC.Model.Clip;
using QueCC.Model.Decoder;

namespace QueCC.Model.Presets;

/// <summary>
/// A vision tower + LLM pairing. <see cref="SelectLayer"/> is LLaVA's mm_vision_select_layer (−2) and
/// <see cref="MultiLevelLayers"/> the hidden-state indices QueCC concatenates for keys/values.
/// </summary>
public sealed record ModelPreset(string Name, ClipVisionConfig Vision, DecoderConfig Text, int SelectLayer, IReadOnlyList<int> MultiLevelLayers)
{
    /// <summary>True for the real-shape presets, which are for meta-device checks and loading checkpoints, not random init on a CPU.</summary>
    public bool ConfigOnly => !(Name is "tiny" or "small" || Name.StartsWith("sweep-"));
}

public static class Presets
{
    /// <summary>openai/clip-vit-large-patch14-336: 24 layers, width 1024, patch 14, 577 positions.</summary>
    public static ClipVisionConfig ClipVitL336 { get; } = new()
    {
        HiddenSize = 1024, IntermediateSize = 4096, NumHiddenLayers = 24, NumAttentionHeads = 16,
        ImageSize = 336, PatchSize = 14, HiddenAct = "quick_gelu", LayerNormEps = 1e-5,
    };

    /// <summary>Qwen/Qwen1.5-0.5B-Chat config.json.</summary>
    public static Qwen2Config Qwen15_05B { get; } = new()
    {
        VocabSize = 151936, HiddenSize = 1024, IntermediateSize = 2816, NumHiddenLayers = 24, NumAttentionHeads = 16, NumKeyValueHeads = 16,
        MaxPositionEmbeddings = 32768, RmsNormEps = 1e-6, RopeTheta = 1000000.0, TieWordEmbeddings = true,
        BosTokenId = 151643, EosTokenId = new[] { 151645 }, TorchDtype = "bfloat16",
    };

    /// <summary>Qwen/Qwen1.5-4B-Chat config.json.</summary>
    public static Qwen2Config Qwen15_4B { get; } = new()
    {
        VocabSize = 151936, HiddenSize = 2560, IntermediateSize = 6912, NumHiddenLayers = 40, NumAttentionHeads = 20, NumKeyValueHeads = 20,
        MaxPositionEmbeddings = 32768, RmsNormEps = 1e-6, RopeTheta = 5000000.0, TieWordEmbeddings = false,
        BosTokenId = 151643, EosTokenId = new[] { 151645 }, TorchDtype = "bfloat16",
    };

    /// <summary>Qwen/Qwen1.5-7B-Chat config.json.</summary>
    public static Qwen2Config Qwen15_7B { get; } = new()
    {
        VocabSize = 151936, HiddenSize = 4096, IntermediateSize = 11008, NumHiddenLayers = 32, NumAttentionHeads = 32, NumKeyValueHeads = 32,
        MaxPositionEmbeddings = 32768, RmsNormEps = 1e-6, RopeTheta = 1000000.0, TieWordEmbeddings = false,
        BosTokenId = 151643, EosTokenId = new[] { 151645 }, TorchDtype = "bfloat16",
    };

    /// <summary>lmsys/vicuna-7b-v1.5 config.json (Llama-2 7B shapes).</summary>
    public static LlamaConfig Vicuna7B { get; } = new()
    {
        VocabSize = 32000, HiddenSize = 4096, IntermediateSize = 11008, NumHiddenLayers = 32, NumAttentionHeads = 32, NumKeyValueHeads = 32,
        MaxPositionEmbeddings = 4096, RmsNormEps = 1e-5, RopeTheta = 10000.0, TieWordEmbeddings = false,
        BosTokenId = 1, EosTokenId = new[] { 2 }, TorchDtype = "float16",
    };

    /// <summary>Vocabulary of the tiny/small presets; <see cref="QueCC.Model.Text.TinyTokenizer"/> fits inside it.</summary>
    public const int TinyVocabSize = 512;

    /// <summary>A 24×24 patch grid (image 48, patch 2) so every QueCC token count of the paper (1…576) is reachable, at width 32.</summary>
    public static ClipVisionConfig TinyClip { get; } = new()
    {
        HiddenSize = 32, IntermediateSize = 64, NumHiddenLayers = 4, NumAttentionHeads = 4, ImageSize = 48, PatchSize = 2, HiddenAct = "quick_gelu",
    };

    public static Qwen2Config TinyQwen2 { get; } = new()
    {
        VocabSize = TinyVocabSize, HiddenSize = 64, IntermediateSize = 128, NumHiddenLayers = 2, NumAttentionHeads = 4, NumKeyValueHeads = 2,
        MaxPositionEmbeddings = 2048, RopeTheta = 10000.0, TieWordEmbeddings = true, TorchDtype = "float32",
    };

    public static ClipVisionConfig SmallClip { get; } = new()
    {
        HiddenSize = 64, IntermediateSize = 256, NumHiddenLayers = 12, NumAttentionHeads = 4, ImageSize = 96, PatchSize = 4, HiddenAct = "quick_gelu",
    };

    public static Qwen2Config SmallQwen2 { get; } = new()
    {
        VocabSize = TinyVocabSize, HiddenSize = 256, IntermediateSize = 688, NumHiddenLayers = 4, NumAttentionHeads = 8, NumKeyValueHeads = 4,
        MaxPositionEmbeddings = 4096, RopeTheta = 10000.0, TieWordEmbeddings = false, TorchDtype = "float32",
    };

    /// <summary>
    /// LLM sizes for miniature scaling studies (`quecc sweep`): Qwen2-shaped decoders with the tiny vision tower,
    /// from ~26K to ~660K parameters (25×), all fast enough to train on a laptop CPU in seconds.
    /// </summary>
    public static Qwen2Config SweepDecoder(int hidden, int layers, int heads, int kvHeads) => TinyQwen2 with
    {
        HiddenSize = hidden, IntermediateSize = 2 * hidden, NumHiddenLayers = layers, NumAttentionHeads = heads, NumKeyValueHeads = kvHeads,
    };

    private static readonly Dictionary<string, ModelPreset> All = new()
    {
        ["sweep-xs"] = new("sweep-xs", TinyClip, SweepDecoder(32, 1, 2, 1), -2, new[] { 0, 1, 2, 3 }),
        ["sweep-s"] = new("sweep-s", TinyClip, SweepDecoder(64, 2, 4, 2), -2, new[] { 0, 1, 2, 3 }),
        ["sweep-m"] = new("sweep-m", TinyClip, SweepDecoder(96, 3, 4, 2), -2, new[] { 0, 1, 2, 3 }),
        ["sweep-l"] = new("sweep-l", TinyClip, SweepDecoder(128, 4, 4, 2), -2, new[] { 0, 1, 2, 3 }),
        ["tiny"] = new("tiny", TinyClip, TinyQwen2, -2, new[] { 0, 1, 2, 3 }),
        ["small"] = new("small", SmallClip, SmallQwen2, -2, new[] { 6, 8, 10, 11 }),
        ["qwen1.5-0.5b"] = new("qwen1.5-0.5b", ClipVitL336, Qwen15_05B, -2, ClipFeatures.QueccMultiLevelLayers),
        ["qwen1.5-4b"] = new("qwen1.5-4b", ClipVitL336, Qwen15_4B, -2, ClipFeatures.QueccMultiLevelLayers),
        ["qwen1.5-7b"] = new("qwen1.5-7b", ClipVitL336, Qwen15_7B, -2, ClipFeatures.QueccMultiLevelLayers),
        ["vicuna-7b"] = new("vicuna-7b", ClipVitL336, Vicuna7B, -2, ClipFeatures.QueccMultiLevelLayers),
    };

    public static IReadOnlyCollection<string> Names => All.Keys;

    /// <summary>A LLaVA pairing by name; the real LLM names pair with clip-vit-l-336.</summary>
    public static ModelPreset Get(string name) =>
        All.TryGetValue(name.Trim().ToLowerInvariant(), out var p) ? p
        : throw new UserInputException($"preset '{name}': expected one of {string.Join(", ", All.Keys)}");

    /// <summary>Vision tower config by name: clip-vit-l-336, or a pairing preset's tower.</summary>
    public static ClipVisionConfig Vision(string name) =>
        name.Trim().ToLowerInvariant() == "clip-vit-l-336" ? ClipVitL336 : Get(name).Vision;
}
