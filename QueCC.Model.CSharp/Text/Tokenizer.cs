using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace QueCC.Model.Text;

/// <summary>Which file of a Hugging Face folder a <see cref="ChatTokenizer"/> was read from.</summary>
public enum TokenizerKind
{
    /// <summary>tokenizer.json (the "fast" format), run by Hugging Face's own Rust tokenizers through Tokenizers.DotNet.</summary>
    TokenizerJson,
    /// <summary>vocab.json + merges.txt: Qwen2Tokenizer's byte-level BPE (NFC, Qwen2 split regex).</summary>
    ByteLevelBpe,
    /// <summary>tokenizer.model: LlamaTokenizer (slow, legacy=True) over a SentencePiece model.</summary>
    SentencePiece,
}

/// <summary>
/// A checkpoint's tokenizer, read from a Hugging Face folder as <c>AutoTokenizer.from_pretrained</c> would:
/// tokenizer.json first (the fast tokenizer), else vocab.json + merges.txt, else a SentencePiece tokenizer.model;
/// tokenizer_config.json names the BOS/EOS/PAD tokens and decides whether BOS/EOS are added.
/// <see cref="InputIds"/> is Hugging Face's <c>tokenizer(text).input_ids</c>; <see cref="Encode"/> is the same with
/// <c>add_special_tokens=False</c> (special tokens written in the text still map to their ids).
/// </summary>
/// <remarks>
/// BOS/EOS rule: when tokenizer_config.json has <c>add_bos_token</c>/<c>add_eos_token</c> they decide (LlamaTokenizerFast
/// rebuilds its post-processor from them; the slow tokenizers read them directly); otherwise a tokenizer.json's own
/// post-processor decides, a SentencePiece model adds BOS only (LlamaTokenizer's defaults) and a byte-level BPE adds nothing
/// (Qwen2Tokenizer).
/// SentencePiece rule (HF's slow LlamaTokenizer with legacy=True, the tokenizer of LLaVA-1.5/Vicuna): the text is split at
/// the special tokens (lstrip/rstrip false: spaces next to them stay in the neighbouring text) and every non-empty piece is
/// encoded by SentencePiece on its own, so each piece gets the dummy "▁" prefix, also the one right after "&lt;/s&gt;".
/// </remarks>
public sealed class ChatTokenizer
{
    /// <summary>Qwen2's pre-tokenizer split (tokenizer.json "pretokenizer" Split pattern).</summary>
    public const string Qwen2Pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    private readonly Func<string, int[]> _encodePlain;
    private readonly Func<string, int[]>? _encodeWithPostProcessor;
    private readonly Func<IReadOnlyList<int>, string> _decodeRun;
    private readonly Func<string, int?> _pieceToId;
    private readonly Dictionary<int, string> _specialById;

    public TokenizerKind Kind { get; }
    public IReadOnlyDictionary<string, int> SpecialTokens { get; }
    public int? EosTokenId { get; }
    public int? PadTokenId { get; }
    public int? BosTokenId { get; }
    /// <summary>Whether <see cref="InputIds"/> puts BOS first / EOS last; null for a tokenizer.json whose post-processor decides.</summary>
    public bool? AddBosToken { get; }
    public bool? AddEosToken { get; }
    /// <summary>Highest token id + 1 (the LLM's vocab_size must be at least this).</summary>
    public int Count { get; }
    public int? UnkTokenId { get; private init; }
    /// <summary>tokenizer_config.json "legacy" (transformers treats a missing value as true); true for tokenizers without the notion.</summary>
    public bool Legacy { get; private init; } = true;
    /// <summary>tokenizer_config.json "model_max_length" (a double: Hugging Face writes 1e30 for "no limit").</summary>
    public double ModelMaxLength { get; private init; } = 1e30;

    private ChatTokenizer(TokenizerKind kind, Func<string, int[]> encodePlain, Func<string, int[]>? encodeWithPostProcessor,
        Func<IReadOnlyList<int>, string> decodeRun, Func<string, int?> pieceToId, Dictionary<string, int> specials, int count,
        int? eos, int? pad, int? bos, bool? addBos, bool? addEos)
    {
        Kind = kind;
        _encodePlain = encodePlain; _encodeWithPostProcessor = encodeWithPostProcessor; _decodeRun = decodeRun; _pieceToId = pieceToId;
        SpecialTokens = specials;
        _specialById = new Dictionary<int, string>();
        foreach (var (s, id) in specials) _specialById.TryAdd(id, s);
        Count = count; EosTokenId = eos; PadTokenId = pad; BosTokenId = bos; AddBosToken = addBos; AddEosToken = addEos;
    }

