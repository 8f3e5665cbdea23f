using System.Text.Json.Serialization;
using static TorchSharp.torch;

namespace QueCC.Model.Decoder;

/// <summary>HF LlamaConfig (Vicuna), with HF's defaults.</summary>
public sealed record LlamaConfig : DecoderConfig
{
    public LlamaConfig()
    {
        ModelType = "llama"; VocabSize = 32000; HiddenSize = 4096; IntermediateSize = 11008; NumHiddenLayers = 32;
        NumAttentionHeads = 32; MaxPositionEmbeddings = 2048; RmsNormEps = 1e-6; RopeTheta = 10000.0; BosTokenId = 1; EosTokenId = new[] { 2 };
    }

    [JsonPropertyName("attention_bias")] public bool AttentionBias { get; init; }
    [JsonPropertyName("mlp_bias")] public bool MlpBias { get; init; }
    [JsonIgnore] public override bool QkvBias => AttentionBias;
    [JsonIgnore] public override bool OutputBias => AttentionBias;
    [JsonIgnore] public override bool MlpBiasEnabled => MlpBias;
}

/// <summary>HF LlamaForCausalLM: no biases unless <c>attention_bias</c> (q/k/v/o) or <c>mlp_bias</c> (gate/up/down) says so; optional <c>head_dim</c>.</summary>
public sealed class LlamaForCausalLM(LlamaConfig cfg, Device? device = null) : CausalLM(nameof(LlamaForCausalLM), cfg, device);
