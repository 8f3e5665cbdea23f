using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace QueCC.Model.Text;

/// <summary>
/// Writes a small Qwen2-style tokenizer (vocab.json, merges.txt, tokenizer_config.json) for the tiny/small presets:
/// the 256 GPT-2 byte symbols, merges learned by plain BPE on a built-in corpus (every merge result is in the vocab),
/// then &lt;|endoftext|&gt;, &lt;|im_start|&gt;, &lt;|im_end|&gt; as added special tokens.
/// </summary>
public static class TinyTokenizer
{
    public static readonly string[] SpecialTokens = { "<|endoftext|>", "<|im_start|>", "<|im_end|>" };

    private const string Corpus =
        "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions. " +
        "USER: ASSISTANT: system user assistant You are a helpful assistant. " +
        "What is in the image? Describe the image. The image shows a red square on a white background. There is a blue circle and a green triangle. " +
        "What color is the object? How many objects are there? Answer the question using a single word or phrase. Yes No one two three four " +
        "The picture shows a cat sitting on a table next to a window. A man is riding a bicycle down the street. What is the text in the image?\n";

    /// <summary>GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to 256+n.</summary>
    public static string[] ByteSymbols()
    {
        var bs = new List<int>();
        for (int b = '!'; b <= '~'; b++) bs.Add(b);
        for (int b = '¡'; b <= '¬'; b++) bs.Add(b);
        for (int b = '®'; b <= 'ÿ'; b++) bs.Add(b);
        var cs = new List<int>(bs);
        int n = 0;
        for (int b = 0; b < 256; b++)
            if (!bs.Contains(b)) { bs.Add(b); cs.Add(256 + n++); }
        var map = new string[256];
        for (int i = 0; i < 256; i++) map[bs[i]] = ((char)cs[i]).ToString();
        return map;
    }

    /// <summary>
    /// The answers of the synthetic benchmarks (make-data), each on its own line as it follows the assistant header, many
    /// times over: BPE merges them first, so every answer is one token. With answers split into pieces sharing prefixes
    /// ("t" + "ri" + … for triangle, two, three) a small model's greedy decoding came out as "t" or "yelllow".
    /// </summary>
    public static readonly string[] AnswerWords =
    {
        "red", "green", "blue", "yellow", "circle", "square", "triangle", "zero", "one", "two", "three", "four", "left", "right", "yes", "no",
        "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "A", "E", "H", "K", "R", "X",
    };

    private static string DefaultCorpus =>
        Corpus + string.Concat(Enumerable.Repeat(string.Concat(AnswerWords.Select(w => w + "\n")), 20)) +
        "What color is the circle? What shape is the red object? How many shapes are there? Is the blue square left or right of the green triangle? " +
        "What is written in the image? What is written in the top-left? top-right? bottom-left? bottom-right?\n";

    /// <summary>Writes the files into <paramref name="dir"/> and returns the total token count (vocab + specials).</summary>
    public static int Write(string dir, int numMerges = 250, string? corpus = null)
    {
        Directory.CreateDirectory(dir);
        var sym = ByteSymbols();
        var vocab = new Dictionary<string, int>();
        // Qwen2's vocab.json lists the byte symbols first, in bytes_to_unicode order, which is code-point order of the symbols
        foreach (var s in sym.OrderBy(s => (int)s[0])) vocab[s] = vocab.Count;

        var words = new Dictionary<string, int>();
        foreach (Match m in Regex.Matches(corpus ?? DefaultCorpus, ChatTokenizer.Qwen2Pattern))
        {
            var w = string.Join(" ", Encoding.UTF8.GetBytes(m.Value).Select(b => sym[b]));
            words[w] = words.GetValueOrDefault(w) + 1;
        }
        var merges = new List<(string A, string B)>();
        var seqs = words.Select(kv => (Syms: kv.Key.Split(' ').ToList(), Count: kv.Value)).ToList();
        while (merges.Count < numMerges)
        {
            var pairs = new Dictionary<(string, string), int>();
            foreach (var (syms, count) in seqs)
                for (int i = 0; i + 1 < syms.Count; i++) pairs[(syms[i], syms[i + 1])] = pairs.GetValueOrDefault((syms[i], syms[i + 1])) + count;
            if (pairs.Count == 0) break;
            var best = pairs.OrderByDescending(p => p.Value).ThenBy(p => p.Key.Item1, StringComparer.Ordinal).ThenBy(p => p.Key.Item2, StringComparer.Ordinal).First().Key;
            merges.Add(best);
            vocab[best.Item1 + best.Item2] = vocab.Count;
            foreach (var (syms, _) in seqs)
                for (int i = 0; i + 1 < syms.Count; i++)
                    if (syms[i] == best.Item1 && syms[i + 1] == best.Item2) { syms[i] += syms[i + 1]; syms.RemoveAt(i + 1); }
        }

        File.WriteAllText(Path.Combine(dir, "vocab.json"), JsonSerializer.Serialize(vocab, new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
        File.WriteAllLines(Path.Combine(dir, "merges.txt"), new[] { "#version: 0.2" }.Concat(merges.Select(m => $"{m.A} {m.B}")));
        var added = new JsonObject();
        for (int i = 0; i < SpecialTokens.Length; i++)
            added[(vocab.Count + i).ToString()] = new JsonObject { ["content"] = SpecialTokens[i], ["special"] = true, ["lstrip"] = false, ["rstrip"] = false, ["normalized"] = false, ["single_word"] = false };
        var cfg = new JsonObject
        {
            ["tokenizer_class"] = "Qwen2Tokenizer",
            ["added_tokens_decoder"] = added,
            ["additional_special_tokens"] = new JsonArray("<|im_start|>", "<|im_end|>"),
            ["bos_token"] = null,
            ["eos_token"] = "<|im_end|>",
            ["pad_token"] = "<|endoftext|>",
            ["unk_token"] = null,
            ["model_max_length"] = 2048,
        };
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), cfg.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return vocab.Count + SpecialTokens.Length;
    }
}
