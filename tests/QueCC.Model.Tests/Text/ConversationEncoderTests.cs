using System.Text.Json.Nodes;
using QueCC.Model.Text;

namespace QueCC.Model.Tests.Text;

/// <summary>
/// Encodings against scripts/fixtures/make_conversation_fixtures.py: a re-implementation of LLaVA's preprocess_v1 /
/// preprocess_plain, LLaVA-NeXT's preprocess_qwen and the authors' QueCC query rule, run over the real tokenizers through the
/// oracles (Hugging Face's JS tokenizers, sentencepiece).
/// </summary>
public class ConversationEncoderTests
{
    private static string FixtureDir => Path.Combine(AppContext.BaseDirectory, "Fixtures");

    private static ChatTokenizer Tokenizer(string name) =>
        ChatTokenizer.Load(name.StartsWith("spm") ? Path.Combine(FixtureDir, "tokenizers", name) : RealTokenizers.Dir(name));

    [Theory]
    [InlineData("vicuna_v1", "spm")]
    [InlineData("vicuna_v1", "spm-nonlegacy")]
    [InlineData("vicuna_v1", "llama2")]
    [InlineData("qwen_1_5", "qwen3")]
    [InlineData("plain", "spm")]
    [InlineData("plain", "qwen3")]
    public void Records_encode_exactly_as_the_reference_preprocess_functions(string template, string tokenizer)
        => EncodesAsReference(template, tokenizer);

    /// <summary>The fixtures hold the authors' fork's query rule; <see cref="QueryRule.AuthorsFork"/> reproduces it exactly.</summary>
    private static void EncodesAsReference(string template, string tokenizer)
    {
        var tok = Tokenizer(tokenizer);
        var style = Conversation.ParseStyle(template);
        var records = ConversationEncoder.ReadRecords(Path.Combine(FixtureDir, "conversations", "records.json"));
        var expected = JsonNode.Parse(File.ReadAllText(Path.Combine(FixtureDir, "conversations", $"{template}.{tokenizer}.expected.json")))!.AsArray();
        Assert.Equal(records.Count, expected.Count);
        static int[] Ints(JsonNode? n) => n!.AsArray().Select(x => x!.GetValue<int>()).ToArray();
        static string S(IEnumerable<int> ids) => "[" + string.Join(",", ids) + "]";
        var wrong = new List<string>();
        int supervised = 0;
        for (int i = 0; i < records.Count; i++)
        {
            var (id, msgs) = records[i];
            var exp = expected[i]!;
            if (exp["error"] is not null)
            {
                Assert.Throws<UserInputException>(() => ConversationEncoder.EncodeMessages(tok, style, msgs, id, QueryRule.AuthorsFork));
                continue;
            }
            var got = ConversationEncoder.EncodeMessages(tok, style, msgs, id, QueryRule.AuthorsFork);
            // The default rule differs from the fork only where the fork's query runs past the first user turn (qwen_1_5).
            var byDefault = ConversationEncoder.EncodeMessages(tok, style, msgs, id);
            Assert.Equal(got.InputIds, byDefault.InputIds);
            if (style != ConversationStyle.Qwen15Chat) Assert.Equal(got.QueryText, byDefault.QueryText);
            if (!Ints(exp["input_ids"]).SequenceEqual(got.InputIds)) wrong.Add($"{id} input_ids: expected {S(Ints(exp["input_ids"]))}, got {S(got.InputIds)}");
            if (!Ints(exp["labels"]).SequenceEqual(got.Labels)) wrong.Add($"{id} labels: expected {S(Ints(exp["labels"]))}, got {S(got.Labels)}");
            if (exp["query_text"]!.GetValue<string>() != got.QueryText) wrong.Add($"{id} query text: expected '{exp["query_text"]}', got '{got.QueryText}'");
            if (!Ints(exp["query_ids"]).SequenceEqual(got.QueryIds)) wrong.Add($"{id} query_ids: expected {S(Ints(exp["query_ids"]))}, got {S(got.QueryIds)}");
            supervised += got.Labels.Count(l => l != ConversationEncoder.IgnoreIndex);
            Assert.Equal(1, got.InputIds.Count(t => t == ConversationEncoder.ImageTokenIndex));
        }
        Assert.True(wrong.Count == 0, $"{wrong.Count} differences:\n" + string.Join("\n", wrong));
        Assert.True(supervised > 0);
    }

    [Fact]
    public void Qwen_query_is_the_first_user_turn_in_training_and_at_inference_and_never_holds_the_answer()
    {
        var tok = Tokenizer("qwen3");
        var train = ConversationEncoder.Encode(tok, ConversationStyle.Qwen15Chat, new[] { ("<image>\nWhat shape is the red object?", (string?)"circle") });
        var prompt = ConversationEncoder.Encode(tok, ConversationStyle.Qwen15Chat, new[] { ("<image>\nWhat shape is the red object?", (string?)null) });
        Assert.Equal("What shape is the red object?", train.QueryText);
        Assert.Equal(train.QueryText, prompt.QueryText);
        Assert.Equal(train.QueryIds, prompt.QueryIds);
        // The fork's rule, kept as a setting: under this template its training query contains the answer.
        var fork = ConversationEncoder.Encode(tok, ConversationStyle.Qwen15Chat, new[] { ("<image>\nWhat shape is the red object?", (string?)"circle") }, QueryRule.AuthorsFork);
        Assert.Contains("circle", fork.QueryText);
    }

    [Fact]
    public void Vicuna_query_starts_with_bos_and_the_tokenization_mismatch_masks_everything()
    {
        var tok = Tokenizer("spm");
        var e = ConversationEncoder.EncodeMessages(tok, ConversationStyle.VicunaV1, new[] { ("human", "<image>\nWhat is it?"), ("gpt", "A cat.") });
        Assert.Equal("What is it?", e.QueryText);
        Assert.Equal(tok.BosTokenId, e.QueryIds[0]);
        Assert.Equal(tok.Encode("What is it?"), e.QueryIds.Skip(1));
        // An answer holding " ASSISTANT: " splits its round in three: LLaVA stops counting and, the lengths disagreeing, masks all.
        var bad = ConversationEncoder.EncodeMessages(tok, ConversationStyle.VicunaV1, new[] { ("human", "<image>\nSay it."), ("gpt", "USER: hi ASSISTANT: hello") });
        Assert.All(bad.Labels, l => Assert.Equal(ConversationEncoder.IgnoreIndex, l));
    }

    [Fact]
    public void Generation_prompts_end_at_the_assistant_header()
    {
        var spm = Tokenizer("spm");
        var v = ConversationEncoder.Encode(spm, ConversationStyle.VicunaV1, new[] { ("<image>\nWhat is it?", (string?)null) });
        Assert.Equal(ConversationEncoder.TokenizerImageToken(spm, Conversation.VicunaSystem + " USER: <image>\nWhat is it? ASSISTANT:"), v.InputIds);
        Assert.Equal("What is it?", v.QueryText);
        Assert.Empty(v.Labels);
    }
}
