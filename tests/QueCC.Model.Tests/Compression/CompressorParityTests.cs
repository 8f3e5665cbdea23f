using QueCC.Model.Checkpoints;
using QueCC.Model.Commands;
using QueCC.Model.Compression;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace QueCC.Model.Tests.Compression;

/// <summary>Parity with the independent PyTorch oracle (scripts/fixtures/make_compressor_fixtures.py, python3-torch 1.13).</summary>
public class CompressorParityTests
{
    /// <summary>float32 end to end; the two implementations differ only in summation order.</summary>
    private const double Tolerance = 1e-5;

    internal static string FixtureDir => Path.Combine(AppContext.BaseDirectory, "Fixtures", "compressors");
    internal static string Fixture(string name) => Path.Combine(FixtureDir, name);

    private static readonly string[] CaseNames =
    [
        "quecc_v1", "quecc_v4", "quecc_v16", "quecc_v36", "quecc_v16_k6s2",
        "quecc_noquery_v4", "tokenpacker_v36", "tokenpacker_v16", "avgpool_v4",
    ];

    public static TheoryData<string> Cases => new(CaseNames);

    internal static double MaxAbsDiff(Tensor a, Tensor b)
    {
        Assert.Equal(b.shape, a.shape);
        return (a - b).abs().max().item<float>();
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Compressor_and_projector_match_pytorch(string name)
    {
        using var scope = torch.NewDisposeScope();
        var config = ProjectorConfig.Load(Fixture(name + ".config.json"));
        using var projector = new MultimodalProjector(config);
        using (var ckpt = Checkpoint.Open(Fixture(name + ".weights.safetensors")))
            StateDictLoader.Load(projector, ckpt);
        var inputs = Safetensors.Load(Fixture("inputs.safetensors"));
        var expected = Safetensors.Load(Fixture(name + ".expected.safetensors"));
        using var _ = torch.no_grad();
        var compressed = projector.Compress(inputs["image_features"], inputs["image_features_multi"], inputs["text_features"]);
        var tokens = projector.Forward(inputs["image_features"], inputs["image_features_multi"], inputs["text_features"]);

        Assert.Equal(new long[] { 2, config.OutputTokenCount, config.Width }, compressed.shape);
        Assert.InRange(MaxAbsDiff(compressed, expected["compressed"]), 0, Tolerance);
        Assert.InRange(MaxAbsDiff(tokens, expected["image_tokens"]), 0, Tolerance);
    }

    [Fact]
    public void Fixture_token_counts_cover_1_4_16_36()
    {
        var counts = CaseNames.Select(c => ProjectorConfig.Load(Fixture(c + ".config.json")))
            .Where(c => c.Compression == CompressionType.Quecc).Select(c => c.OutputTokenCount).ToHashSet();
        Assert.Superset(new HashSet<int> { 1, 4, 16, 36 }, counts);
    }

    [Fact]
    public void Compress_entry_point_writes_image_tokens_matching_pytorch()
    {
        using var scope = torch.NewDisposeScope();
        var outPath = Path.Combine(Path.GetTempPath(), $"quecc-test-{Guid.NewGuid():N}.safetensors");
        try
        {
            var shape = ProjectorTools.Compress(Fixture("quecc_v4.weights.safetensors"), Fixture("quecc_v4.config.json"), Fixture("inputs.safetensors"), outPath);
            Assert.Equal(new long[] { 2, 4, 48 }, shape);
            using var file = Safetensors.Open(outPath);
            Assert.Equal(["image_tokens"], file.Tensors.Keys);
            Assert.Equal("F32", file.Tensors["image_tokens"].DType);
            var expected = Safetensors.Load(Fixture("quecc_v4.expected.safetensors"));
            Assert.InRange(MaxAbsDiff(file.Read("image_tokens"), expected["image_tokens"]), 0, Tolerance);
        }
        finally
        {
            File.Delete(outPath);
        }
    }

    [Fact]
    public void Compress_writes_nothing_when_text_features_are_missing()
    {
        using var scope = torch.NewDisposeScope();
        var dir = Directory.CreateTempSubdirectory("quecc-test-").FullName;
        try
        {
            var inputs = Safetensors.Load(Fixture("inputs.safetensors"));
            var features = Path.Combine(dir, "features.safetensors");
            Safetensors.Write(features, inputs.Where(kv => kv.Key != "text_features"));
            var outPath = Path.Combine(dir, "out.safetensors");
            var e = Assert.Throws<CheckpointFormatException>(() =>
                ProjectorTools.Compress(Fixture("quecc_v4.weights.safetensors"), Fixture("quecc_v4.config.json"), features, outPath));
            Assert.Contains("features.safetensors", e.Message);
            Assert.Contains("text_features", e.Message);
            Assert.False(File.Exists(outPath));
            Assert.Equal([features], Directory.GetFiles(dir)); // no temp file left behind either
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void Compress_writes_nothing_when_features_have_the_wrong_width()
    {
        using var scope = torch.NewDisposeScope();
        var dir = Directory.CreateTempSubdirectory("quecc-test-").FullName;
        try
        {
            var features = Path.Combine(dir, "features.safetensors");
            Safetensors.Write(features, [new("image_features", torch.randn(2, 144, 16))]);
            var outPath = Path.Combine(dir, "out.safetensors");
            var e = Assert.Throws<UserInputException>(() =>
                ProjectorTools.Compress(Fixture("avgpool_v4.weights.safetensors"), Fixture("avgpool_v4.config.json"), features, outPath));
            Assert.Contains("image_features", e.Message);
            Assert.Contains("(B, 144, 32)", e.Message);
            Assert.False(File.Exists(outPath));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
