using System.Diagnostics;
using QueCC.Model.Clip;
using QueCC.Model.Compression;
using QueCC.Model.Decoder;
using QueCC.Model.Generation;
using QueCC.Model.Llava;
using QueCC.Model.Presets;
using QueCC.Model.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace QueCC.Model.Commands;

/// <summary>Prefill latency at one visual-token count, next to the paper's inference-cost model 2·N·(Q+V).</summary>
public sealed record PrefillPoint(int VisualTokens, int TextTokens, double MeanMilliseconds, double ModelFlops);

/// <summary>Prefill sweep plus decode throughput with and without the KV cache.</summary>
public sealed record PrefillBenchmarkResult(string Preset, string Device, long LlmParameters, IReadOnlyList<PrefillPoint> Points,
                                            int DecodeTokens, double DecodeTokensPerSecondCached, double DecodeTokensPerSecondUncached);

/// <summary>Static entry points behind the CLI's model verbs.</summary>
public static class LlavaEntryPoints
{
    /// <summary>
    /// Writes a randomly initialised LLaVA folder for a tiny/small preset: config.json, model.safetensors, tokenizer files,
    /// vision_tower/. <paramref name="visualTokens"/> V = h² with h dividing the tower's patch grid (kernel = stride = grid/h);
    /// with compressor "none" V must equal the patch count. <paramref name="visionTowerDir"/>, when given, is a CLIP vision
    /// folder (e.g. stage 0's) whose weights replace the random tower; its config must equal the preset's. Returns
    /// <paramref name="outDir"/>.
    /// </summary>
    public static string InitModel(string preset, string compressor, int visualTokens, string outDir, long seed = 0, string? visionTowerDir = null)
    {
        using var scope = torch.NewDisposeScope();
        var p = Presets.Presets.Get(preset);
        if (p.ConfigOnly)
            throw new UserInputException($"preset '{preset}' has real model shapes and is configuration-only; random init is for tiny or small (load real weights instead)");
        var cfg = BuildConfig(p, compressor, visualTokens);
        torch.manual_seed(seed);
        using var model = new LlavaModel(cfg, p.Vision);
        model.Llm.InitializeWeights();
        if (visionTowerDir is not null)
        {
            var cfgPath = Path.Combine(visionTowerDir, "config.json");
            var towerCfg = ClipVisionConfig.Load(cfgPath);
            if (towerCfg != p.Vision)
                throw new InvalidDataException($"{cfgPath}: this tower ({towerCfg.HiddenSize} wide, {towerCfg.NumHiddenLayers} layers, image {towerCfg.ImageSize}, patch {towerCfg.PatchSize}) is not preset {p.Name}'s ({p.Vision.HiddenSize}, {p.Vision.NumHiddenLayers}, {p.Vision.ImageSize}, {p.Vision.PatchSize})");
            using var ckpt = Checkpoints.Checkpoint.Open(Path.Combine(visionTowerDir, "model.safetensors"));
            LlavaCheckpoint.LoadVisionTower(model.VisionTower, ckpt, "");
        }
        Directory.CreateDirectory(outDir);
        int tokens = TinyTokenizer.Write(outDir);
        if (tokens > p.Text.VocabSize) throw new InvalidOperationException($"tiny tokenizer has {tokens} tokens, more than vocab_size {p.Text.VocabSize}");
        LlavaCheckpoint.Save(model, outDir);
        return outDir;
    }

