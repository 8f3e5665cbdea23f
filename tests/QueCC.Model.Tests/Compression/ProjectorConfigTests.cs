using QueCC.Model.Compression;
using Xunit;

namespace QueCC.Model.Tests.Compression;

public class ProjectorConfigTests
{
    /// <summary>The reference LLaVA-1.5 + QueCC config (Vicuna-7B, CLIP ViT-L/14-336), with one key overridable.</summary>
    internal static string PaperJson(string? extra = null, string type = "quecc", int kernel = 4, int stride = 4) => $$"""
        {
          "architectures": ["LlavaLlamaForCausalLM"],
          "mm_projector_type": "mlp2x_gelu",
          "mm_hidden_size": 1024,
          "hidden_size": 4096,
          "mm_vision_token_compression_type": "{{type}}",
          "mm_vision_output_token_count": 576,
          "mm_vision_output_text_embedding_size": 4096,
          "mm_vision_token_compression_kernel_size": {{kernel}},
          "mm_vision_token_compression_stride": {{stride}}{{(extra is null ? "" : ",\n" + extra)}}
        }
        """;

    private static ProjectorConfigException Invalid(string json) =>
        Assert.Throws<ProjectorConfigException>(() => ProjectorConfig.Parse(json, "cfg/config.json"));

    [Theory]
    [InlineData(24, 24, 1)]
    [InlineData(12, 12, 4)]
    [InlineData(6, 6, 16)]
    [InlineData(4, 4, 36)]
    [InlineData(3, 3, 64)]
    [InlineData(2, 2, 144)]
    public void Output_token_count_follows_kernel_and_stride(int kernel, int stride, int expected)
    {
        var c = ProjectorConfig.Parse(PaperJson(kernel: kernel, stride: stride));
        Assert.Equal(expected, c.OutputTokenCount);
        Assert.Equal(kernel, c.WindowSide); // k = s: each window is one conv patch
    }

    [Theory]
    [InlineData(12, 4, 16, 6)] // h = (24 − 12)/4 + 1 = 4 divides 24: 6×6 windows
    [InlineData(9, 3, 36, 4)]  // h = (24 − 9)/3 + 1 = 6
    public void Overlapping_kernel_whose_output_grid_divides_the_input_grid_is_accepted(int kernel, int stride, int tokens, int window)
    {
        var c = ProjectorConfig.Parse(PaperJson(kernel: kernel, stride: stride));
        Assert.Equal(tokens, c.OutputTokenCount);
        Assert.Equal(window, c.WindowSide);
    }

    [Fact]
    public void Defaults_for_optional_keys()
    {
        var c = ProjectorConfig.Parse(PaperJson());
        Assert.Equal(4096, c.MultiLevelSize);
        Assert.Equal(8, c.NumHeads);
        Assert.Equal(CompressionType.Quecc, c.Compression);
        Assert.Equal(2, c.MlpDepth);
        var none = ProjectorConfig.Parse("""{"mm_projector_type": "linear", "mm_hidden_size": 1024, "hidden_size": 4096, "mm_vision_output_token_count": 576}""");
        Assert.Equal(CompressionType.None, none.Compression);
        Assert.Equal(576, none.OutputTokenCount);
        Assert.Equal(1, none.MlpDepth);
    }

    [Fact]
    public void Non_square_token_count_is_rejected()
    {
        var e = Invalid(PaperJson().Replace("\"mm_vision_output_token_count\": 576", "\"mm_vision_output_token_count\": 575"));
        Assert.Contains("cfg/config.json", e.Message);
        Assert.Contains("mm_vision_output_token_count = 575", e.Message);
        Assert.Contains("perfect square", e.Message);
    }

    [Fact]
    public void Kernel_stride_windows_must_tile_the_grid()
    {
        var e = Invalid(PaperJson(kernel: 8, stride: 4)); // h = 5, 24 % 5 ≠ 0
        Assert.Contains("mm_vision_token_compression_kernel_size = 8", e.Message);
        Assert.Contains("output grid 5", e.Message);
        Assert.Contains("allowed h: 1, 2, 3, 4, 6, 8, 12, 24", e.Message);

        e = Invalid(PaperJson(kernel: 5, stride: 5)); // (24 − 5)/5 not an integer
        Assert.Contains("mm_vision_token_compression_stride = 5", e.Message);
        Assert.Contains("h = (G − k)/s + 1", e.Message);

        e = Invalid(PaperJson(kernel: 30, stride: 30));
        Assert.Contains("mm_vision_token_compression_kernel_size = 30", e.Message);
        Assert.Contains("[1, 24]", e.Message);
    }

    [Fact]
    public void Heads_must_divide_the_width()
    {
        var e = Invalid(PaperJson("\"mm_vision_token_compression_num_heads\": 7"));
        Assert.Contains("mm_vision_token_compression_num_heads = 7", e.Message);
        Assert.Contains("divisor of mm_hidden_size 1024", e.Message);
    }

    [Fact]
    public void Unknown_types_are_rejected_with_the_allowed_values()
    {
        var e = Invalid(PaperJson(type: "qformer"));
        Assert.Contains("mm_vision_token_compression_type = 'qformer'", e.Message);
        Assert.Contains("quecc, quecc_noquery, tokenpacker, avgpool, none", e.Message);

        e = Invalid(PaperJson().Replace("mlp2x_gelu", "mlp2x_relu"));
        Assert.Contains("mm_projector_type = 'mlp2x_relu'", e.Message);
        Assert.Contains("identity", e.Message);
    }

    [Fact]
    public void Quecc_needs_the_text_embedding_size()
    {
        var e = Invalid(PaperJson().Replace("\"mm_vision_output_text_embedding_size\": 4096,", ""));
        Assert.Contains("mm_vision_output_text_embedding_size = (absent)", e.Message);
        Assert.Equal(1, ProjectorConfig.Parse(PaperJson(type: "quecc_noquery", kernel: 24, stride: 24).Replace("\"mm_vision_output_text_embedding_size\": 4096,", "")).OutputTokenCount);
    }

    [Fact]
    public void Wrong_json_types_name_the_file_and_key()
    {
        var e = Invalid(PaperJson().Replace("\"mm_hidden_size\": 1024", "\"mm_hidden_size\": \"1024\""));
        Assert.Contains("cfg/config.json", e.Message);
        Assert.Contains("mm_hidden_size", e.Message);
    }

    [Fact]
    public void Identity_projector_needs_equal_widths()
    {
        var e = Invalid(PaperJson().Replace("mlp2x_gelu", "identity"));
        Assert.Contains("mm_projector_type = 'identity'", e.Message);
        Assert.Contains("mm_hidden_size 1024 to hidden_size 4096", e.Message);
    }

    [Fact]
    public void ToJson_round_trips_with_defaults_written_out()
    {
        var c = ProjectorConfig.Parse(PaperJson(kernel: 12, stride: 12));
        var json = c.ToJson();
        Assert.Contains("\"mm_vision_multi_level_size\": 4096", json);
        var back = ProjectorConfig.Parse(json);
        Assert.Equal(c with { MultiLevelSizeRaw = 4096, NumHeadsRaw = 8 }, back with { Source = c.Source });
        Assert.Equal(4, back.OutputTokenCount);
    }
}
