using QueCC.Model.Clip;
using QueCC.Model.Presets;
using TorchSharp;
using static TorchSharp.torch;

namespace QueCC.Model.Tests.Clip;

public class ClipVisionTests
{
    [Fact]
    public void Vit_L_336_has_HFs_keys_and_shapes_on_the_meta_device()
    {
        using var model = new ClipVisionModel(Presets.Presets.ClipVitL336, torch.device("meta"));
        var actual = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
        // expected list written from HF CLIPVisionModel for openai/clip-vit-large-patch14-336
        var expected = new Dictionary<string, long[]>
        {
            ["vision_model.embeddings.class_embedding"] = new long[] { 1024 },
            ["vision_model.embeddings.patch_embedding.weight"] = new long[] { 1024, 3, 14, 14 },
            ["vision_model.embeddings.position_embedding.weight"] = new long[] { 577, 1024 },
            ["vision_model.pre_layrnorm.weight"] = new long[] { 1024 },
            ["vision_model.pre_layrnorm.bias"] = new long[] { 1024 },
            ["vision_model.post_layernorm.weight"] = new long[] { 1024 },
            ["vision_model.post_layernorm.bias"] = new long[] { 1024 },
        };
        for (int i = 0; i < 24; i++)
        {
            var p = $"vision_model.encoder.layers.{i}.";
            foreach (var proj in new[] { "q_proj", "k_proj", "v_proj", "out_proj" })
            {
                expected[p + $"self_attn.{proj}.weight"] = new long[] { 1024, 1024 };
                expected[p + $"self_attn.{proj}.bias"] = new long[] { 1024 };
            }
            foreach (var ln in new[] { "layer_norm1", "layer_norm2" })
            {
                expected[p + ln + ".weight"] = new long[] { 1024 };
                expected[p + ln + ".bias"] = new long[] { 1024 };
            }
            expected[p + "mlp.fc1.weight"] = new long[] { 4096, 1024 };
            expected[p + "mlp.fc1.bias"] = new long[] { 4096 };
            expected[p + "mlp.fc2.weight"] = new long[] { 1024, 4096 };
            expected[p + "mlp.fc2.bias"] = new long[] { 1024 };
        }
        Assert.Equal(expected.Keys.OrderBy(k => k), actual.Keys.OrderBy(k => k));
        foreach (var (k, shape) in expected) Assert.True(shape.SequenceEqual(actual[k]), $"{k}: [{string.Join(",", actual[k])}]");
        Assert.Equal(303_507_456L, actual.Values.Sum(s => s.Aggregate(1L, (a, b) => a * b)));
    }

    [Fact]
    public void Config_reads_vision_only_and_full_CLIPConfig_json()
    {
        var vision = ClipVisionConfig.FromJson("""{"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24, "num_attention_heads": 16, "image_size": 336, "patch_size": 14, "hidden_act": "quick_gelu", "model_type": "clip_vision_model"}""");
        Assert.Equal(Presets.Presets.ClipVitL336, vision);
        var full = ClipVisionConfig.FromJson("""{"model_type": "clip", "projection_dim": 768, "text_config": {"hidden_size": 768}, "vision_config": {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24, "num_attention_heads": 16, "image_size": 336, "patch_size": 14, "projection_dim": 768}}""");
        Assert.Equal(577, full.NumPositions);
        Assert.Equal("quick_gelu", full.HiddenAct); // HF default
        Assert.Equal(1e-5, full.LayerNormEps);
        var e = Assert.Throws<UserInputException>(() => ClipVisionConfig.FromJson("""{"hidden_act": "relu"}""", "tower/config.json"));
        Assert.Contains("tower/config.json", e.Message);
        Assert.Contains("hidden_act", e.Message);
    }

