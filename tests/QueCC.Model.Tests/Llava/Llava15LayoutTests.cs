using QueCC.Model;
using QueCC.Model.Clip;
using QueCC.Model.Commands;
using QueCC.Model.Llava;
using QueCC.Model.Text;
using static TorchSharp.torch;

namespace QueCC.Model.Tests.Llava;

/// <summary>scripts/fixtures/make_llava15_fixture.py: tiny shapes in exactly liuhaotian/llava-v1.5-7b's layout (fp16 .bin shards by torch.save,
/// tokenizer.model with its tokenizer_config.json) and a CLIP folder as openai/clip-vit-large-patch14-336 ships it.</summary>
public class Llava15LayoutTests
{
    private static string Fx(params string[] p) => Path.Combine(new[] { AppContext.BaseDirectory, "Fixtures", "llava15" }.Concat(p).ToArray());

    [Fact]
    public void The_published_layout_loads_with_a_separate_tower_and_generates()
    {
        using var _ = NewDisposeScope();
        using var m = LlavaCheckpoint.Load(Fx("llava-v1.5-tiny"), Fx("clip-vit-tiny-patch2-48"));
        Assert.IsType<QueCC.Model.Decoder.LlamaConfig>(m.Config.Text);
        Assert.Equal(ConversationStyle.VicunaV1, m.Config.Style);
        Assert.Equal(576, m.VisualTokenCount);
        Assert.Equal((TokenizerKind.SentencePiece, false, 1, 2), (m.Tokenizer!.Kind, m.Tokenizer.Legacy, m.Tokenizer.BosTokenId, m.Tokenizer.EosTokenId));
        Assert.Equal(0, m.Tokenizer.UnkTokenId);
        var img = Path.Combine(Path.GetTempPath(), $"quecc-l15-{Guid.NewGuid():N}.png");
        try
        {
            RgbImage.Filled(60, 40, 120, 40, 200).SavePng(img);
            var a = LlavaEntryPoints.Generate(Fx("llava-v1.5-tiny"), Fx("clip-vit-tiny-patch2-48"), img, "What is in the image?", 6, 0, 0);
            var b = LlavaEntryPoints.Generate(Fx("llava-v1.5-tiny"), Fx("clip-vit-tiny-patch2-48"), img, "What is in the image?", 6, 0, 0);
            Assert.Equal(a, b);
        }
        finally { File.Delete(img); }
    }

    [Fact]
    public void Without_a_tower_the_error_names_the_configured_tower()
    {
        var e = Assert.Throws<UserInputException>(() => LlavaCheckpoint.Load(Fx("llava-v1.5-tiny")));
        Assert.Contains("openai/clip-vit-large-patch14-336", e.Message);
        Assert.Contains("--vision-tower", e.Message);
    }
}
