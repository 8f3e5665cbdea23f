using QueCC.Model.Text;

namespace QueCC.Model.Tests.Text;

/// <summary>
/// LLaVA-NeXT's preprocess_qwen written out by hand for the tiny tokenizer (the real-tokenizer oracle is
/// make_conversation_fixtures.py): each message "&lt;|im_start|&gt;role\ncontent&lt;|im_end|&gt;\n" tokenized alone, user/system
/// masked, assistant supervised, then every "\n", &lt;|im_start|&gt; and &lt;|im_end|&gt; unmasked; &lt;image&gt; → −200.
/// </summary>
public static class QwenReference
{
    public static (List<int> Ids, List<int> Labels) Encode(ChatTokenizer tok, params (string Role, string Content)[] messages)
    {
        var ids = new List<int>();
        var labels = new List<int>();
        foreach (var (role, content) in new[] { ("system", "You are a helpful assistant.") }.Concat(messages))
        {
            var text = $"<|im_start|>{role}\n{content}<|im_end|>\n";
            var parts = text.Split("<image>");
            for (int i = 0; i < parts.Length; i++)
            {
                if (i > 0) { ids.Add(-200); labels.Add(-100); }
                foreach (var t in tok.Encode(parts[i])) { ids.Add(t); labels.Add(role == "assistant" ? t : -100); }
            }
        }
        var unmask = new[] { tok.Encode("\n").Single(), tok.SpecialTokens["<|im_start|>"], tok.SpecialTokens["<|im_end|>"] };
        for (int i = 0; i < ids.Count; i++) if (unmask.Contains(ids[i])) labels[i] = ids[i];
        return (ids, labels);
    }
}