    /// <summary>The LLaVA config of a preset with a compressor producing <paramref name="visualTokens"/> tokens per image.</summary>
    public static LlavaConfig BuildConfig(ModelPreset p, string compressor, int visualTokens)
    {
        int grid = p.Vision.NumPatchesPerSide, n = p.Vision.NumPatches;
        var kind = compressor.Trim().ToLowerInvariant();
        int? kernel = null;
        if (kind == "none")
        {
            if (visualTokens != n) throw new UserInputException($"visual tokens {visualTokens}: compressor none passes all {n} patch tokens; expected {n}");
        }
        else
        {
            int h = (int)Math.Round(Math.Sqrt(visualTokens));
            var allowed = Enumerable.Range(1, grid).Where(d => grid % d == 0).Select(d => d * d);
            if (visualTokens < 1 || h * h != visualTokens || grid % h != 0)
                throw new UserInputException($"visual tokens {visualTokens}: expected h² with h dividing the {grid}×{grid} patch grid: one of {string.Join(", ", allowed)}");
            kernel = grid / h;
        }
        var projector = new ProjectorConfig
        {
            ProjectorType = "mlp2x_gelu", VisionWidth = p.Vision.HiddenSize, LlmWidth = p.Text.HiddenSize, CompressionTypeName = kind,
            InputTokenCount = n, TextEmbeddingSize = kind == "quecc" ? p.Text.HiddenSize : null, KernelSize = kernel, Stride = kernel,
            MultiLevelSizeRaw = p.Vision.HiddenSize * p.MultiLevelLayers.Count, NumHeadsRaw = 8, Source = $"preset {p.Name}",
        }.Validate();
        var settings = new LlavaSettings
        {
            VisionTower = $"random-init:{p.Name}", SelectLayer = p.SelectLayer, MultiLevelLayers = p.MultiLevelLayers.ToArray(),
            ImageAspectRatio = "pad", ConversationTemplate = p.Text is LlamaConfig ? "vicuna_v1" : "qwen_1_5",
        };
        return new LlavaConfig(p.Text, projector, settings, $"preset {p.Name}");
    }

    /// <summary>Loads a model folder and answers <paramref name="prompt"/> about the image (temperature 0 = greedy).</summary>
    public static string Generate(string modelDir, string? visionTowerDir, string imagePath, string prompt, int maxNewTokens = 64,
                                  double temperature = 0, long seed = 0, double topP = 1.0)
    {
        var image = RgbImage.Load(imagePath);
        using var model = LlavaCheckpoint.Load(modelDir, visionTowerDir);
        if (model.Tokenizer is null) throw new UserInputException($"{modelDir}: no tokenizer files (vocab.json + merges.txt or tokenizer.model)");
        return model.Answer(image, prompt, new GenerationOptions { MaxNewTokens = maxNewTokens, Temperature = temperature, Seed = seed, TopP = topP });
    }

    /// <summary>
    /// LLM prefill latency (randomly initialised decoder of <paramref name="preset"/>) for Q text + V visual tokens,
    /// and decode throughput with and without the KV cache. Timing only; the numbers are not asserted anywhere.
    /// </summary>
    public static PrefillBenchmarkResult BenchmarkPrefill(string preset, IReadOnlyList<int> visualTokenCounts, int textTokens = 50,
                                                          int repeats = 3, int decodeTokens = 16, string device = "cpu", long seed = 0)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var dev = Runtime.Devices.Resolve(device);
        var p = Presets.Presets.Get(preset);
        using var llm = InferenceBenchmarks.RandomLlm(p, dev, seed);
        long nParams = llm.parameters().Sum(t => t.numel());
        var points = new List<PrefillPoint>();
        foreach (var v in visualTokenCounts)
        {
            using var s = torch.NewDisposeScope();
            var x = torch.randn(1, textTokens + v, p.Text.HiddenSize, device: dev) * 0.02;
            llm.Forward(inputsEmbeds: x, logitsToKeep: 1); // warm-up
            var sw = Stopwatch.StartNew();
            for (int r = 0; r < repeats; r++) llm.Forward(inputsEmbeds: x, logitsToKeep: 1).Logits.cpu();
            points.Add(new PrefillPoint(v, textTokens, sw.Elapsed.TotalMilliseconds / repeats, Flops.LlmInference(nParams, textTokens, v)));
        }
        var prompt = Enumerable.Range(0, textTokens + (visualTokenCounts.Count > 0 ? visualTokenCounts[0] : 0)).Select(i => i % p.Text.VocabSize).ToArray();
        double Rate(bool cached)
        {
            var opts = new GenerationOptions { MaxNewTokens = decodeTokens, UseKvCache = cached };
            TextGenerator.Generate(llm, prompt, opts with { MaxNewTokens = 2 }); // warm-up
            var sw = Stopwatch.StartNew();
            var r = TextGenerator.Generate(llm, prompt, opts);
            return r.Tokens.Count / sw.Elapsed.TotalSeconds;
        }
        return new PrefillBenchmarkResult(p.Name, dev.ToString(), nParams, points, decodeTokens, Rate(true), Rate(false));
    }
}
