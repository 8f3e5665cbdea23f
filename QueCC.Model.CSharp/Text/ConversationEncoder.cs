using System.Text.Json;

namespace QueCC.Model.Text;

/// <summary>A conversation encoded for training or generation: ids with <see cref="ConversationEncoder.ImageTokenIndex"/> at the
/// image placeholder, labels (−100 = no loss; empty for a generation prompt) and the QueCC query (text and token ids).</summary>
public sealed record EncodedConversation(List<int> InputIds, List<int> Labels, string QueryText, IReadOnlyList<int> QueryIds);

/// <summary>
/// The one place conversations become token ids, for training, evaluation, generation and <c>quecc tokenize</c> alike. Each
/// template is the reference's function, step for step, before truncation:
/// <list type="bullet">
/// <item>vicuna_v1: LLaVA's <c>preprocess_v1</c>. The whole prompt (conv_vicuna_v1: system, "USER: q ASSISTANT: a&lt;/s&gt;"
/// rounds) goes through <c>tokenizer_image_token</c>; the first token and, per round, the instruction
/// (<c>len(tokenizer_image_token("... ASSISTANT: ")) - 2</c> tokens) are masked; with a non-legacy tokenizer rounds after the first
/// count one token less; when the masked length differs from the number of non-pad tokens every label is masked (LLaVA's
/// "tokenization mismatch"). The pad id is the unk token's, as LLaVA sets for v1.</item>
/// <item>qwen_1_5: LLaVA-NeXT's <c>preprocess_qwen</c>: a system message, then one "&lt;|im_start|&gt;role\ncontent&lt;|im_end|&gt;\n"
/// per message, each tokenized on its own without special tokens (&lt;image&gt; is a special token there); user and system tokens are
/// masked, assistant messages (header included) supervised, and every "\n", &lt;|im_start|&gt; and &lt;|im_end|&gt; token is unmasked.
/// The reference hard-codes 198 for "\n" and unpacks <c>additional_special_tokens_ids</c> into (im_start, im_end); here those
/// are the ids of "\n", "&lt;|im_start|&gt;" and "&lt;|im_end|&gt;" in the tokenizer at hand (198 in Qwen's vocabulary).</item>
/// <item>plain: LLaVA's <c>preprocess_plain</c>: "&lt;image&gt;" + answer + "\n", the image part masked.</item>
/// </list>
/// The QueCC query is the rule of the authors' <c>llava_arch.py</c>: the ids after the (last) image token decoded without special
/// tokens, the text from after its first "\n" up to its first "ASSISTANT" (Python slicing: without an "ASSISTANT" the end index is
/// −1, which drops the last character; so under qwen_1_5, whose text has no "ASSISTANT", the query runs to the end of the
/// conversation), stripped, then tokenized by the LLM tokenizer with its special tokens (<c>llm_tokenizer(text).input_ids</c>:
/// with &lt;s&gt; for Llama/Vicuna). Without an image token the reference uses the word "image".
/// That exact rule is <see cref="QueryRule.AuthorsFork"/>. The default, <see cref="QueryRule.FirstUserTurn"/>, differs only for
/// templates without "ASSISTANT" (qwen_1_5): there the fork's training query runs on through the answers, so the compressor
/// is handed, in training only, the answer it is trained to predict (at inference the prompt ends at the assistant
/// header). FirstUserTurn ends the query with the first user turn (at its end-of-turn token), the same text in training
/// and at inference (docs/miniature-world.md, 1e).
/// </summary>
public static class ConversationEncoder
{
    public const int ImageTokenIndex = -200;
    public const int IgnoreIndex = -100;
    public const string ImagePlaceholder = "<image>";
    public const string QwenSystem = "You are a helpful assistant.";

    /// <summary>LLaVA's preprocess_multimodal (mm_use_im_start_end off): the placeholder moves to the front of its message, followed by "\n".</summary>
    public static string MoveImageToFront(string value)
    {
        if (!value.Contains(ImagePlaceholder, StringComparison.Ordinal)) return value;
        return (ImagePlaceholder + "\n" + value.Replace(ImagePlaceholder, "").Trim()).Trim();
    }

