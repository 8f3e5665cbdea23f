using QueCC.Model.Decoder;
using TorchSharp;
using static TorchSharp.torch;

namespace QueCC.Model.Tests.Decoder;

public class DecoderTests
{
    private static Qwen2Config TinyCfg(bool tie = true) => new()
    {
        VocabSize = 40, HiddenSize = 16, IntermediateSize = 24, NumHiddenLayers = 2, NumAttentionHeads = 4, NumKeyValueHeads = 2,
        RmsNormEps = 1e-6, RopeTheta = 100.0, TieWordEmbeddings = tie, MaxPositionEmbeddings = 64,
    };

    private static CausalLM RandomModel(DecoderConfig cfg, int seed = 3)
    {
        torch.manual_seed(seed);
        var m = CausalLM.Create(cfg);
        using (torch.no_grad()) foreach (var (_, p) in m.named_parameters()) p.normal_(0, 0.4); // norms away from 1, biases away from 0
        return m;
    }

    [Fact]
    public void RmsNorm_matches_the_formula()
    {
        using var _ = NewDisposeScope();
        using var norm = new RmsNorm(5, 1e-3);
        using (torch.no_grad()) norm.parameters().First().copy_(torch.tensor(new float[] { 1, 2, -1, 0.5f, 3 }));
        var x = torch.tensor(new float[] { 0.1f, -2, 3, 0.7f, -0.2f, 1, 1, 1, 1, 1 }, 2, 5);
        Naive.AssertClose(Naive.RmsNorm(Naive.Rows(x), new double[] { 1, 2, -1, 0.5, 3 }, 1e-3), norm.forward(x), 1e-5, "rmsnorm");
    }

    [Fact]
    public void Rope_rotates_pairs_d_and_d_plus_half()
    {
        using var _ = NewDisposeScope();
        const int heads = 2, d = 8;
        var positions = new[] { 0, 1, 5, 17 };
        var x = torch.randn(4, heads * d);
        var (cos, sin) = Rotary.CosSin(torch.tensor(positions.Select(p => (long)p).ToArray()).unsqueeze(0), d, 10000.0, ScalarType.Float32);
        var xh = x.view(1, 4, heads, d).transpose(1, 2);                           // (1, H, T, D)
        var y = Rotary.Apply(xh, cos, sin).transpose(1, 2).reshape(4, heads * d);  // (T, H·D)
        Naive.AssertClose(Naive.Rope(Naive.Rows(x), heads, d, positions, 10000.0), y, 1e-5, "rope");
    }

