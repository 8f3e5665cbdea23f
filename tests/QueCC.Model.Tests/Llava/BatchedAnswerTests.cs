using QueCC.Model.Clip;
using QueCC.Model.Generation;
using QueCC.Model.Llava;
using TorchSharp;
using static TorchSharp.torch;

namespace QueCC.Model.Tests.Llava;

/// <summary><see cref="LlavaModel.AnswerBatch"/> against <see cref="LlavaModel.Answer"/> one by one (greedy).</summary>
public class BatchedAnswerTests(TinyLlavaFixture fx) : IClassFixture<TinyLlavaFixture>
{
    [Fact]
    public void Greedy_batched_answers_equal_one_by_one_answers_for_prompts_of_different_lengths()
    {
        using var m = LlavaCheckpoint.Load(fx.Dir, null, null);
        // A freshly initialised LLM (std 0.02) says next to nothing; larger weights make the answers long and varied.
        torch.manual_seed(3);
        using (torch.no_grad()) foreach (var (_, p) in m.Llm.named_parameters()) p.normal_(0, 0.3);
        var images = new[] { RgbImage.Filled(64, 40, 200, 30, 90), RgbImage.Filled(30, 50, 10, 200, 30), RgbImage.Filled(48, 48, 20, 20, 220), RgbImage.Filled(40, 64, 250, 250, 0) };
        var questions = new[] { "Is there a dog?", "What colour is the large object next to the small wooden house by the river?", "Cat?", "<image>\nHow many people are in the picture?" };
        var opts = new GenerationOptions { MaxNewTokens = 8 };
        var single = images.Zip(questions, (im, q) => m.Answer(im, q, opts)).ToArray();
        var batched = m.AnswerBatch(images, questions, opts);
        Assert.Equal(single, batched);
        Assert.True(single.Distinct().Count() > 1, $"answers should differ: {string.Join(" | ", single)}");
        Assert.All(single, s => Assert.NotEqual("", s));
    }
}
