using QueCC.Model.Checkpoints;
using QueCC.Model.Commands;
using QueCC.Model.Compression;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace QueCC.Model.Tests.Compression;

public class StateDictAndDescribeTests
{
    private static Dictionary<string, Tensor> RandomStateDict(MultimodalProjector p, string prefix) =>
        p.state_dict().ToDictionary(kv => prefix + kv.Key, kv => torch.randn_like(kv.Value));

    [Theory]
    [InlineData("model.mm_projector.")]
    [InlineData("mm_projector.")]
    [InlineData("")]
    public void Loads_with_each_prefix_and_copies_the_values(string prefix)
    {
        using var scope = torch.NewDisposeScope();
        var config = WindowOracleTests.SmallConfig("quecc", 2, 2);
        using var projector = new MultimodalProjector(config);
        var sd = RandomStateDict(projector, prefix);
        // A full VLM checkpoint also carries the LLM: keys outside the projector prefix are not ours to judge.
        if (prefix.Length > 0) sd["model.layers.0.mlp.gate_proj.weight"] = torch.ones(3);
        StateDictLoader.Load(projector, sd);
        foreach (var (k, t) in projector.state_dict())
            Assert.True(TensorAssert.Same(t, sd[prefix + k]), k);
        Assert.True(projector.named_parameters().All(p => p.parameter.requires_grad));
    }

    [Fact]
    public void Reports_missing_unexpected_and_mis_shaped_keys_together()
    {
        using var scope = torch.NewDisposeScope();
        var config = WindowOracleTests.SmallConfig("quecc", 2, 2);
        using var projector = new MultimodalProjector(config);
        var sd = RandomStateDict(projector, "model.mm_projector.");
        sd.Remove("model.mm_projector.0.q_proj.2.bias");
        sd["model.mm_projector.0.k_proj.9.weight"] = torch.ones(2);
        sd["model.mm_projector.3.weight"] = torch.ones(10, 11);
        var before = projector.state_dict()["1.weight"].clone();
        var e = Assert.Throws<StateDictMismatchException>(() => StateDictLoader.Load(projector, sd, source: "proj.safetensors"));
        Assert.Contains("proj.safetensors", e.Message);
        Assert.Equal(["model.mm_projector.0.q_proj.2.bias"], e.Missing);
        Assert.Equal(["model.mm_projector.0.k_proj.9.weight"], e.Unexpected);
        Assert.Single(e.ShapeMismatches);
        Assert.Contains("model.mm_projector.3.weight: checkpoint (10, 11) vs module (10, 10)", e.Message);
        Assert.True(TensorAssert.Same(projector.state_dict()["1.weight"], before)); // nothing copied on failure
    }

    [Fact]
    public void Describe_counts_parameters_of_the_paper_projector_on_the_meta_device()
    {
        var c = ProjectorConfig.Parse(ProjectorConfigTests.PaperJson());
        var d = ProjectorTools.Describe(c);
        long w = 1024, m = 4096, t = 4096, llm = 4096, k = 4;
        long Mlp(long i, long o) => i * o + o + o * o + o + 2 * o; // Linear, Linear, LayerNorm
        var expected = new Dictionary<string, long>
        {
            ["0.text_projection"] = t * w + w + 2 * w,
            ["0.q_proj"] = Mlp(w, w),
            ["0.q_downsample"] = w * k * k + w,
            ["0.k_proj"] = Mlp(m, w),
            ["0.v_proj"] = Mlp(m, w),
            ["0.clip_attn"] = 3 * w * w + 3 * w + w * w + w,
            ["1"] = w * llm + llm,
            ["3"] = llm * llm + llm,
        };
        Assert.Equal(expected, d.Modules.ToDictionary(r => r.Module, r => r.Parameters));
        Assert.Equal(expected.Where(kv => kv.Key.StartsWith("0.")).Sum(kv => kv.Value), d.CompressorParameters);
        // Hand-computed per-image forward FLOPs (2 per multiply-add): k_proj on 576 tokens = 2·576·(4096·1024 + 1024²).
        Assert.Equal(6_039_797_760d, d.Modules.Single(r => r.Module == "0.k_proj").ForwardFlops);
        // Projector MLP on 36 tokens = 2·36·(1024·4096 + 4096²).
        Assert.Equal(1_509_949_440d, d.MlpFlops);
        Assert.Contains("0.clip_attn", d.Format());
    }

    [Fact]
    public void Describe_handles_the_parameterless_compressors()
    {
        var pool = ProjectorTools.Describe(ProjectorConfig.Parse(ProjectorConfigTests.PaperJson(type: "avgpool", kernel: 24, stride: 24)));
        Assert.Equal(0, pool.CompressorParameters);
        Assert.Equal(1, pool.Config.OutputTokenCount);
        Assert.Equal(576d * 1024, pool.CompressorFlops);
        var none = ProjectorTools.Describe(ProjectorConfig.Parse("""{"mm_projector_type": "mlp2x_gelu", "mm_hidden_size": 8, "hidden_size": 4, "mm_vision_output_token_count": 9}"""));
        Assert.Equal(["0", "2"], none.Modules.Select(r => r.Module)); // stock LLaVA-1.5 keys
        Assert.Equal(8 * 4 + 4 + 4 * 4 + 4, none.MlpParameters);
    }

    [Fact]
    public void Llm_inference_flops_follow_the_paper_cost_model()
    {
        // 2·N·(Q + V): a 7B LLM with 50 text tokens and one visual token.
        Assert.Equal(2 * 7e9 * 51, Flops.LlmInference(7e9, 50, 1));
    }

    [Fact]
    public void Benchmark_paper_config_maps_token_count_to_kernel()
    {
        Assert.Equal(6, CompressBenchmark.PaperConfig(16).Kernel);
        Assert.Equal(24, CompressBenchmark.PaperConfig(1).Kernel);
        Assert.Contains("output tokens 5", Assert.Throws<UserInputException>(() => CompressBenchmark.PaperConfig(5)).Message);
    }

    [Theory]
    [InlineData("linear", new[] { "1.bias", "1.weight" })]
    [InlineData("mlp2x_gelu", new[] { "1.bias", "1.weight", "3.bias", "3.weight" })]
    [InlineData("mlp3x_gelu", new[] { "1.bias", "1.weight", "3.bias", "3.weight", "5.bias", "5.weight" })]
    public void Projector_keys_follow_the_llava_sequential_layout(string type, string[] mlpKeys)
    {
        using var scope = torch.NewDisposeScope();
        var config = WindowOracleTests.SmallConfig("quecc", 2, 2) with { ProjectorType = type };
        using var projector = new MultimodalProjector(config, torch.META);
        var keys = projector.state_dict().Keys.ToList();
        Assert.Equal(mlpKeys, keys.Where(k => !k.StartsWith("0.")).Order());
        Assert.Contains("0.q_downsample.weight", keys);
        Assert.Equal(new long[] { 10, 8 }, projector.state_dict()["1.weight"].shape); // Linear(mm_hidden_size → hidden_size)
    }

    [Fact]
    public void Identity_projector_returns_the_compressed_tokens()
    {
        using var scope = torch.NewDisposeScope();
        var config = WindowOracleTests.SmallConfig("avgpool", 3, 3) with { ProjectorType = "identity", LlmWidth = 8 };
        using var projector = new MultimodalProjector(config);
        Assert.Empty(projector.state_dict());
        var x = torch.randn(2, 36, 8);
        Assert.True(TensorAssert.Same(projector.Compress(x), projector.Forward(x)));
        Assert.Equal(new long[] { 2, 4, 8 }, projector.Forward(x).shape);
    }
}