    private ChatTokenizer(ChatTokenizer t) : this(t.Kind, t._encodePlain, t._encodeWithPostProcessor, t._decodeRun, t._pieceToId,
        t.SpecialTokens.ToDictionary(kv => kv.Key, kv => kv.Value), t.Count, t.EosTokenId, t.PadTokenId, t.BosTokenId, t.AddBosToken, t.AddEosToken)
    { UnkTokenId = t.UnkTokenId; }

    /// <summary>Same as <see cref="Load"/>: the name library users know from transformers.</summary>
    public static ChatTokenizer FromPretrained(string dir) => Load(dir);

    /// <summary>Loads from a checkpoint folder. Errors name the folder and the file that is missing or bad.</summary>
    public static ChatTokenizer Load(string dir)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"{dir}: tokenizer folder not found");
        var cfgPath = Path.Combine(dir, "tokenizer_config.json");
        var cfg = ReadJson(cfgPath);
        string json = Path.Combine(dir, "tokenizer.json"), vocab = Path.Combine(dir, "vocab.json"), merges = Path.Combine(dir, "merges.txt"), spm = Path.Combine(dir, "tokenizer.model");
        bool? cfgAddBos = ReadBool(cfg, "add_bos_token", cfgPath), cfgAddEos = ReadBool(cfg, "add_eos_token", cfgPath);
        bool legacy = ReadBool(cfg, "legacy", cfgPath) ?? true;
        double maxLength = 1e30;
        if (cfg?["model_max_length"] is { } ml)
            maxLength = ml is JsonValue mv && mv.TryGetValue<double>(out var d) ? d
                : throw new InvalidDataException($"{cfgPath}: model_max_length is {ml.ToJsonString()}; expected a number");
        ChatTokenizer? tok = null;
        if (File.Exists(json)) tok = LoadTokenizerJson(dir, json, cfg, cfgPath, cfgAddBos, cfgAddEos);
        else if (File.Exists(vocab) && File.Exists(merges)) tok = LoadByteLevelBpe(dir, vocab, merges, cfg, cfgPath, cfgAddBos, cfgAddEos);
        else if (File.Exists(spm))
        {
            if (!legacy)
                throw new InvalidDataException($"{cfgPath}: legacy is false, but only the legacy=True behaviour of the slow LlamaTokenizer over tokenizer.model is implemented; add the folder's tokenizer.json (the fast tokenizer) or set legacy to true");
            tok = LoadSentencePiece(dir, spm, cfg, cfgPath, cfgAddBos, cfgAddEos);
        }
        if (tok is not null)
        {
            int? unk = null;
            if (cfg?["unk_token"] is { } u && (u is JsonValue uv && uv.TryGetValue<string>(out var us) ? us : u["content"]?.GetValue<string>()) is { } unkText)
                unk = tok.TokenToId(unkText);
            return new ChatTokenizer(tok) { UnkTokenId = unk ?? tok.UnkTokenId, Legacy = legacy, ModelMaxLength = maxLength };
        }
        throw new FileNotFoundException($"{dir}: no tokenizer found; expected tokenizer.json, vocab.json + merges.txt (byte-level BPE) or tokenizer.model (SentencePiece)");
    }

    private static ChatTokenizer LoadTokenizerJson(string dir, string path, JsonObject? cfg, string cfgPath, bool? addBos, bool? addEos)
    {
        var tj = ReadJson(path) ?? throw new InvalidDataException($"{path}: expected a JSON object");
        var specials = new Dictionary<string, int>();
        if (tj["added_tokens"] is JsonArray arr)
            foreach (var t in arr)
                if (t?["content"]?.GetValue<string>() is { } c && t["id"] is { } id) specials[c] = id.GetValue<int>();
        var pieces = new Dictionary<string, int>(StringComparer.Ordinal);
        switch (tj["model"]?["vocab"])
        {
            case JsonObject v: foreach (var (k, id) in v) if (id is not null) pieces[k] = id.GetValue<int>(); break;
            case JsonArray list: for (int i = 0; i < list.Count; i++) if (list[i] is JsonArray e && e[0]?.GetValue<string>() is { } p) pieces.TryAdd(p, i); break;
            default: throw new InvalidDataException($"{path}: model.vocab is missing; expected the tokenizer model's vocabulary");
        }
        Tokenizers.DotNet.Tokenizer withPost, plain;
        // The native encoder always runs the post-processor (add_special_tokens=true); add_special_tokens=false is the
        // same pipeline with the post-processor removed, so a second instance is loaded from a copy without it.
        var tmp = Path.Combine(Path.GetTempPath(), $"quecc-tokenizer-{Guid.NewGuid():N}.json");
        try
        {
            withPost = new Tokenizers.DotNet.Tokenizer(path);
            tj["post_processor"] = null;
            File.WriteAllText(tmp, tj.ToJsonString());
            plain = new Tokenizers.DotNet.Tokenizer(tmp);
        }
        catch (Tokenizers.DotNet.TokenizerException e)
        {
            throw new InvalidDataException($"{path}: Hugging Face tokenizers could not load it ({e.Message})");
        }
        finally { try { File.Delete(tmp); } catch (IOException) { } }
        int count = Math.Max(pieces.Values.DefaultIfEmpty(-1).Max(), specials.Values.DefaultIfEmpty(-1).Max()) + 1;
        static int[] ToInt(uint[] ids) => Array.ConvertAll(ids, i => checked((int)i));
        var (eos, pad, bos) = SpecialIds(cfg, cfgPath, specials, s => pieces.TryGetValue(s, out var id) ? id : null);
        return new ChatTokenizer(TokenizerKind.TokenizerJson, t => ToInt(plain.Encode(t)), t => ToInt(withPost.Encode(t)),
            ids => plain.Decode(ids.Select(i => checked((uint)i)).ToArray()), s => pieces.TryGetValue(s, out var id) ? id : null,
            specials, count, eos, pad, bos, addBos, addEos);
    }

    private static ChatTokenizer LoadByteLevelBpe(string dir, string vocab, string merges, JsonObject? cfg, string cfgPath, bool? addBos, bool? addEos)
    {
        var specials = ReadAddedTokensDecoder(cfg, cfgPath);
        BpeTokenizer inner;
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
            throw new InvalidDataException($"{dir}: vocab.json/merges.txt could not be loaded as a byte-level BPE tokenizer ({e.Message})");
        }
        int count = Math.Max(inner.Vocabulary.Values.DefaultIfEmpty(-1).Max(), specials.Values.DefaultIfEmpty(-1).Max()) + 1;
        var (eos, pad, bos) = SpecialIds(cfg, cfgPath, specials, s => inner.Vocabulary.TryGetValue(s, out var id) ? id : null);
        // Qwen2Tokenizer NFC-normalises the text before splitting (prepare_for_tokenization), as the fast tokenizer's NFC normalizer does.
        return new ChatTokenizer(TokenizerKind.ByteLevelBpe, t => inner.EncodeToIds(t.Normalize(NormalizationForm.FormC)).ToArray(), null,
            ids => inner.Decode(ids), s => inner.Vocabulary.TryGetValue(s, out var id) ? id : null,
            specials, count, eos, pad, bos, addBos ?? false, addEos ?? false);
    }

    private static ChatTokenizer LoadSentencePiece(string dir, string spm, JsonObject? cfg, string cfgPath, bool? addBos, bool? addEos)
    {
        var inner = SentencePieceBpe.Load(spm);
        // The slow tokenizer never splits its unk/bos/eos tokens, with or without an added_tokens_decoder in the config.
        var specials = new Dictionary<string, int>();
        foreach (var id in new[] { inner.UnknownId, inner.BosId, inner.EosId }.Where(i => i >= 0 && i < inner.Count)) specials[inner.IdToPiece(id)] = id;
        foreach (var (c, id) in ReadAddedTokensDecoder(cfg, cfgPath)) specials[c] = id;
        var splitter = new Regex("(" + string.Join("|", specials.Keys.OrderByDescending(k => k.Length).Select(Regex.Escape)) + ")");
        int[] EncodePlain(string text)
        {
            var ids = new List<int>();
            foreach (var piece in splitter.Split(text))
            {
                if (piece.Length == 0) continue;
                if (specials.TryGetValue(piece, out var id)) ids.Add(id);
                else ids.AddRange(inner.Encode(piece));
            }
            return ids.ToArray();
        }
        int count = Math.Max(inner.Count, specials.Values.Max() + 1);
        var (eos, pad, bos) = SpecialIds(cfg, cfgPath, specials, inner.PieceToId);
        if (cfg is null) { bos = inner.BosId; eos = inner.EosId; }
        return new ChatTokenizer(TokenizerKind.SentencePiece, EncodePlain, null, ids => inner.Decode(ids), inner.PieceToId,
            specials, count, eos, pad, bos, addBos ?? true, addEos ?? false) { UnkTokenId = inner.UnknownId };
    }

    private static (int? Eos, int? Pad, int? Bos) SpecialIds(JsonObject? cfg, string cfgPath, Dictionary<string, int> specials, Func<string, int?> piece)
    {
        int? Id(string key)
        {
            if (cfg is null || !cfg.TryGetPropertyValue(key, out var node) || node is null) return null;
            string? content = node is JsonValue v && v.TryGetValue<string>(out var str) ? str : node is JsonObject o ? o["content"]?.GetValue<string>() : null;
            if (content is null) throw new InvalidDataException($"{cfgPath}: {key} is {node.ToJsonString()}; expected a token string or {{\"content\": …}}");
            if (specials.TryGetValue(content, out var id)) return id;
            return piece(content) ?? throw new InvalidDataException($"{cfgPath}: {key} '{content}' is not a token of the vocabulary");
        }
        return (Id("eos_token"), Id("pad_token"), Id("bos_token"));
    }

    private static bool? ReadBool(JsonObject? cfg, string key, string cfgPath)
    {
        if (cfg is null || !cfg.TryGetPropertyValue(key, out var node) || node is null) return null;
        return node is JsonValue v && v.TryGetValue<bool>(out var b) ? b
            : throw new InvalidDataException($"{cfgPath}: {key} is {node.ToJsonString()}; expected true or false");
    }

    private static JsonObject? ReadJson(string path)
    {
        if (!File.Exists(path)) return null;
        try { return JsonNode.Parse(File.ReadAllText(path)) as JsonObject; }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON ({e.Message})"); }
    }

    /// <summary>tokenizer_config.json "added_tokens_decoder" {id: {content}}.</summary>
    private static Dictionary<string, int> ReadAddedTokensDecoder(JsonObject? cfg, string cfgPath)
    {
        var specials = new Dictionary<string, int>();
        if (cfg?["added_tokens_decoder"] is JsonObject dec)
            foreach (var (idText, t) in dec)
            {
                if (!int.TryParse(idText, out var id)) throw new InvalidDataException($"{cfgPath}: added_tokens_decoder key '{idText}' is not an integer id");
                if (t?["content"]?.GetValue<string>() is { } c) specials[c] = id;
            }
        return specials;
    }

    /// <summary>Token ids of <paramref name="text"/> with add_special_tokens=False: special tokens written in the text map to their ids, no BOS/EOS is added.</summary>
    public IReadOnlyList<int> Encode(string text) => text.Length == 0 ? Array.Empty<int>() : _encodePlain(text);

    /// <summary>Hugging Face's <c>tokenizer(text).input_ids</c>; with <paramref name="addSpecialTokens"/> false, the same as <see cref="Encode"/>.</summary>
    public IReadOnlyList<int> InputIds(string text, bool addSpecialTokens = true)
    {
        if (!addSpecialTokens) return Encode(text);
        if (AddBosToken is null && AddEosToken is null && _encodeWithPostProcessor is not null) return _encodeWithPostProcessor(text);
        var ids = new List<int>();
        if (AddBosToken == true && BosTokenId is { } bos) ids.Add(bos);
        ids.AddRange(Encode(text));
        if (AddEosToken == true && EosTokenId is { } eos) ids.Add(eos);
        return ids;
    }

    /// <summary>Text of <paramref name="ids"/>; special tokens are dropped unless <paramref name="keepSpecial"/>.</summary>
    public string Decode(IEnumerable<int> ids, bool keepSpecial = false)
    {
        var sb = new StringBuilder();
        var run = new List<int>();
        void Flush() { if (run.Count > 0) { sb.Append(_decodeRun(run)); run.Clear(); } }
        foreach (var id in ids)
        {
            if (_specialById.TryGetValue(id, out var s)) { Flush(); if (keepSpecial) sb.Append(s); }
            else run.Add(id);
        }
        Flush();
        return sb.ToString();
    }

    /// <summary>The id of one token given as its text: a special token, a vocabulary piece, or text that encodes to exactly one id.</summary>
    public int? TokenToId(string token)
    {
        if (SpecialTokens.TryGetValue(token, out var id)) return id;
        if (_pieceToId(token) is { } p) return p;
        var ids = Encode(token);
        return ids.Count == 1 ? ids[0] : null;
    }
}
