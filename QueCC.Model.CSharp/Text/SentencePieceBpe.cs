using System.Text;

namespace QueCC.Model.Text;

/// <summary>
/// A SentencePiece BPE <c>tokenizer.model</c> encoded exactly as the sentencepiece library does (bpe_model.cc): the text is
/// normalised (dummy "▁" prefix, spaces → "▁"), split into characters, and the adjacent pair whose merged piece has the highest
/// score is merged first, ties going to the leftmost pair; pieces not in the vocabulary fall back to &lt;0xXX&gt; bytes.
/// </summary>
/// <remarks>
/// Written here rather than taken from Microsoft.ML.Tokenizers because its BPE breaks score ties differently: on a run of three
/// spaces ("▁▁▁inner") it merges the right pair first and gives other ids than sentencepiece and Hugging Face (the fixture
/// test shows it). Only the identity normaliser is supported (Llama, Vicuna, Mistral); models with a precompiled character
/// map (nmt_nfkc) and non-BPE models are refused with a message.
/// </remarks>
public sealed class SentencePieceBpe
{
    private enum PieceType { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 }

    private readonly string[] _pieces;
    private readonly float[] _scores;
    private readonly PieceType[] _types;
    private readonly Dictionary<string, int> _mergeable = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _all = new(StringComparer.Ordinal);
    private readonly int[] _byteIds = Enumerable.Repeat(-1, 256).ToArray();
    private readonly bool _addDummyPrefix, _removeExtraWhitespaces, _escapeWhitespaces;
    private readonly List<string> _userDefined;

    public int UnknownId { get; }
    public int BosId { get; }
    public int EosId { get; }
    public bool ByteFallback { get; }
    public int Count => _pieces.Length;
    public string IdToPiece(int id) => _pieces[id];
    public int? PieceToId(string piece) => _all.TryGetValue(piece, out var id) ? id : null;

    private SentencePieceBpe(List<(string Piece, float Score, PieceType Type)> pieces, Dictionary<int, long> trainer, Dictionary<int, object> normalizer, string path)
    {
        _pieces = pieces.Select(p => p.Piece).ToArray();
        _scores = pieces.Select(p => p.Score).ToArray();
        _types = pieces.Select(p => p.Type).ToArray();
        for (int i = 0; i < _pieces.Length; i++)
        {
            _all.TryAdd(_pieces[i], i);
            if (_types[i] is PieceType.Normal or PieceType.UserDefined) _mergeable.TryAdd(_pieces[i], i);
            if (_types[i] == PieceType.Byte && _pieces[i].Length == 6 && _pieces[i].StartsWith("<0x") && byte.TryParse(_pieces[i].AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, null, out var b))
                _byteIds[b] = i;
        }
        _userDefined = Enumerable.Range(0, _pieces.Length).Where(i => _types[i] == PieceType.UserDefined).Select(i => _pieces[i]).OrderByDescending(p => p.Length).ToList();
        long modelType = trainer.GetValueOrDefault(3, 1);
        if (modelType != 2) throw new InvalidDataException($"{path}: SentencePiece model_type {modelType} is not supported; expected 2 (BPE, as Llama/Vicuna models are)");
        if (trainer.GetValueOrDefault(24, 0) != 0) throw new InvalidDataException($"{path}: treat_whitespace_as_suffix is not supported");
        ByteFallback = trainer.GetValueOrDefault(35, 0) != 0;
        UnknownId = (int)trainer.GetValueOrDefault(40, 0);
        BosId = (int)trainer.GetValueOrDefault(41, 1);
        EosId = (int)trainer.GetValueOrDefault(42, 2);
        var name = normalizer.GetValueOrDefault(1) as string ?? "";
        if (normalizer.GetValueOrDefault(2) is byte[] { Length: > 0 } || name is not ("identity" or ""))
            throw new InvalidDataException($"{path}: SentencePiece normalizer '{name}' (with a precompiled character map) is not supported; expected 'identity' (as Llama/Vicuna models have)");
        _addDummyPrefix = normalizer.GetValueOrDefault(3) is not long a || a != 0;
        _removeExtraWhitespaces = normalizer.GetValueOrDefault(4) is not long r || r != 0;
        _escapeWhitespaces = normalizer.GetValueOrDefault(5) is not long e || e != 0;
    }

    /// <summary>Reads the ModelProto protobuf: pieces (field 1), trainer_spec (2), normalizer_spec (3).</summary>
    public static SentencePieceBpe Load(string path)
    {
        byte[] data = File.ReadAllBytes(path);
        var pieces = new List<(string, float, PieceType)>();
        Dictionary<int, long> trainer = new();
        Dictionary<int, object> normalizer = new();
        try
        {
            foreach (var (field, wire, value, bytes) in Fields(data, 0, data.Length))
            {
                if (field == 1 && wire == 2)
                {
                    string piece = ""; float score = 0; var type = PieceType.Normal;
                    foreach (var (f, w, v, b) in Fields(data, bytes.Start, bytes.End))
                    {
                        if (f == 1 && w == 2) piece = Encoding.UTF8.GetString(data, b.Start, b.End - b.Start);
                        else if (f == 2 && w == 5) score = BitConverter.Int32BitsToSingle((int)v);
                        else if (f == 3 && w == 0) type = (PieceType)v;
                    }
                    pieces.Add((piece, score, type));
                }
                else if (field == 2 && wire == 2)
                    foreach (var (f, w, v, _) in Fields(data, bytes.Start, bytes.End)) { if (w == 0) trainer[f] = v; }
                else if (field == 3 && wire == 2)
                    foreach (var (f, w, v, b) in Fields(data, bytes.Start, bytes.End))
                        normalizer[f] = w == 0 ? v : f == 1 ? Encoding.UTF8.GetString(data, b.Start, b.End - b.Start) : data[b.Start..b.End];
            }
        }
        catch (IndexOutOfRangeException) { throw new InvalidDataException($"{path}: not a SentencePiece model (truncated protobuf)"); }
        if (pieces.Count == 0) throw new InvalidDataException($"{path}: not a SentencePiece model (no pieces)");
        return new SentencePieceBpe(pieces, trainer, normalizer, path);
    }