    /// <summary>Decoder forward by explicit loops: embeddings, RMSNorm, biased q/k/v, RoPE, GQA causal softmax, SiLU MLP, final norm, head.</summary>
    private static double[,] NaiveLogits(DecoderConfig cfg, Dictionary<string, double[]> w, long[] ids, int[] positions, Func<int, int, bool> allowed)
    {
        int t = ids.Length, c = cfg.HiddenSize, h = cfg.NumAttentionHeads, kvh = cfg.KeyValueHeads, d = cfg.HeadDim;
        var x = new double[t, c];
        for (int i = 0; i < t; i++) for (int k = 0; k < c; k++) x[i, k] = w["model.embed_tokens.weight"][ids[i] * c + k];
        for (int l = 0; l < cfg.NumHiddenLayers; l++)
        {
            string p = $"model.layers.{l}.";
            double[]? B(string n) => cfg.QkvBias ? w[p + n] : null;
            var hn = Naive.RmsNorm(x, w[p + "input_layernorm.weight"], cfg.RmsNormEps);
            var q = Naive.Rope(Naive.Linear(hn, w[p + "self_attn.q_proj.weight"], B("self_attn.q_proj.bias"), h * d), h, d, positions, cfg.RopeTheta);
            var k = Naive.Rope(Naive.Linear(hn, w[p + "self_attn.k_proj.weight"], B("self_attn.k_proj.bias"), kvh * d), kvh, d, positions, cfg.RopeTheta);
            var v = Naive.Linear(hn, w[p + "self_attn.v_proj.weight"], B("self_attn.v_proj.bias"), kvh * d);
            var a = Naive.Attention(q, k, v, h, kvh, d, allowed);
            x = Naive.Add(x, Naive.Linear(a, w[p + "self_attn.o_proj.weight"], null, c));
            hn = Naive.RmsNorm(x, w[p + "post_attention_layernorm.weight"], cfg.RmsNormEps);
            var gate = Naive.Map(Naive.Linear(hn, w[p + "mlp.gate_proj.weight"], null, cfg.IntermediateSize), z => z / (1 + Math.Exp(-z)));
            var up = Naive.Linear(hn, w[p + "mlp.up_proj.weight"], null, cfg.IntermediateSize);
            x = Naive.Add(x, Naive.Linear(Naive.Mul(gate, up), w[p + "mlp.down_proj.weight"], null, c));
        }
        x = Naive.RmsNorm(x, w["model.norm.weight"], cfg.RmsNormEps);
        return Naive.Linear(x, cfg.TieWordEmbeddings ? w["model.embed_tokens.weight"] : w["lm_head.weight"], null, cfg.VocabSize);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Qwen2_logits_match_naive_loops_with_GQA_and_causal_mask(bool tie)
    {
        using var _ = NewDisposeScope();
        var cfg = TinyCfg(tie);
        using var model = RandomModel(cfg);
        var ids = new long[] { 3, 17, 0, 39, 8, 8 };
        var outp = model.Forward(inputIds: torch.tensor(ids).unsqueeze(0));
        var expected = NaiveLogits(cfg, Naive.Params(model), ids, Enumerable.Range(0, 6).ToArray(), (i, j) => j <= i);
        Naive.AssertClose(expected, outp.Logits[0], 1e-4, "logits");
        Assert.Equal(new long[] { 1, 6, 16 }, outp.LastHiddenState.shape);
    }

    [Fact]
    public void Llama_variant_has_no_qkv_bias_and_matches_naive_loops()
    {
        using var _ = NewDisposeScope();
        var cfg = new LlamaConfig { VocabSize = 30, HiddenSize = 16, IntermediateSize = 20, NumHiddenLayers = 2, NumAttentionHeads = 2, NumKeyValueHeads = 2, RmsNormEps = 1e-5 };
        using var model = RandomModel(cfg);
        Assert.DoesNotContain(model.named_parameters(), p => p.name.EndsWith("proj.bias"));
        var ids = new long[] { 1, 2, 29, 7 };
        var outp = model.Forward(inputIds: torch.tensor(ids).unsqueeze(0));
        Naive.AssertClose(NaiveLogits(cfg, Naive.Params(model), ids, new[] { 0, 1, 2, 3 }, (i, j) => j <= i), outp.Logits[0], 1e-4, "logits");
    }

    [Fact]
    public void Left_padded_row_matches_the_unpadded_sequence_and_the_naive_padding_mask()
    {
        using var _ = NewDisposeScope();
        var cfg = TinyCfg();
        using var model = RandomModel(cfg);
        var ids = torch.tensor(new long[,] { { 0, 0, 5, 9, 11 }, { 4, 6, 5, 9, 11 } });
        var mask = torch.tensor(new long[,] { { 0, 0, 1, 1, 1 }, { 1, 1, 1, 1, 1 } });
        var batched = model.Forward(inputIds: ids, attentionMask: mask).Logits;
        var alone = model.Forward(inputIds: torch.tensor(new long[] { 5, 9, 11 }).unsqueeze(0)).Logits;
        Assert.True(torch.allclose(batched[0].narrow(0, 2, 3), alone[0], 1e-5, 1e-5));
        // oracle for the padding mask itself: keys 0 and 1 are never visible, real positions restart at 0
        var expected = NaiveLogits(cfg, Naive.Params(model), new long[] { 0, 0, 5, 9, 11 }, new[] { 1, 1, 0, 1, 2 }, (i, j) => j <= i && j >= 2);
        var real = new double[3, cfg.VocabSize];
        for (int i = 0; i < 3; i++) for (int v = 0; v < cfg.VocabSize; v++) real[i, v] = expected[i + 2, v];
        Naive.AssertClose(real, batched[0].narrow(0, 2, 3), 1e-4, "padded logits");
    }

    [Fact]
    public void Kv_cache_steps_reproduce_the_full_forward()
    {
        using var _ = NewDisposeScope();
        var cfg = TinyCfg();
        using var model = RandomModel(cfg);
        var ids = torch.tensor(new long[,] { { 0, 3, 5, 9, 11, 2, 7 }, { 4, 6, 5, 9, 11, 1, 1 } });
        var mask = torch.tensor(new long[,] { { 0, 1, 1, 1, 1, 1, 1 }, { 1, 1, 1, 1, 1, 1, 1 } });
        var full = model.Forward(inputIds: ids, attentionMask: mask).Logits;
        using var cache = model.NewCache();
        var first = model.Forward(inputIds: ids.narrow(1, 0, 4), attentionMask: mask.narrow(1, 0, 4), cache: cache).Logits;
        Assert.Equal(4, cache.Length);
        var steps = new List<Tensor> { first };
        for (int s = 4; s < 7; s++)
            steps.Add(model.Forward(inputIds: ids.narrow(1, s, 1), attentionMask: mask.narrow(1, 0, s + 1), cache: cache).Logits);
        Assert.Equal(7, cache.Length);
        var stepped = torch.cat(steps.ToArray(), 1);
        Assert.True(torch.allclose(full.narrow(1, 1, 6), stepped.narrow(1, 1, 6), 1e-5, 1e-5), "cached logits differ from the full forward");
    }

    [Fact]
    public void Inputs_embeds_equal_input_ids_and_logitsToKeep_slices()
    {
        using var _ = NewDisposeScope();
        using var model = RandomModel(TinyCfg());
        var ids = torch.tensor(new long[] { 1, 2, 3 }).unsqueeze(0);
        var a = model.Forward(inputIds: ids).Logits;
        var b = model.Forward(inputsEmbeds: model.EmbedTokens(ids), logitsToKeep: 1).Logits;
        Assert.Equal(new long[] { 1, 1, 40 }, b.shape);
        Assert.True(torch.allclose(a.narrow(1, 2, 1), b, 1e-6, 1e-6));
        Assert.Throws<ArgumentException>(() => model.Forward());
    }

    private static Dictionary<string, long[]> ExpectedDecoderKeys(int vocab, int hidden, int inter, int layers, int kvDim, bool bias, bool tied)
    {
        var e = new Dictionary<string, long[]> { ["model.embed_tokens.weight"] = new long[] { vocab, hidden }, ["model.norm.weight"] = new long[] { hidden } };
        if (!tied) e["lm_head.weight"] = new long[] { vocab, hidden };
        for (int i = 0; i < layers; i++)
        {
            var p = $"model.layers.{i}.";
            e[p + "input_layernorm.weight"] = new long[] { hidden };
            e[p + "post_attention_layernorm.weight"] = new long[] { hidden };
            e[p + "self_attn.q_proj.weight"] = new long[] { hidden, hidden };
            e[p + "self_attn.k_proj.weight"] = new long[] { kvDim, hidden };
            e[p + "self_attn.v_proj.weight"] = new long[] { kvDim, hidden };
            e[p + "self_attn.o_proj.weight"] = new long[] { hidden, hidden };
            if (bias)
            {
                e[p + "self_attn.q_proj.bias"] = new long[] { hidden };
                e[p + "self_attn.k_proj.bias"] = new long[] { kvDim };
                e[p + "self_attn.v_proj.bias"] = new long[] { kvDim };
            }
            e[p + "mlp.gate_proj.weight"] = new long[] { inter, hidden };
            e[p + "mlp.up_proj.weight"] = new long[] { inter, hidden };
            e[p + "mlp.down_proj.weight"] = new long[] { hidden, inter };
        }
        return e;
    }

    [Theory]
    [InlineData("qwen1.5-0.5b", 151936, 1024, 2816, 24, 1024, true, true, 463_987_712L)]
    [InlineData("qwen1.5-4b", 151936, 2560, 6912, 40, 2560, true, false, 3_950_369_280L)]
    [InlineData("qwen1.5-7b", 151936, 4096, 11008, 32, 4096, true, false, 7_721_324_544L)]
    [InlineData("vicuna-7b", 32000, 4096, 11008, 32, 4096, false, false, 6_738_415_616L)]
    public void Real_configs_have_HFs_keys_and_shapes_on_the_meta_device(string preset, int vocab, int hidden, int inter, int layers, int kvDim, bool bias, bool tied, long nParams)
    {
        var cfg = Presets.Presets.Get(preset).Text;
        using var model = CausalLM.Create(cfg, torch.device("meta"));
        Assert.IsType(preset == "vicuna-7b" ? typeof(LlamaForCausalLM) : typeof(Qwen2ForCausalLM), model);
        var actual = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
        var expected = ExpectedDecoderKeys(vocab, hidden, inter, layers, kvDim, bias, tied);
        Assert.Equal(expected.Keys.OrderBy(k => k), actual.Keys.OrderBy(k => k));
        foreach (var (k, shape) in expected) Assert.True(shape.SequenceEqual(actual[k]), $"{k}: [{string.Join(",", actual[k])}]");
        Assert.Equal(nParams, actual.Values.Sum(s => s.Aggregate(1L, (a, b) => a * b)));
        Assert.Equal(nParams, cfg.ParameterCount());
    }

    [Fact]
    public void Configs_parse_from_HF_config_json()
    {
        // Qwen/Qwen1.5-0.5B-Chat config.json, verbatim fields
        var qwen = DecoderConfig.FromJson("""
        {"architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643, "eos_token_id": 151645, "hidden_act": "silu",
         "hidden_size": 1024, "initializer_range": 0.02, "intermediate_size": 2816, "max_position_embeddings": 32768, "max_window_layers": 21,
         "model_type": "qwen2", "num_attention_heads": 16, "num_hidden_layers": 24, "num_key_value_heads": 16, "rms_norm_eps": 1e-06,
         "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": true, "torch_dtype": "bfloat16", "transformers_version": "4.37.0",
         "use_cache": true, "use_sliding_window": false, "vocab_size": 151936}
        """);
        // records holding arrays compare arrays by reference, so compare the serialised form
        Assert.Equal(Presets.Presets.Qwen15_05B.ToJson(), qwen.ToJson());
        Assert.Equal(new[] { 151645 }, qwen.EosTokenId);
        var llama = DecoderConfig.FromJson("""{"model_type": "llava_llama", "hidden_size": 4096, "intermediate_size": 11008, "num_attention_heads": 32, "num_hidden_layers": 32, "vocab_size": 32000, "rms_norm_eps": 1e-05, "max_position_embeddings": 4096, "eos_token_id": [2, 3], "mm_projector_type": "mlp2x_gelu", "rope_scaling": null}""");
        Assert.IsType<LlamaConfig>(llama);
        Assert.False(llama.QkvBias);
        Assert.Equal(32, llama.KeyValueHeads); // absent → num_attention_heads
        Assert.Equal(new[] { 2, 3 }, llama.EosTokenId);
        var e = Assert.Throws<UserInputException>(() => DecoderConfig.FromJson("""{"model_type": "gpt2"}""", "m/config.json"));
        Assert.Contains("m/config.json", e.Message);
        Assert.Contains("model_type", e.Message);
        e = Assert.Throws<UserInputException>(() => DecoderConfig.FromJson("""{"model_type": "qwen2", "num_attention_heads": 12, "num_key_value_heads": 5, "hidden_size": 96}""", "c.json"));
        Assert.Contains("num_key_value_heads", e.Message);
        var roundTrip = DecoderConfig.FromJson(qwen.ToJson());
        Assert.Equal(qwen.ToJson(), roundTrip.ToJson());
    }
}