    /// <summary>
    /// LLaVA "conversations" messages (from human/gpt, value) as (user, assistant) turns after preprocess_multimodal; a
    /// leading non-human message is dropped as the reference does. Messages must alternate human, gpt.
    /// </summary>
    public static List<(string User, string? Assistant)> TurnsFromMessages(IReadOnlyList<(string From, string Value)> messages, string source = "conversation")
    {
        var msgs = messages.ToList();
        if (msgs.Count > 0 && !IsHuman(msgs[0].From)) msgs.RemoveAt(0);
        var turns = new List<(string, string?)>();
        for (int i = 0; i < msgs.Count; i += 2)
        {
            if (!IsHuman(msgs[i].From)) throw new UserInputException($"{source}: conversations[{i}].from is '{msgs[i].From}'; expected human (turns alternate human, gpt)");
            string? answer = null;
            if (i + 1 < msgs.Count)
            {
                if (IsHuman(msgs[i + 1].From)) throw new UserInputException($"{source}: conversations[{i + 1}].from is '{msgs[i + 1].From}'; expected gpt (turns alternate human, gpt)");
                answer = MoveImageToFront(msgs[i + 1].Value);
            }
            turns.Add((MoveImageToFront(msgs[i].Value), answer));
        }
        if (turns.Count == 0) throw new UserInputException($"{source}: no human message");
        return turns;
    }

    private static bool IsHuman(string from) => from is "human" or "user";

    /// <summary>
    /// Encodes (user, assistant) turns through <paramref name="template"/>. A null answer on the last turn makes a generation
    /// prompt that ends with the assistant's header (labels empty); earlier turns must have answers.
    /// </summary>
    public static EncodedConversation Encode(ChatTokenizer tok, ConversationStyle template, IReadOnlyList<(string User, string? Assistant)> turns,
                                             QueryRule queryRule = QueryRule.FirstUserTurn)
    {
        if (turns.Count == 0) throw new ArgumentException("a conversation needs at least one user turn");
        for (int i = 0; i + 1 < turns.Count; i++)
            if (turns[i].Assistant is null) throw new ArgumentException($"turn {i}: only the last turn may lack an assistant answer");
        bool prompt = turns[^1].Assistant is null;
        var (ids, labels) = template switch
        {
            ConversationStyle.VicunaV1 => prompt ? (TokenizerImageToken(tok, VicunaPrompt(turns)), new List<int>()) : VicunaV1(tok, turns),
            ConversationStyle.Qwen15Chat => Qwen(tok, turns, prompt),
            ConversationStyle.Plain => Plain(tok, turns, prompt),
            _ => throw new ArgumentOutOfRangeException(nameof(template)),
        };
        var query = QueryText(tok, ids, queryRule);
        return new EncodedConversation(ids, labels, query, tok.InputIds(query));
    }

    /// <summary>
    /// One LLaVA record's "conversations" messages through <paramref name="template"/>, as the reference's data pipeline does:
    /// preprocess_multimodal, then the template (preprocess_plain takes exactly one human and one gpt message).
    /// </summary>
    public static EncodedConversation EncodeMessages(ChatTokenizer tok, ConversationStyle template, IReadOnlyList<(string From, string Value)> messages, string source = "conversation",
                                                     QueryRule queryRule = QueryRule.FirstUserTurn)
    {
        if (template == ConversationStyle.Plain && messages.Count != 2)
            throw new UserInputException($"{source}: the plain template takes exactly 2 messages (human with <image>, gpt caption); found {messages.Count}");
        return Encode(tok, template, TurnsFromMessages(messages, source), queryRule);
    }

    /// <summary>LLaVA's tokenizer_image_token: each chunk around &lt;image&gt; is <c>tokenizer(chunk).input_ids</c>; a leading BOS is kept once.</summary>
    public static List<int> TokenizerImageToken(ChatTokenizer tok, string prompt)
    {
        var chunks = prompt.Split(ImagePlaceholder).Select(c => tok.InputIds(c)).ToList();
        int offset = chunks.Count > 0 && chunks[0].Count > 0 && tok.BosTokenId is { } bos && chunks[0][0] == bos ? 1 : 0;
        var ids = new List<int>();
        if (offset == 1) ids.Add(chunks[0][0]);
        for (int i = 0; i < chunks.Count; i++)
        {
            if (i > 0) ids.Add(ImageTokenIndex);
            ids.AddRange(chunks[i].Skip(offset));
        }
        return ids;
    }

    // conv_vicuna_v1: SeparatorStyle.TWO with sep " " and sep2 "</s>".
    private const string VicunaSep = " ", VicunaSep2 = "</s>";

