// A program outside the repository using the QueCC.Model package: build a QueCC projector, compress a batch of
// CLIP-sized features to visual tokens, save and reload the weights, draw a synthetic benchmark image.
// It exits non-zero if any result differs from what the configuration implies.
using QueCC.Model.Checkpoints;
using QueCC.Model.Compression;
using QueCC.Model.Data;
using TorchSharp;
using static TorchSharp.torch;

torch.manual_seed(0);
// 6×6 input grid, 2×2 conv stride 2 → a 3×3 grid of 9 visual tokens, each of the LLM's width 16.
var config = new ProjectorConfig
{
    ProjectorType = "mlp2x_gelu", VisionWidth = 8, LlmWidth = 16, CompressionTypeName = "quecc",
    InputTokenCount = 36, TextEmbeddingSize = 16, KernelSize = 2, Stride = 2, MultiLevelSizeRaw = 12, NumHeadsRaw = 2,
}.Validate();

using var projector = new MultimodalProjector(config);
projector.eval();
using var features = randn(2, 36, 8);      // (B, N, C) image features
using var multi = randn(2, 36, 12);        // (B, N, multi-level C)
using var text = randn(2, 1, 16);          // (B, 1, LLM width) text query
using var tokens = projector.Forward(features, multi, text);   // (B, V, hidden)
Console.WriteLine($"visual tokens: ({string.Join(", ", tokens.shape)}), expected (2, {config.OutputTokenCount}, 16)");
if (!tokens.shape.SequenceEqual(new long[] { 2, config.OutputTokenCount, 16 })) return 1;

var dir = Directory.CreateTempSubdirectory("quecc-example").FullName;
try
{
    var weights = Path.Combine(dir, "mm_projector.safetensors");
    Safetensors.Write(weights, projector.state_dict());
    using var reloaded = new MultimodalProjector(config);
    StateDictLoader.Load(reloaded, Safetensors.Load(weights));
    reloaded.eval();
    using var again = reloaded.Forward(features, multi, text);
    var maxDiff = (again - tokens).abs().max().item<float>();
    Console.WriteLine($"{Path.GetFileName(weights)}: {projector.state_dict().Count} tensors, reloaded output max |diff| = {maxDiff}");
    if (maxDiff != 0f) return 1;

    var data = SyntheticData.Make("shapes", 2, 0, 0, Path.Combine(dir, "shapes"));
    Console.WriteLine($"synthetic benchmark (SkiaSharp): {data}");
    return File.Exists(data) ? 0 : 1;
}
finally
{
    Directory.Delete(dir, true);
}
