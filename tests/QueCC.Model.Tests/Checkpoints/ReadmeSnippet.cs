using QueCC.Model.Clip;
using QueCC.Model.Generation;
using QueCC.Model.Llava;
using QueCC.Model.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace QueCC.Model.Tests.Checkpoints;

/// <summary>The README's library example, compiled here; PretrainedTests checks the README shows exactly this code.</summary>
public static class ReadmeSnippet
{
    public static (string Answer, IReadOnlyList<int> Ids) Run(string modelDir, string imagePath)
    {
        // README-BEGIN
        // A LLaVA folder as published (config.json, pytorch_model-*.bin or *.safetensors, tokenizer files).
        using var model = LlavaModel.FromPretrained(modelDir, device: torch.CPU, dtype: ScalarType.Float32);
        var tokenizer = ChatTokenizer.FromPretrained(modelDir);
        var ids = tokenizer.InputIds("What is in the image?");   // = Hugging Face's tokenizer(text).input_ids
        var answer = model.Answer(RgbImage.Load(imagePath), "What is in the image?", new GenerationOptions { MaxNewTokens = 16 });
        // README-END
        return (answer, ids);
    }
}
