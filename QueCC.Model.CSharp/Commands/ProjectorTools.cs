using System.Globalization;
using System.Text;
using QueCC.Model.Checkpoints;
using QueCC.Model.Compression;
using QueCC.Model.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace QueCC.Model.Commands;

/// <summary>One row of <see cref="ProjectorDescription"/>: a state-dict module, its parameters and per-image FLOPs.</summary>
public sealed record ModuleCost(string Module, long Parameters, double ForwardFlops, double BackwardFlops);

/// <summary>Sizes and per-image cost of a projector built from a config.</summary>
public sealed record ProjectorDescription(
    ProjectorConfig Config, IReadOnlyList<ModuleCost> Modules,
    long CompressorParameters, long MlpParameters, double CompressorFlops, double MlpFlops)
{
    public long TotalParameters => CompressorParameters + MlpParameters;
    public double TotalFlops => CompressorFlops + MlpFlops;

    /// <summary>A plain-text table for the CLI.</summary>
    public string Format()
    {
        var c = Config;
        var sb = new StringBuilder();
        sb.AppendLine(
            $"projector {c.ProjectorType}, compression {c.CompressionTypeName ?? "none"}: {c.InputTokenCount?.ToString() ?? "?"} → {c.OutputTokenCount} tokens per image" +
            (c.Compression == CompressionType.None ? "" : $" (grid {c.InputGrid}×{c.InputGrid} → {c.OutputGrid}×{c.OutputGrid}, kernel {c.Kernel}, stride {c.StrideOrKernel}, window {c.WindowSide}×{c.WindowSide})") +
            $", width {c.Width} → {c.LlmHidden}");
        sb.AppendLine($"{"module",-24} {"parameters",14} {"fwd GFLOP/img",14}");
        foreach (var m in Modules)
            sb.AppendLine(CultureInfo.InvariantCulture, $"{m.Module,-24} {m.Parameters,14:N0} {m.ForwardFlops / 1e9,14:F4}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"{"compressor total",-24} {CompressorParameters,14:N0} {CompressorFlops / 1e9,14:F4}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"{"projector MLP total",-24} {MlpParameters,14:N0} {MlpFlops / 1e9,14:F4}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"{"total",-24} {TotalParameters,14:N0} {TotalFlops / 1e9,14:F4}");
        sb.Append("FLOPs: multiply-add = 2; Linear, depthwise conv, attention products, pooling counted; GELU/LayerNorm/softmax/bias adds not.");
        return sb.ToString();
    }
}

/// <summary>Library entry points behind the CLI's projector verbs.</summary>
public static class ProjectorTools
{
    /// <summary>
    /// Runs a trained projector on precomputed features. <paramref name="featuresPath"/> (safetensors) holds
    /// <c>image_features</c> (B, N, mm_hidden_size) and, where the compressor needs them,
    /// <c>image_features_multi</c> (B, N, mm_vision_multi_level_size) and <c>text_features</c> (B, 1, text size).
    /// Writes <c>image_tokens</c> (B, V, hidden_size) float32 to <paramref name="outPath"/> atomically: on any error
    /// nothing is written. Returns the shape written.
    /// </summary>
    public static long[] Compress(string projectorPath, string configPath, string featuresPath, string outPath, string device = "cpu")
    {
        using var scope = torch.NewDisposeScope();
        var dev = Devices.Resolve(device);
        var config = ProjectorConfig.Load(configPath);
        using var projector = new MultimodalProjector(config);
        using (var checkpoint = Checkpoint.Open(projectorPath))
            StateDictLoader.Load(projector, checkpoint);
        projector.to(dev).eval();

        Tensor x;
        Tensor? multi = null, text = null;
        var kind = config.CompressionTypeName ?? "none";
        using (var features = Safetensors.Open(featuresPath))
        {
            Tensor Require(string name, string shape)
            {
                if (!features.Tensors.ContainsKey(name))
                    throw new CheckpointFormatException($"{featuresPath}: no tensor '{name}'; compression {kind} needs {name} {shape}");
                return features.Read(name).to(float32).to(dev);
            }
            x = Require("image_features", $"(B, {config.InputTokenCount?.ToString() ?? "N"}, {config.Width})");
            if (config.NeedsMultiLevel) multi = Require("image_features_multi", $"(B, N, {config.MultiLevelSize})");
            if (config.NeedsText) text = Require("text_features", $"(B, 1, {config.TextSize})");
        }

        Tensor tokens;
        using (torch.no_grad())
        {
            try
            {
                tokens = projector.Forward(x, multi, text).to(float32).cpu(); // (B, V, D)
            }
            catch (UserInputException e)
            {
                throw new UserInputException($"{featuresPath}: {e.Message}", e);
            }
        }
        Safetensors.Write(outPath, [new("image_tokens", tokens)], new Dictionary<string, string>
        {
            ["format"] = "pt",
            ["mm_vision_token_compression_type"] = kind,
            ["source_features"] = Path.GetFileName(featuresPath),
        });
        return tokens.shape;
    }

    /// <summary>Parameter counts (from the module itself, built on the meta device: no memory) and analytic per-image FLOPs.</summary>
    public static ProjectorDescription Describe(ProjectorConfig config)
    {
        using var scope = torch.NewDisposeScope();
        using var projector = new MultimodalProjector(config, torch.META);
        var flops = Flops.PerImage(config).ToDictionary(f => f.Module);
        var rows = new List<ModuleCost>();
        var prefix = config.Compression == CompressionType.None ? "" : "0.";
        if (config.Compression != CompressionType.None)
        {
            if (config.Compression == CompressionType.AvgPool)
                rows.Add(Row("0.avgpool", 0));
            foreach (var (name, child) in projector.Compressor.named_children())
                rows.Add(Row(prefix + name, child.parameters().Sum(p => p.numel())));
        }
        foreach (var (name, child) in projector.named_children())
        {
            if (name == "0" && config.Compression != CompressionType.None) continue;
            var n = child.parameters().Sum(p => p.numel());
            if (n > 0) rows.Add(Row(name, n));
        }
        var comp = rows.Where(r => prefix.Length > 0 && r.Module.StartsWith(prefix)).ToList();
        var mlp = rows.Except(comp).ToList();
        return new ProjectorDescription(config, rows, comp.Sum(r => r.Parameters), mlp.Sum(r => r.Parameters),
            comp.Sum(r => r.ForwardFlops), mlp.Sum(r => r.ForwardFlops));

        ModuleCost Row(string name, long parameters) =>
            flops.TryGetValue(name, out var f) ? new ModuleCost(name, parameters, f.Forward, f.Backward) : new ModuleCost(name, parameters, 0, 0);
    }
}
