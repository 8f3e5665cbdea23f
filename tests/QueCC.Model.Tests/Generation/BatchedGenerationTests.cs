using QueCC.Model.Decoder;
using QueCC.Model.Generation;
using TorchSharp;
using static TorchSharp.torch;

namespace QueCC.Model.Tests.Generation;

/// <summary>Batched, left-padded generation against the batch-of-one generator on a tiny random model.</summary>
public class BatchedGenerationTests
{
    private static Qwen2ForCausalLM Model()
    {
        torch.manual_seed(5);
        var m = new Qwen2ForCausalLM(new Qwen2Config
        {
            VocabSize = 60, HiddenSize = 32, IntermediateSize = 48, NumHiddenLayers = 2, NumAttentionHeads = 4, NumKeyValueHeads = 2, TieWordEmbeddings = true,
        });
        using (torch.no_grad()) foreach (var (_, p) in m.named_parameters()) p.normal_(0, 0.5);
        return m;
    }

    // Different lengths, so every row but the longest is padded.
    private static readonly int[][] Prompts = { new[] { 3, 14, 15, 9, 2, 6, 5, 35 }, new[] { 8 }, new[] { 27, 18, 28 }, new[] { 1, 41, 42, 13, 56 } };

    private static (Tensor Embeds, Tensor Mask) LeftPadded(Qwen2ForCausalLM model, int[][] prompts)
    {
        int len = prompts.Max(p => p.Length);
        var ids = new long[prompts.Length, len];
        var mask = new long[prompts.Length, len];
        for (int i = 0; i < prompts.Length; i++)
            for (int j = 0; j < prompts[i].Length; j++) { ids[i, len - prompts[i].Length + j] = prompts[i][j]; mask[i, len - prompts[i].Length + j] = 1; }
        return (model.EmbedTokens(torch.tensor(ids)), torch.tensor(mask));
    }

    [Fact]
    public void Greedy_batched_answers_equal_batch_of_one_answers()
    {
        using var model = Model();
        using var _ = torch.no_grad();
        var opts = new GenerationOptions { MaxNewTokens = 10 };
        var single = Prompts.Select(p => TextGenerator.Generate(model, p, opts).Tokens).ToList();
        var (embeds, mask) = LeftPadded(model, Prompts);
        var batched = TextGenerator.GenerateBatchFromEmbeds(model, embeds, mask, opts);
        Assert.Equal(Prompts.Length, batched.Length);
        for (int i = 0; i < Prompts.Length; i++) Assert.Equal(single[i], batched[i].Tokens);
        // The rows must actually differ, or equal answers would prove little about per-row positions and masking.
        Assert.True(single.Select(s => string.Join(",", s)).Distinct().Count() > 1);
    }

    [Fact]
    public void Each_row_stops_at_its_own_stop_token_while_the_others_go_on()
    {
        using var model = Model();
        using var _ = torch.no_grad();
        var free = Prompts.Select(p => TextGenerator.Generate(model, p, new GenerationOptions { MaxNewTokens = 10 }).Tokens).ToList();
        // Stop on row 0's third token: row 0 ends there; a row that never produces it runs to the limit.
        int stop = free[0][2];
        var opts = new GenerationOptions { MaxNewTokens = 10, StopTokenIds = new[] { stop } };
        var single = Prompts.Select(p => TextGenerator.Generate(model, p, opts)).ToList();
        var (embeds, mask) = LeftPadded(model, Prompts);
        var batched = TextGenerator.GenerateBatchFromEmbeds(model, embeds, mask, opts);
        Assert.Equal(StopReason.StopToken, batched[0].Reason);
        Assert.Equal(free[0].Take(2).ToList(), batched[0].Tokens);
        Assert.Contains(single, r => r.Reason == StopReason.MaxNewTokens);
        for (int i = 0; i < Prompts.Length; i++)
        {
            Assert.Equal(single[i].Tokens, batched[i].Tokens);
            Assert.Equal(single[i].Reason, batched[i].Reason);
        }
    }

    [Fact]
    public void A_mask_of_the_wrong_shape_is_refused()
    {
        using var model = Model();
        var (embeds, _) = LeftPadded(model, Prompts);
        var ex = Assert.Throws<ArgumentException>(() => TextGenerator.GenerateBatchFromEmbeds(model, embeds, torch.ones(2, 3, dtype: ScalarType.Int64), new GenerationOptions()));
        Assert.Contains("expected [4, 8]", ex.Message);
    }
}
