using System.Text.Json.Serialization;
using static TorchSharp.torch;

namespace QueCC.Model.Decoder;

/// <summary>HF Qwen2Config (Qwen1.5 checkpoints use it), with HF's defaults.</summary>
public sealed record Qwen2Config : DecoderConfig
{
    public Qwen2Config()
    {
        ModelType = "qwen2"; VocabSize = 151936; HiddenSize = 4096; IntermediateSize = 22016; NumHiddenLayers = 32;
        NumAttentionHeads = 32; NumKeyValueHeads = 32; MaxPositionEmbeddings = 32768; RmsNormEps = 1e-6; RopeTheta = 10000.0;
    }

    [JsonIgnore] public override bool QkvBias => true;
}

/// <summary>HF Qwen2ForCausalLM: q/k/v projections with bias, o_proj and the MLP without.</summary>
public sealed class Qwen2ForCausalLM(Qwen2Config cfg, Device? device = null) : CausalLM(nameof(Qwen2ForCausalLM), cfg, device);
