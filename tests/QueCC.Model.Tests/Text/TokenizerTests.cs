using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using QueCC.Model.Text;

namespace QueCC.Model.Tests.Text;

public sealed class TinyTokenizerFixture : IDisposable
{
    public string Dir { get; } = Path.Combine(Path.GetTempPath(), $"quecc-tok-{Guid.NewGuid():N}");
    public int Count { get; }
    public ChatTokenizer Tokenizer { get; }
    public TinyTokenizerFixture() { Count = TinyTokenizer.Write(Dir); Tokenizer = ChatTokenizer.Load(Dir); }
    public void Dispose() => Directory.Delete(Dir, true);
}

public class TokenizerTests(TinyTokenizerFixture fx) : IClassFixture<TinyTokenizerFixture>
{
    [Fact]
    public void Written_files_are_a_valid_Qwen2_style_BPE()
    {
        var vocab = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(Path.Combine(fx.Dir, "vocab.json")))!;
        var merges = File.ReadAllLines(Path.Combine(fx.Dir, "merges.txt"));
        Assert.Equal("#version: 0.2", merges[0]);
        Assert.Equal(250, merges.Length - 1);
        foreach (var m in merges.Skip(1))
        {
            var parts = m.Split(' ');
            Assert.Equal(2, parts.Length);
            Assert.True(vocab.ContainsKey(parts[0] + parts[1]), $"merge result '{m}' missing from vocab");
        }
        Assert.Equal(Enumerable.Range(0, vocab.Count), vocab.Values.OrderBy(v => v));
        Assert.Equal(0, vocab["!"]);   // as in Qwen2's vocab.json
        Assert.Equal(vocab.Count + 3, fx.Count);
        Assert.True(fx.Count <= Presets.Presets.TinyVocabSize);
    }

    [Fact]
    public void Every_synthetic_answer_is_one_token_after_the_assistant_header()
    {
        // The answers of make-data's shapes and ocr sets (numbers are single digits under Qwen2's \p{N} split).
        foreach (var w in TinyTokenizer.AnswerWords)
            Assert.Single(fx.Tokenizer.Encode(w));
    }

    /// <summary>Reference BPE: split with the Qwen2 regex, map bytes to GPT-2 symbols, apply the lowest-ranked merge until none applies.</summary>
    private List<int> NaiveEncode(string text)
    {
        var vocab = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(Path.Combine(fx.Dir, "vocab.json")))!;
        var ranks = File.ReadAllLines(Path.Combine(fx.Dir, "merges.txt")).Skip(1).Select((m, i) => (m, i)).ToDictionary(p => p.m, p => p.i);
        var sym = TinyTokenizer.ByteSymbols();
        var ids = new List<int>();
        foreach (Match w in Regex.Matches(text, ChatTokenizer.Qwen2Pattern))
        {
            var parts = Encoding.UTF8.GetBytes(w.Value).Select(b => sym[b]).ToList();
            while (true)
            {
                int best = -1, bestRank = int.MaxValue;
                for (int i = 0; i + 1 < parts.Count; i++)
                    if (ranks.TryGetValue(parts[i] + " " + parts[i + 1], out var r) && r < bestRank) { best = i; bestRank = r; }
                if (best < 0) break;
                parts[best] += parts[best + 1];
                parts.RemoveAt(best + 1);
            }
            ids.AddRange(parts.Select(p => vocab[p]));
        }
        return ids;
    }

    [Theory]
    [InlineData("What is in the image?")]
    [InlineData("The assistant gives helpful answers.\n\nÜnïcödé ✓ 12345  spaces")]
    [InlineData("USER: Describe the picture. ASSISTANT:")]
    public void Encoding_matches_a_naive_BPE_and_round_trips(string text)
    {
        var ids = fx.Tokenizer.Encode(text);
        Assert.Equal(NaiveEncode(text), ids);
        Assert.Equal(text, fx.Tokenizer.Decode(ids));
    }

    [Fact]
    public void Special_tokens_map_to_their_ids_and_decode_is_configurable()
    {
        var tok = fx.Tokenizer;
        int n = fx.Count - 3;
        Assert.Equal(new Dictionary<string, int> { ["<|endoftext|>"] = n, ["<|im_start|>"] = n + 1, ["<|im_end|>"] = n + 2 }, tok.SpecialTokens);
        Assert.Equal(n + 2, tok.EosTokenId);
        Assert.Equal(n, tok.PadTokenId);
        Assert.Null(tok.BosTokenId);
        var ids = tok.Encode("<|im_start|>user\nhi<|im_end|>");
        Assert.Equal(n + 1, ids[0]);
        Assert.Equal(n + 2, ids[^1]);
        Assert.Equal(NaiveEncode("user\nhi"), ids.Skip(1).Take(ids.Count - 2));
        Assert.Equal("user\nhi", tok.Decode(ids));
        Assert.Equal("<|im_start|>user\nhi<|im_end|>", tok.Decode(ids, keepSpecial: true));
    }

    [Fact]
    public void Missing_tokenizer_files_are_named()
    {
        var empty = Directory.CreateTempSubdirectory("quecc-empty").FullName;
        try
        {
            var e = Assert.Throws<FileNotFoundException>(() => ChatTokenizer.Load(empty));
            Assert.Contains(empty, e.Message);
            Assert.Contains("vocab.json", e.Message);
        }
        finally { Directory.Delete(empty, true); }
    }

    [Fact]
    public void Templates_render_the_reference_formats()
    {
        Assert.Equal("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<image>\nWhat is it?<|im_end|>\n<|im_start|>assistant\n",
            Conversation.Prompt(ConversationStyle.Qwen15Chat, "<image>\nWhat is it?"));
        Assert.Equal("A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions. USER: <image>\nWhat is it? ASSISTANT:",
            Conversation.Prompt(ConversationStyle.VicunaV1, "<image>\nWhat is it?"));
        var segs = Conversation.Render(ConversationStyle.VicunaV1, new[] { ("Q1", (string?)"A1"), ("Q2", "A2") });
        Assert.Equal(" A1</s>", segs[1].Text);
        Assert.True(segs[1].Supervised);
        Assert.Equal("USER: Q2 ASSISTANT:", segs[2].Text);
        Assert.Equal(new[] { false, true, false, true }, segs.Select(s => s.Supervised));
        var q = Conversation.Render(ConversationStyle.Qwen15Chat, new[] { ("Q1", (string?)"A1") });
        Assert.Equal("A1<|im_end|>", q.Single(s => s.Supervised).Text);
    }
}
