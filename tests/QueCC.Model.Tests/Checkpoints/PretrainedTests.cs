using System.Text.Json.Nodes;
using QueCC.Model.Checkpoints;
using QueCC.Model.Clip;
using QueCC.Model.Decoder;
using QueCC.Model.Tests.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace QueCC.Model.Tests.Checkpoints;

public class PretrainedTests
{
    private static string Fx(params string[] p) => Path.Combine(new[] { AppContext.BaseDirectory, "Fixtures" }.Concat(p).ToArray());

    /// <summary>scripts/fixtures/make_llama_variant_fixtures.py: an independent PyTorch Llama forward with attention_bias (o_proj too), mlp_bias and head_dim 8 ≠ 24/4.</summary>
    [Theory]
    [InlineData("llama-variant")]
    [InlineData("llama-variant-bin")]
    public void Llama_with_attention_bias_mlp_bias_and_head_dim_matches_an_independent_PyTorch_forward(string folder)
    {
        using var _ = NewDisposeScope();
        using var lm = CausalLM.FromPretrained(Fx(folder));
        Assert.IsType<LlamaForCausalLM>(lm);
        Assert.Equal((8, true, true, true), (lm.Config.HeadDim, lm.Config.QkvBias, lm.Config.OutputBias, lm.Config.MlpBiasEnabled));
        var names = lm.state_dict().Keys.ToHashSet();
        Assert.Contains("model.layers.0.self_attn.o_proj.bias", names);
        Assert.Contains("model.layers.1.mlp.down_proj.bias", names);
        Assert.Equal(lm.Config.ParameterCount(), lm.parameters().Sum(p => p.numel()));
        var exp = JsonNode.Parse(File.ReadAllText(Fx("llama-variant", "expected.json")))!;
        var ids = torch.tensor(exp["input_ids"]!.AsArray().Select(x => x!.GetValue<long>()).ToArray()).unsqueeze(0);
        var expected = torch.tensor(exp["logits"]!.AsArray().SelectMany(r => r!.AsArray().Select(x => x!.GetValue<float>())).ToArray()).view(1, ids.shape[1], -1);
        var logits = lm.Forward(inputIds: ids).Logits;
        var diff = (logits - expected).abs().max().item<float>();
        Assert.True(diff < 1e-5, $"max |logit difference| {diff} (tolerance 1e-5, float32)");
    }

    [Fact]
    public void Tower_and_causal_LM_front_doors_load_bin_and_cast()
    {
        using var _ = NewDisposeScope();
        using var bin = ClipVisionModel.FromPretrained(Fx("checkpoints", "llava-bin", "vision_tower"), dtype: ScalarType.Float16);
        using var st = ClipVisionModel.FromPretrained(Fx("checkpoints", "llava-safetensors", "vision_tower"));
        Assert.All(bin.parameters(), p => Assert.Equal(ScalarType.Float16, p.dtype));
        var expected = st.state_dict();
        foreach (var (k, t) in bin.state_dict()) Assert.True(t.to_type(ScalarType.Float32).allclose(expected[k], 0, 0), $"{k} differs");
        var e = Assert.Throws<StateDictMismatchException>(() => CausalLM.FromPretrained(Fx("checkpoints", "llava-bin")));
        Assert.Contains("model.mm_projector.", e.Message); // a LLaVA folder is not a plain causal LM: its projector keys are named
    }

    [Fact]
    public void README_library_snippet_is_this_compiled_code_and_runs()
    {
        var readme = File.ReadAllText(Path.Combine(RealTokenizers.RepoRoot, "README.md"));
        const string open = "```csharp\n";
        int start = readme.IndexOf(open, StringComparison.Ordinal);
        Assert.True(start >= 0, "README.md has no ```csharp block");
        var snippet = readme[(start + open.Length)..readme.IndexOf("```", start + open.Length, StringComparison.Ordinal)].Trim();
        var source = File.ReadAllText(Path.Combine(RealTokenizers.RepoRoot, "tests", "QueCC.Model.Tests", "Checkpoints", "ReadmeSnippet.cs"));
        var marked = source[(source.IndexOf("// README-BEGIN", StringComparison.Ordinal) + "// README-BEGIN".Length)..source.IndexOf("// README-END", StringComparison.Ordinal)];
        static string Norm(string s) => string.Join("\n", s.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0));
        Assert.Equal(Norm(marked), Norm(snippet));

        var img = Path.Combine(Path.GetTempPath(), $"quecc-readme-{Guid.NewGuid():N}.png");
        try
        {
            RgbImage.Filled(40, 30, 10, 200, 30).SavePng(img);
            var (answer, ids) = ReadmeSnippet.Run(Fx("checkpoints", "llava-bin"), img);
            Assert.NotNull(answer);
            Assert.NotEmpty(ids);
        }
        finally { File.Delete(img); }
    }
}
