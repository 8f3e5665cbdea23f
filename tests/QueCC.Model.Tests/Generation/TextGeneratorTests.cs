using QueCC.Model.Decoder;
using QueCC.Model.Generation;
using TorchSharp;
using static TorchSharp.torch;

namespace QueCC.Model.Tests.Generation;

public class TextGeneratorTests
{
    private static Qwen2ForCausalLM Model()
    {
        torch.manual_seed(11);
        var m = new Qwen2ForCausalLM(new Qwen2Config
        {
            VocabSize = 50, HiddenSize = 32, IntermediateSize = 48, NumHiddenLayers = 2, NumAttentionHeads = 4, NumKeyValueHeads = 2, TieWordEmbeddings = true,
        });
        using (torch.no_grad()) foreach (var (_, p) in m.named_parameters()) p.normal_(0, 0.5);
        return m;
    }

    private static readonly int[] Prompt = { 3, 14, 15, 9, 2, 6 };

    [Fact]
    public void Greedy_with_and_without_kv_cache_agree_and_follow_the_argmax()
    {
        using var model = Model();
        var opts = new GenerationOptions { MaxNewTokens = 12 };
        var cached = TextGenerator.Generate(model, Prompt, opts);
        var plain = TextGenerator.Generate(model, Prompt, opts with { UseKvCache = false });
        Assert.Equal(12, cached.Tokens.Count);
        Assert.Equal(plain.Tokens, cached.Tokens);
        Assert.Equal(StopReason.MaxNewTokens, cached.Reason);
        // oracle: each token is the argmax of a full forward over prompt + tokens so far
        using var _ = NewDisposeScope();
        var seq = Prompt.Select(i => (long)i).ToList();
        foreach (var t in cached.Tokens)
        {
            var logits = model.Forward(inputIds: torch.tensor(seq.ToArray()).unsqueeze(0)).Logits;
            Assert.Equal(logits[0, -1].argmax().ToInt64(), t);
            seq.Add(t);
        }
    }

    [Fact]
    public void Seeded_sampling_is_reproducible_and_equal_with_and_without_cache()
    {
        using var model = Model();
        var opts = new GenerationOptions { MaxNewTokens = 10, Temperature = 1.5, TopP = 0.95, Seed = 42 };
        var a = TextGenerator.Generate(model, Prompt, opts);
        var b = TextGenerator.Generate(model, Prompt, opts);
        var c = TextGenerator.Generate(model, Prompt, opts with { UseKvCache = false });
        Assert.Equal(a.Tokens, b.Tokens);
        Assert.Equal(a.Tokens, c.Tokens);
        var others = Enumerable.Range(1, 5).Select(s => TextGenerator.Generate(model, Prompt, opts with { Seed = 42 + s }).Tokens).ToList();
        Assert.Contains(others, o => !o.SequenceEqual(a.Tokens));
    }

    [Fact]
    public void Stop_token_ends_generation_and_is_not_returned()
    {
        using var model = Model();
        var greedy = TextGenerator.Generate(model, Prompt, new GenerationOptions { MaxNewTokens = 8 }).Tokens;
        var stopAt = greedy[3];
        int firstIndex = greedy.ToList().IndexOf(stopAt);
        var r = TextGenerator.Generate(model, Prompt, new GenerationOptions { MaxNewTokens = 8, StopTokenIds = new[] { stopAt } });
        Assert.Equal(StopReason.StopToken, r.Reason);
        Assert.Equal(greedy.Take(firstIndex), r.Tokens);
    }

    [Fact]
    public void Sampling_frequencies_follow_the_tempered_nucleus()
    {
        using var _ = NewDisposeScope();
        var logits = torch.tensor(new float[] { 2.0f, 1.0f, 0.5f, -1.0f, -3.0f });
        const double T = 0.8, P = 0.9;
        // hand oracle: p = softmax(l/T); the nucleus is the shortest prefix (by probability) whose mass reaches 0.9
        var p = new[] { 2.0, 1.0, 0.5, -1.0, -3.0 }.Select(v => Math.Exp(v / T)).ToArray();
        var z = p.Sum();
        p = p.Select(v => v / z).ToArray();
        int keep = 0; double mass = 0;
        while (mass < P) mass += p[keep++];
        var expected = p.Select((v, i) => i < keep ? v / mass : 0).ToArray();
        var gen = new torch.Generator(7);
        var counts = new int[5];
        const int N = 4000;
        for (int i = 0; i < N; i++) counts[TextGenerator.Sample(logits, T, P, gen)]++;
        for (int i = 0; i < 5; i++)
        {
            if (expected[i] == 0) Assert.Equal(0, counts[i]);
            else Assert.InRange(counts[i] / (double)N, expected[i] - 0.03, expected[i] + 0.03);
        }
        Assert.Equal(0, TextGenerator.Sample(logits, 0, 1, null));
    }

    [Fact]
    public void Bad_options_are_rejected_with_the_value()
    {
        using var model = Model();
        var e = Assert.Throws<UserInputException>(() => TextGenerator.Generate(model, Prompt, new GenerationOptions { TopP = 0 }));
        Assert.Contains("top-p", e.Message);
        Assert.Throws<UserInputException>(() => TextGenerator.Generate(model, Prompt, new GenerationOptions { Temperature = -1 }));
    }
}