    private static string VicunaPrompt(IReadOnlyList<(string User, string? Assistant)> turns)
    {
        var sb = new System.Text.StringBuilder(Conversation.VicunaSystem + VicunaSep);
        foreach (var (user, answer) in turns)
        {
            sb.Append("USER: ").Append(user).Append(VicunaSep);
            sb.Append(answer is null ? "ASSISTANT:" : "ASSISTANT: " + answer + VicunaSep2);
        }
        return sb.ToString();
    }

    private static (List<int>, List<int>) VicunaV1(ChatTokenizer tok, IReadOnlyList<(string User, string? Assistant)> turns)
    {
        var conversation = VicunaPrompt(turns);
        var ids = TokenizerImageToken(tok, conversation);
        var target = new List<int>(ids);
        int pad = tok.UnkTokenId ?? tok.PadTokenId ?? int.MinValue;
        int totalLen = ids.Count(t => t != pad);
        const string sep = VicunaSep + "ASSISTANT" + ": ";
        int curLen = 1;
        PySliceFill(target, 0, curLen);
        var rounds = conversation.Split(VicunaSep2);
        for (int i = 0; i < rounds.Length; i++)
        {
            var rou = rounds[i];
            if (rou.Length == 0) break;
            var parts = rou.Split(sep);
            if (parts.Length != 2) break;
            int roundLen = TokenizerImageToken(tok, rou).Count;
            int instructionLen = TokenizerImageToken(tok, parts[0] + sep).Count - 2;
            if (i != 0 && !tok.Legacy) { roundLen -= 1; instructionLen -= 1; }
            PySliceFill(target, curLen, curLen + instructionLen);
            curLen += roundLen;
        }
        PySliceFill(target, curLen, null);
        if (curLen < tok.ModelMaxLength && curLen != totalLen) PySliceFill(target, 0, null);
        return (ids, target);
    }

    /// <summary>Python's <c>target[start:end] = IGNORE_INDEX</c>, negative and out-of-range indices included.</summary>
    private static void PySliceFill(List<int> target, int start, int? end)
    {
        int n = target.Count;
        int Norm(int i) => i < 0 ? Math.Max(0, n + i) : Math.Min(i, n);
        int s = Norm(start), e = end is { } v ? Norm(v) : n;
        for (int i = s; i < e; i++) target[i] = IgnoreIndex;
    }

    private static (List<int>, List<int>) Qwen(ChatTokenizer tok, IReadOnlyList<(string User, string? Assistant)> turns, bool prompt)
    {
        int imStart = tok.TokenToId("<|im_start|>") ?? throw new UserInputException("the qwen_1_5 template needs a tokenizer with <|im_start|>");
        int imEnd = tok.TokenToId("<|im_end|>") ?? throw new UserInputException("the qwen_1_5 template needs a tokenizer with <|im_end|>");
        var nl = tok.Encode("\n");
        var unmask = new HashSet<int> { imStart, imEnd };
        if (nl.Count == 1) unmask.Add(nl[0]);
        var ids = new List<int>();
        var target = new List<int>();
        void Message(string role, string content, bool supervised)
        {
            var encoded = EncodeWithImageToken(tok, "<|im_start|>" + role + "\n" + content + "<|im_end|>\n");
            ids.AddRange(encoded);
            target.AddRange(supervised ? encoded : encoded.Select(_ => IgnoreIndex));
        }
        Message("system", QwenSystem, false);
        foreach (var (user, answer) in turns)
        {
            Message("user", user, false);
            if (answer is not null) Message("assistant", answer, true);
        }
        for (int i = 0; i < ids.Count; i++)
            if (unmask.Contains(ids[i])) target[i] = ids[i];
        if (!prompt) return (ids, target);
        // The generation prompt of LLaVA-NeXT's conv_qwen (chatml): the same messages, then the assistant header.
        ids.AddRange(tok.Encode("<|im_start|>assistant\n"));
        return (ids, new List<int>());
    }

    /// <summary>add_special_tokens=False ids with &lt;image&gt; treated as one special token that becomes <see cref="ImageTokenIndex"/>.</summary>
    private static List<int> EncodeWithImageToken(ChatTokenizer tok, string text)
    {
        var ids = new List<int>();
        var chunks = text.Split(ImagePlaceholder);
        for (int i = 0; i < chunks.Length; i++)
        {
            if (i > 0) ids.Add(ImageTokenIndex);
            ids.AddRange(tok.Encode(chunks[i]));
        }
        return ids;
    }

