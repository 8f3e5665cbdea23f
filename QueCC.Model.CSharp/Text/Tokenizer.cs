using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace QueCC.Model.Text;

/// <summary>
/// A checkpoint's tokenizer: Qwen2-style byte-level BPE (vocab.json + merges.txt) or a Llama SentencePiece
/// tokenizer.model, plus the added special tokens from tokenizer_config.json / tokenizer.json.
/// </summary>
public sealed class ChatTokenizer
{
    /// <summary>Qwen2's pre-tokenizer split (tokenizer.json "pretokenizer" Split pattern).</summary>
    public const string Qwen2Pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    private readonly Tokenizer _inner;
    private readonly Dictionary<int, string> _specialById;

    public IReadOnlyDictionary<string, int> SpecialTokens { get; }
    public int? EosTokenId { get; }
    public int? PadTokenId { get; }
    public int? BosTokenId { get; }
    /// <summary>Highest token id + 1 (the LLM's vocab_size must be at least this).</summary>
    public int Count { get; }

    private ChatTokenizer(Tokenizer inner, Dictionary<string, int> specials, int count, int? eos, int? pad, int? bos)
    {
        _inner = inner;
        SpecialTokens = specials;
        _specialById = specials.ToDictionary(kv => kv.Value, kv => kv.Key);
        Count = count; EosTokenId = eos; PadTokenId = pad; BosTokenId = bos;
    }

    /// <summary>Loads from a checkpoint folder. Errors name the folder and the file that is missing or bad.</summary>
    public static ChatTokenizer Load(string dir)
    {
        if (!Directory.Exists(dir)) throw new UserInputException($"{dir}: tokenizer folder not found");
        var specials = ReadAddedTokens(dir);
        var cfg = ReadJson(Path.Combine(dir, "tokenizer_config.json"));
        string vocab = Path.Combine(dir, "vocab.json"), merges = Path.Combine(dir, "merges.txt"), spm = Path.Combine(dir, "tokenizer.model");
        Tokenizer inner;
        int count;
        if (File.Exists(vocab) && File.Exists(merges))
        {
            try
            {
                inner = BpeTokenizer.Create(new BpeOptions(vocab, merges)
                {
                    ByteLevel = true,
                    PreTokenizer = new RegexPreTokenizer(new Regex(Qwen2Pattern, RegexOptions.Compiled), specials),
                    SpecialTokens = specials,
                });
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                throw new UserInputException($"{dir}: vocab.json/merges.txt could not be loaded as a byte-level BPE tokenizer ({e.Message})");
            }
            count = Math.Max(((BpeTokenizer)inner).Vocabulary.Values.DefaultIfEmpty(-1).Max(), specials.Values.DefaultIfEmpty(-1).Max()) + 1;
        }
        else if (File.Exists(spm))
        {
            using var s = File.OpenRead(spm);
            try { inner = LlamaTokenizer.Create(s, false, false, specials.Count > 0 ? specials : null); }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                throw new UserInputException($"{spm}: not a readable SentencePiece model ({e.Message})");
            }
            count = Math.Max(((LlamaTokenizer)inner).Vocabulary.Count, specials.Values.DefaultIfEmpty(-1).Max() + 1);
        }
        else throw new UserInputException($"{dir}: no tokenizer found; expected vocab.json + merges.txt (byte-level BPE) or tokenizer.model (SentencePiece)");

        int? Id(string key)
        {
            if (cfg is null || !cfg.TryGetPropertyValue(key, out var node) || node is null) return null;
            string? content = node is JsonValue v ? v.GetValue<string>() : node["content"]?.GetValue<string>();
            if (content is null) return null;
            if (specials.TryGetValue(content, out var id)) return id;
            var ids = inner.EncodeToIds(content);
            return ids.Count == 1 ? ids[0] : throw new UserInputException($"{dir}/tokenizer_config.json: {key} '{content}' is not a single token");
        }
        return new ChatTokenizer(inner, specials, count, Id("eos_token"), Id("pad_token"), Id("bos_token"));
    }

    private static JsonObject? ReadJson(string path)
    {
        if (!File.Exists(path)) return null;
        try { return JsonNode.Parse(File.ReadAllText(path)) as JsonObject; }
        catch (JsonException e) { throw new UserInputException($"{path}: not valid JSON ({e.Message})"); }
    }

    /// <summary>Added tokens: tokenizer.json "added_tokens" [{id, content}] and tokenizer_config.json "added_tokens_decoder" {id: {content}}.</summary>
    private static Dictionary<string, int> ReadAddedTokens(string dir)
    {
        var specials = new Dictionary<string, int>();
        var tj = ReadJson(Path.Combine(dir, "tokenizer.json"));
        if (tj?["added_tokens"] is JsonArray arr)
            foreach (var t in arr)
                if (t?["content"]?.GetValue<string>() is { } c && t["id"] is { } id) specials[c] = id.GetValue<int>();
        var cfgPath = Path.Combine(dir, "tokenizer_config.json");
        if (ReadJson(cfgPath)?["added_tokens_decoder"] is JsonObject dec)
            foreach (var (idText, t) in dec)
            {
                if (!int.TryParse(idText, out var id)) throw new UserInputException($"{cfgPath}: added_tokens_decoder key '{idText}' is not an integer id");
                if (t?["content"]?.GetValue<string>() is { } c) specials[c] = id;
            }
        return specials;
    }

    /// <summary>Token ids of <paramref name="text"/>; special tokens written in the text map to their ids. No BOS is added.</summary>
    public IReadOnlyList<int> Encode(string text) => _inner.EncodeToIds(text);

    /// <summary>Text of <paramref name="ids"/>; special tokens are dropped unless <paramref name="keepSpecial"/>.</summary>
    public string Decode(IEnumerable<int> ids, bool keepSpecial = false)
    {
        var sb = new StringBuilder();
        var run = new List<int>();
        void Flush() { if (run.Count > 0) { sb.Append(_inner.Decode(run)); run.Clear(); } }
        foreach (var id in ids)
        {
            if (_specialById.TryGetValue(id, out var s)) { Flush(); if (keepSpecial) sb.Append(s); }
            else run.Add(id);
        }
        Flush();
        return sb.ToString();
    }

    public int? TokenToId(string token)
    {
        if (SpecialTokens.TryGetValue(token, out var id)) return id;
        var ids = _inner.EncodeToIds(token);
        return ids.Count == 1 ? ids[0] : null;
    }
}
