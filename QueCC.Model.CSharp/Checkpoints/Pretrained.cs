using QueCC.Model.Clip;
using QueCC.Model.Decoder;
using QueCC.Model.Llava;
using QueCC.Model.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace QueCC.Model.Checkpoints;

/// <summary>
/// Loading from Hugging Face folders (config.json + safetensors or PyTorch .bin, single or sharded), as transformers'
/// <c>from_pretrained</c>: strict by key name and shape, every mismatch listed; a null dtype keeps float32.
/// The classes expose these as <c>FromPretrained</c>.
/// </summary>
public static class Pretrained
{
    /// <summary>A Qwen2/Llama causal LM folder (model_type qwen2 or llama → <see cref="Qwen2ForCausalLM"/> or <see cref="LlamaForCausalLM"/>); a tied model's stored lm_head.weight is checked against the embedding.</summary>
    public static CausalLM CausalLM(string dir, Device? device = null, ScalarType? dtype = null)
    {
        if (!Directory.Exists(dir)) throw new UserInputException($"{dir}: model folder not found");
        var cfg = DecoderConfig.Load(Path.Combine(dir, "config.json"));
        using var ckpt = Checkpoint.Open(dir);
        var model = Decoder.CausalLM.Create(cfg, device);
        try
        {
            bool tied = cfg.TieWordEmbeddings;
            StateDictLoader.LoadStrict(model.state_dict().Select(kv => (kv.Key, kv.Value)), ckpt, k => tied && k == "lm_head.weight");
            LlavaCheckpoint.CheckTiedHead(cfg, model, ckpt);
            if (dtype is { } t) model.to(t);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        model.eval();
        return model;
    }

    /// <summary>A CLIP vision tower folder: CLIPVisionConfig or full CLIPConfig json; a full CLIP checkpoint's text tower is skipped.</summary>
    public static ClipVisionModel VisionTower(string dir, Device? device = null, ScalarType? dtype = null)
    {
        if (!Directory.Exists(dir)) throw new UserInputException($"{dir}: vision tower folder not found");
        var cfg = ClipVisionConfig.Load(Path.Combine(dir, "config.json"));
        using var ckpt = Checkpoint.Open(dir);
        var tower = new ClipVisionModel(cfg, device);
        try
        {
            LlavaCheckpoint.LoadVisionTower(tower, ckpt, "");
            if (dtype is { } t) tower.to(t);
        }
        catch
        {
            tower.Dispose();
            throw;
        }
        tower.eval();
        return tower;
    }

    /// <summary>A LLaVA folder (see <see cref="LlavaCheckpoint.Load"/> for where the tower comes from), with its tokenizer when the folder has one.</summary>
    public static LlavaModel Llava(string dir, Device? device = null, ScalarType? dtype = null, string? visionTowerDir = null)
    {
        var model = LlavaCheckpoint.Load(dir, visionTowerDir, device);
        if (dtype is { } t) model.ToDType(t);
        return model;
    }

    public static ChatTokenizer Tokenizer(string dir) => ChatTokenizer.Load(dir);
}