    private static (List<int>, List<int>) Plain(ChatTokenizer tok, IReadOnlyList<(string User, string? Assistant)> turns, bool prompt)
    {
        if (prompt) return (TokenizerImageToken(tok, ImagePlaceholder), new List<int>());
        if (turns.Count != 1) throw new UserInputException($"the plain template takes one (image, caption) pair; the conversation has {turns.Count} turns");
        if (!turns[0].User.Contains(ImagePlaceholder, StringComparison.Ordinal)) throw new UserInputException("the plain template needs <image> in the human message");
        var ids = TokenizerImageToken(tok, ImagePlaceholder + turns[0].Assistant + "\n");
        var target = new List<int>(ids);
        PySliceFill(target, 0, TokenizerImageToken(tok, ImagePlaceholder).Count);
        return (ids, target);
    }

    /// <summary>The QueCC query text for encoded ids under <paramref name="rule"/> (see the class summary).</summary>
    public static string QueryText(ChatTokenizer tok, IReadOnlyList<int> ids, QueryRule rule = QueryRule.FirstUserTurn)
    {
        int at = -1;
        for (int i = 0; i < ids.Count; i++) if (ids[i] == ImageTokenIndex) at = i;
        if (at < 0) return "image";
        var after = ids.Skip(at + 1).Where(t => t >= 0).ToList();
        bool cut = false;
        if (rule == QueryRule.FirstUserTurn && tok.SpecialTokens.TryGetValue("<|im_end|>", out var imEnd) && after.IndexOf(imEnd) is var k and >= 0)
        {
            after.RemoveRange(k, after.Count - k);
            cut = true;
        }
        var text = tok.Decode(after);
        int start = text.IndexOf('\n') + 1;
        int end = text.IndexOf("ASSISTANT", StringComparison.Ordinal);
        if (end < 0 && cut) end = text.Length;
        if (end < 0) end = text.Length - (text.Length >= 2 && char.IsLowSurrogate(text[^1]) ? 2 : text.Length >= 1 ? 1 : 0);
        return end > start ? text[start..end].Trim() : "";
    }

    /// <summary>LLaVA "conversations" records of a JSON file: (id, messages). Only the shape is checked; templates check the rest.</summary>
    public static List<(string Id, List<(string From, string Value)> Messages)> ReadRecords(string path)
    {
        if (!File.Exists(path)) throw new UserInputException($"{path}: conversations file not found");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllBytes(path)); }
        catch (JsonException e) { throw new UserInputException($"{path}: not valid JSON ({e.Message})"); }
        using var _ = doc;
        if (doc.RootElement.ValueKind != JsonValueKind.Array) throw new UserInputException($"{path}: expected a top-level array of LLaVA records, found {doc.RootElement.ValueKind}");
        var result = new List<(string, List<(string, string)>)>();
        int index = 0;
        foreach (var r in doc.RootElement.EnumerateArray())
        {
            if (r.ValueKind != JsonValueKind.Object || !r.TryGetProperty("conversations", out var conv) || conv.ValueKind != JsonValueKind.Array)
                throw new UserInputException($"{path}: record {index}: expected an object with a 'conversations' array");
            var id = r.TryGetProperty("id", out var idEl) ? (idEl.ValueKind == JsonValueKind.String ? idEl.GetString()! : idEl.GetRawText()) : $"#{index}";
            var msgs = new List<(string, string)>();
            int k = 0;
            foreach (var m in conv.EnumerateArray())
            {
                if (m.ValueKind != JsonValueKind.Object || !m.TryGetProperty("from", out var f) || f.ValueKind != JsonValueKind.String
                    || !m.TryGetProperty("value", out var v) || v.ValueKind != JsonValueKind.String)
                    throw new UserInputException($"{path}: record {index} (id {id}): conversations[{k}]: expected {{\"from\": string, \"value\": string}}");
                msgs.Add((f.GetString()!, v.GetString()!));
                k++;
            }
            result.Add((id, msgs));
            index++;
        }
        return result;
    }
}

/// <summary>Where the QueCC query text ends (see <see cref="ConversationEncoder"/>); config.json key <c>quecc_query_rule</c>.</summary>
public enum QueryRule
{
    /// <summary>At the end of the first user turn: the same query in training and at inference (default).</summary>
    FirstUserTurn,
    /// <summary>The authors' llava_arch.py exactly: up to the first "ASSISTANT", else to the end less one character.</summary>
    AuthorsFork,
}
