namespace QueCC.Model.Text;

/// <summary>The chat formats of the LLMs the paper uses.</summary>
public enum ConversationStyle
{
    /// <summary>ChatML as Qwen1.5-Chat: &lt;|im_start|&gt;role\n…&lt;|im_end|&gt;\n.</summary>
    Qwen15Chat,
    /// <summary>LLaVA's conv_vicuna_v1: "SYSTEM USER: … ASSISTANT: …&lt;/s&gt;".</summary>
    VicunaV1,
    /// <summary>LLaVA's conv_llava_plain (stage-1 pretraining): "&lt;image&gt;" + caption + "\n".</summary>
    Plain,
}

/// <summary>One text piece of a rendered conversation; <see cref="Supervised"/> marks assistant answers (the only tokens with a loss).</summary>
public sealed record ConversationSegment(string Text, bool Supervised);

public static class Conversation
{
    public const string QwenSystem = "You are a helpful assistant.";
    public const string VicunaSystem = "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions.";

    public static ConversationStyle ParseStyle(string name) => name.Trim().ToLowerInvariant() switch
    {
        "qwen" or "qwen_1_5" or "qwen1.5" or "chatml" => ConversationStyle.Qwen15Chat,
        "vicuna" or "vicuna_v1" or "v1" => ConversationStyle.VicunaV1,
        "plain" => ConversationStyle.Plain,
        _ => throw new ArgumentException($"conversation template '{name}': expected qwen_1_5, vicuna_v1 or plain"),
    };

    /// <summary>The template of an LLM config's model_type: Llama → Vicuna v1, Qwen2 → Qwen-1.5 chat.</summary>
    public static ConversationStyle ForModelType(string modelType) =>
        modelType.Contains("llama") || modelType == "llava" ? ConversationStyle.VicunaV1 : ConversationStyle.Qwen15Chat;

    /// <summary>
    /// Renders (user, assistant) turns. A null assistant answer on the last turn ends the text with the assistant
    /// prompt, ready for generation. Assistant answers (with their end marker) are the supervised segments.
    /// </summary>
    public static IReadOnlyList<ConversationSegment> Render(ConversationStyle style, IReadOnlyList<(string User, string? Assistant)> turns, string? system = null)
    {
        if (turns.Count == 0) throw new ArgumentException("a conversation needs at least one user turn");
        var segs = new List<ConversationSegment>();
        for (int i = 0; i < turns.Count; i++)
        {
            var (user, answer) = turns[i];
            if (answer is null && i != turns.Count - 1) throw new ArgumentException($"turn {i}: only the last turn may lack an assistant answer");
            if (style == ConversationStyle.Plain)
            {
                segs.Add(new(i == 0 ? "<image>" : "", false));
                if (answer is not null) segs.Add(new(answer + "\n", true));
            }
            else if (style == ConversationStyle.Qwen15Chat)
            {
                var head = i == 0 ? $"<|im_start|>system\n{system ?? QwenSystem}<|im_end|>\n" : "";
                segs.Add(new(head + $"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n", false));
                if (answer is not null) { segs.Add(new(answer + "<|im_end|>", true)); segs.Add(new("\n", false)); }
            }
            else
            {
                var head = i == 0 ? (system ?? VicunaSystem) + " " : "";
                segs.Add(new(head + $"USER: {user} ASSISTANT:", false));
                if (answer is not null) segs.Add(new($" {answer}</s>", true));
            }
        }
        return segs;
    }

    /// <summary>A single-question prompt ending at the assistant's turn.</summary>
    public static string Prompt(ConversationStyle style, string user, string? system = null) =>
        string.Concat(Render(style, new[] { (user, (string?)null) }, system).Select(s => s.Text));

    /// <summary>Strings that end an assistant answer in this template.</summary>
    public static IReadOnlyList<string> StopStrings(ConversationStyle style) =>
        style switch
        {
            ConversationStyle.Qwen15Chat => new[] { "<|im_end|>", "<|endoftext|>" },
            ConversationStyle.Plain => new[] { "\n" },
            _ => new[] { "</s>" },
        };
}