    private static IEnumerable<(int Field, int Wire, long Value, (int Start, int End) Bytes)> Fields(byte[] d, int pos, int end)
    {
        while (pos < end)
        {
            long key = Varint(d, ref pos);
            int field = (int)(key >> 3), wire = (int)(key & 7);
            switch (wire)
            {
                case 0: yield return (field, wire, Varint(d, ref pos), default); break;
                case 1: pos += 8; break;
                case 2:
                    int len = checked((int)Varint(d, ref pos));
                    if (len < 0 || pos + len > end) throw new IndexOutOfRangeException();
                    yield return (field, wire, 0, (pos, pos + len));
                    pos += len;
                    break;
                case 5: yield return (field, wire, BitConverter.ToUInt32(d, pos), default); pos += 4; break;
                default: throw new IndexOutOfRangeException();
            }
        }
    }

    private static long Varint(byte[] d, ref int pos)
    {
        long v = 0;
        for (int shift = 0; ; shift += 7)
        {
            byte b = d[pos++];
            v |= (long)(b & 0x7f) << shift;
            if (b < 0x80) return v;
        }
    }

    private string Normalize(string text)
    {
        if (_removeExtraWhitespaces)
            text = string.Join(' ', text.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        if (text.Length == 0) return "";
        if (_addDummyPrefix) text = " " + text;
        return _escapeWhitespaces ? text.Replace(' ', '▁') : text;
    }

    /// <summary>sentencepiece's <c>encode(text)</c> (no BOS/EOS).</summary>
    public List<int> Encode(string text)
    {
        var norm = Normalize(text);
        var ids = new List<int>();
        if (norm.Length == 0) return ids;
        // Symbols: user-defined pieces whole, else one Unicode character each.
        var sym = new List<string>();
        for (int i = 0; i < norm.Length;)
        {
            var ud = _userDefined.FirstOrDefault(p => string.CompareOrdinal(norm, i, p, 0, p.Length) == 0);
            int len = ud?.Length ?? (char.IsHighSurrogate(norm[i]) && i + 1 < norm.Length ? 2 : 1);
            sym.Add(norm.Substring(i, len));
            i += len;
        }
        int n = sym.Count;
        var prev = Enumerable.Range(-1, n).ToArray();
        var next = Enumerable.Range(1, n).Select(i => i == n ? -1 : i).ToArray();
        // Agenda ordered by (score desc, left asc); stale entries are skipped when the pieces changed since.
        var agenda = new PriorityQueue<(int Left, int Right, string Merged), (float, int)>(Comparer<(float Score, int Left)>.Create((a, b) =>
            a.Score != b.Score ? b.Score.CompareTo(a.Score) : a.Left.CompareTo(b.Left)));
        void Add(int left, int right)
        {
            if (left < 0 || right < 0) return;
            var merged = sym[left] + sym[right];
            if (_mergeable.TryGetValue(merged, out var id)) agenda.Enqueue((left, right, merged), (_scores[id], left));
        }
        for (int i = 1; i < n; i++) Add(i - 1, i);
        while (agenda.TryDequeue(out var top, out _))
        {
            if (sym[top.Left].Length == 0 || sym[top.Right].Length == 0 || sym[top.Left] + sym[top.Right] != top.Merged || next[top.Left] != top.Right) continue;
            sym[top.Left] = top.Merged;
            sym[top.Right] = "";
            next[top.Left] = next[top.Right];
            if (next[top.Right] >= 0) prev[next[top.Right]] = top.Left;
            Add(prev[top.Left], top.Left);
            Add(top.Left, next[top.Left]);
        }
        bool lastUnknown = false;
        for (int i = 0; i >= 0 && i < n; i = next[i])
        {
            if (_all.TryGetValue(sym[i], out var id) && _types[id] != PieceType.Unused) { ids.Add(id); lastUnknown = false; }
            else if (ByteFallback) foreach (var b in Encoding.UTF8.GetBytes(sym[i])) ids.Add(_byteIds[b]);
            else
            {
                // sentencepiece fuses a run of unknown pieces into one <unk>.
                if (!lastUnknown) ids.Add(UnknownId);
                lastUnknown = true;
            }
        }
        return ids;
    }

    /// <summary>sentencepiece's <c>decode(ids)</c>: pieces joined, bytes reassembled, "▁" → space, the dummy prefix's space dropped.</summary>
    public string Decode(IEnumerable<int> ids)
    {
        var bytes = new List<byte>();
        foreach (var id in ids)
        {
            if (id < 0 || id >= _pieces.Length) throw new ArgumentOutOfRangeException(nameof(ids), $"token id {id} is outside the vocabulary of {_pieces.Length}");
            switch (_types[id])
            {
                case PieceType.Control: break;
                case PieceType.Byte: bytes.Add(Convert.ToByte(_pieces[id][3..5], 16)); break;
                case PieceType.Unknown: bytes.AddRange(Encoding.UTF8.GetBytes(" ⁇ ")); break;
                default: bytes.AddRange(Encoding.UTF8.GetBytes(_pieces[id].Replace('▁', ' '))); break;
            }
        }
        var text = Encoding.UTF8.GetString(bytes.ToArray());
        return _addDummyPrefix && text.StartsWith(' ') ? text[1..] : text;
    }
}