    /// <summary>The whole tiny tower against explicit loops (LayerNorm, attention softmax, quick_gelu) — and the gelu variant.</summary>
    [Theory]
    [InlineData("quick_gelu")]
    [InlineData("gelu")]
    public void Tiny_tower_hidden_states_match_a_naive_loop_implementation(string act)
    {
        using var _ = NewDisposeScope();
        torch.manual_seed(1);
        var cfg = new ClipVisionConfig { HiddenSize = 16, IntermediateSize = 24, NumHiddenLayers = 2, NumAttentionHeads = 2, ImageSize = 6, PatchSize = 2, HiddenAct = act };
        using var model = new ClipVisionModel(cfg);
        using (torch.no_grad()) foreach (var (_, p) in model.named_parameters()) p.normal_(0, 0.3); // LayerNorm gains/biases away from 1/0 too
        var pixels = torch.randn(1, 3, 6, 6);
        var outp = model.ForwardAll(pixels);
        Assert.Equal(3, outp.HiddenStates.Count);

        var w = Naive.Params(model);
        var px = Naive.Flat(pixels);
        const int C = 16, P = 2, G = 3; // width, patch, grid side
        var x = new double[1 + G * G, C];
        for (int c = 0; c < C; c++) x[0, c] = w["vision_model.embeddings.class_embedding"][c];
        for (int gy = 0; gy < G; gy++) for (int gx = 0; gx < G; gx++)
            for (int o = 0; o < C; o++)
            {
                double s = 0;
                for (int ch = 0; ch < 3; ch++) for (int ky = 0; ky < P; ky++) for (int kx = 0; kx < P; kx++)
                    s += px[ch * 36 + (gy * P + ky) * 6 + gx * P + kx] * w["vision_model.embeddings.patch_embedding.weight"][((o * 3 + ch) * P + ky) * P + kx];
                x[1 + gy * G + gx, o] = s; // row-major patch order
            }
        for (int t = 0; t < 1 + G * G; t++) for (int c = 0; c < C; c++) x[t, c] += w["vision_model.embeddings.position_embedding.weight"][t * C + c];
        x = Naive.LayerNorm(x, w["vision_model.pre_layrnorm.weight"], w["vision_model.pre_layrnorm.bias"], 1e-5);
        Naive.AssertClose(x, outp.HiddenStates[0][0], 1e-4, "hidden_states[0]");
        Func<double, double> f = act == "gelu" ? v => 0.5 * v * (1 + Erf(v / Math.Sqrt(2))) : v => v / (1 + Math.Exp(-1.702 * v));
        for (int l = 0; l < 2; l++)
        {
            string p = $"vision_model.encoder.layers.{l}.";
            var h = Naive.LayerNorm(x, w[p + "layer_norm1.weight"], w[p + "layer_norm1.bias"], 1e-5);
            var q = Naive.Linear(h, w[p + "self_attn.q_proj.weight"], w[p + "self_attn.q_proj.bias"], C);
            var k = Naive.Linear(h, w[p + "self_attn.k_proj.weight"], w[p + "self_attn.k_proj.bias"], C);
            var v = Naive.Linear(h, w[p + "self_attn.v_proj.weight"], w[p + "self_attn.v_proj.bias"], C);
            var a = Naive.Attention(q, k, v, 2, 2, 8, (_, _) => true);
            x = Naive.Add(x, Naive.Linear(a, w[p + "self_attn.out_proj.weight"], w[p + "self_attn.out_proj.bias"], C));
            h = Naive.LayerNorm(x, w[p + "layer_norm2.weight"], w[p + "layer_norm2.bias"], 1e-5);
            h = Naive.Map(Naive.Linear(h, w[p + "mlp.fc1.weight"], w[p + "mlp.fc1.bias"], 24), f);
            x = Naive.Add(x, Naive.Linear(h, w[p + "mlp.fc2.weight"], w[p + "mlp.fc2.bias"], C));
            Naive.AssertClose(x, outp.HiddenStates[l + 1][0], 1e-4, $"hidden_states[{l + 1}]");
        }
        var cls = new double[1, C];
        for (int c = 0; c < C; c++) cls[0, c] = x[0, c];
        Naive.AssertClose(Naive.LayerNorm(cls, w["vision_model.post_layernorm.weight"], w["vision_model.post_layernorm.bias"], 1e-5), outp.PooledOutput, 1e-4, "pooled");
    }

    private static double Erf(double x)
    {
        // Abramowitz–Stegun 7.1.26 is only 1e-7 accurate; use the series, fine for |x| < 6
        double sum = 0, term = x;
        for (int n = 0; n < 200; n++) { sum += term / (2 * n + 1); term *= -x * x / (n + 1); }
        return 2 / Math.Sqrt(Math.PI) * sum;
    }

    [Fact]
    public void Feature_selection_drops_CLS_and_concatenates_layers_in_order()
    {
        using var _ = NewDisposeScope();
        // hidden state i holds the constant i at every position except CLS, which holds -1
        var hs = Enumerable.Range(0, 5).Select(i => { var t = torch.full(2, 7, 3, (double)i); t[.., 0] = torch.tensor(-1.0); return t; }).ToList();
        var sel = ClipFeatures.Select(hs, -2);
        Assert.Equal(new long[] { 2, 6, 3 }, sel.shape);
        Assert.Equal(3.0, sel.min().ToDouble()); Assert.Equal(3.0, sel.max().ToDouble());
        var ml = ClipFeatures.MultiLevel(hs, new[] { 4, 1, 2 });
        Assert.Equal(new long[] { 2, 6, 9 }, ml.shape);
        Assert.Equal(new double[] { 4, 4, 4, 1, 1, 1, 2, 2, 2 }, Naive.Flat(ml[1, 5]));
        var e = Assert.Throws<UserInputException>(() => ClipFeatures.MultiLevel(hs, new[] { 12, 16, 22, 23 }));
        Assert.Contains("12", e.Message);
    }

    [Fact]
    public void Tiny_preset_tower_gives_576_patch_tokens()
    {
        using var _ = NewDisposeScope();
        var preset = Presets.Presets.Get("tiny");
        using var model = new ClipVisionModel(preset.Vision);
        var outp = model.ForwardAll(torch.randn(2, 3, 48, 48));
        Assert.Equal(preset.Vision.NumHiddenLayers + 1, outp.HiddenStates.Count);
        Assert.Equal(new long[] { 2, 576, 32 }, ClipFeatures.Select(outp.HiddenStates, preset.SelectLayer).shape);
        Assert.Equal(new long[] { 2, 576, 128 }, ClipFeatures.MultiLevel(outp.HiddenStates, preset.MultiLevelLayers).shape);
    }
}
