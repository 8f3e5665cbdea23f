using System.Text.Json;
using QueCC.Model.Text;

namespace QueCC.Model.Commands;

/// <summary>What <c>quecc tokenize</c> prints: Hugging Face-equal ids of texts, or the template encoding of LLaVA records.</summary>
public static class TokenizeCommand
{
    private static readonly JsonSerializerOptions Compact = new() { WriteIndented = false };

    /// <summary>
    /// One <c>{"ids":[…]}</c> line per <c>{"text": "…"}</c> line of <paramref name="inputJsonl"/> (blank lines skipped):
    /// <c>tokenizer(text).input_ids</c>, or with <paramref name="addSpecialTokens"/> false <c>add_special_tokens=False</c>.
    /// Every line is read and checked before anything is written.
    /// </summary>
    public static void Texts(string tokenizerDir, string inputJsonl, bool addSpecialTokens, TextWriter output)
    {
        if (!File.Exists(inputJsonl)) throw new UserInputException($"{inputJsonl}: input file not found");
        var texts = new List<string>();
        int lineNo = 0;
        foreach (var line in File.ReadLines(inputJsonl))
        {
            lineNo++;
            if (line.Trim().Length == 0) continue;
            JsonDocument doc;
            try { doc = JsonDocument.Parse(line); }
            catch (JsonException e) { throw new UserInputException($"{inputJsonl}:{lineNo}: not a JSON object ({e.Message}); expected {{\"text\": \"…\"}}"); }
            using (doc)
            {
                if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("text", out var t) || t.ValueKind != JsonValueKind.String)
                    throw new UserInputException($"{inputJsonl}:{lineNo}: expected {{\"text\": \"…\"}} with a string text");
                texts.Add(t.GetString()!);
            }
        }
        var tok = ChatTokenizer.Load(tokenizerDir);
        var lines = texts.Select(t => JsonSerializer.Serialize(new { ids = tok.InputIds(t, addSpecialTokens) }, Compact)).ToList();
        foreach (var l in lines) output.WriteLine(l);
    }

    /// <summary>One <c>{"input_ids","labels","query_ids"}</c> line per record of a LLaVA JSON file, through <see cref="ConversationEncoder"/>.</summary>
    public static void Conversations(string tokenizerDir, string conversationsJson, string template, TextWriter output, string queryRule = "first_user_turn")
    {
        var rule = queryRule switch
        {
            "first_user_turn" => QueryRule.FirstUserTurn,
            "authors_fork" => QueryRule.AuthorsFork,
            _ => throw new UserInputException($"--query-rule {queryRule}: expected first_user_turn or authors_fork"),
        };
        var style = Conversation.ParseStyle(template);
        var records = ConversationEncoder.ReadRecords(conversationsJson);
        var tok = ChatTokenizer.Load(tokenizerDir);
        var lines = records.Select((r, i) =>
        {
            var e = ConversationEncoder.EncodeMessages(tok, style, r.Messages, $"{conversationsJson}: record {i} (id {r.Id})", rule);
            return JsonSerializer.Serialize(new { input_ids = e.InputIds, labels = e.Labels, query_ids = e.QueryIds }, Compact);
        }).ToList();
        foreach (var l in lines) output.WriteLine(l);
    }
}
