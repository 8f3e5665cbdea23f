using System.Diagnostics;
using QueCC.Model.Clip;
using QueCC.Model.Decoder;
using QueCC.Model.Generation;
using QueCC.Model.Llava;
using QueCC.Model.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace QueCC.Model.Commands;

/// <summary>One visual-token count of <see cref="InferenceBenchmarks.Latency"/>: medians over the repeats.</summary>
public sealed record LatencyPoint(int VisualTokens, int TextTokens, double PrefillMilliseconds, double DecodeMillisecondsPerToken,
                                  long KvCacheBytes, double PrefillFlops);

/// <summary>
/// Measured inference cost of a preset's LLM. <see cref="QueryPassMilliseconds"/> is QueCC's extra forward over the
/// Q question tokens that builds the query (the reference runs it; 2·N·(Q+V) leaves it out).
/// <see cref="CopyBytesPerSecond"/> is a measured tensor copy (bytes read + written per second); a decode step reads
/// every weight once, so <see cref="DecodeBoundTokensPerSecond"/> = copy bandwidth / weight bytes is the
/// memory-bandwidth ceiling of decode tokens/s.
/// </summary>
public sealed record LatencyResult(string Preset, string Device, long LlmParameters, long WeightBytes, int TextTokens, int DecodeTokens,
                                   int Repeats, double QueryPassMilliseconds, double CopyBytesPerSecond, double DecodeBoundTokensPerSecond,
                                   IReadOnlyList<LatencyPoint> Points);

/// <summary>Questions per second of batched greedy answering at one batch size.</summary>
public sealed record EvalThroughputPoint(int BatchSize, int Questions, double Seconds, double QuestionsPerSecond, int AnswerTokens);

public sealed record EvalThroughputResult(string Preset, string Device, int MaxNewTokens, IReadOnlyList<EvalThroughputPoint> Points);

/// <summary>Timing only: the numbers are printed by `quecc bench …`, never asserted.</summary>
public static class InferenceBenchmarks
{
    private static double Median(List<double> xs) => Stats.Median(xs);

    /// <summary>A preset's LLM with HF's random initialisation after <c>manual_seed(seed)</c>, in eval mode: the LLM of `bench latency` and `bench prefill`.</summary>
    internal static CausalLM RandomLlm(Presets.ModelPreset p, Device device, long seed)
    {
        torch.manual_seed(seed);
        var llm = CausalLM.Create(p.Text, device);
        llm.InitializeWeights();
        llm.eval();
        return llm;
    }

    /// <summary>
    /// For each V: time to first token (prefill of Q + V embeddings into a fresh KV cache, logits of the last
    /// position), time per output token (greedy single-token steps on that cache), and the cache's bytes after the
    /// prefill; once: the QueCC query pass (a forward over Q tokens) and a copy bandwidth. Randomly initialised
    /// weights: the cost of a forward does not depend on their values.
    /// </summary>
    public static LatencyResult Latency(string preset, IReadOnlyList<int> visualTokens, int textTokens, int decodeTokens = 8,
                                        int repeats = 3, string device = "cpu", long seed = 0)
    {
        if (visualTokens.Count == 0 || visualTokens.Any(v => v < 0)) throw new ArgumentException($"visual tokens [{string.Join(", ", visualTokens)}]: expected counts ≥ 0");
        if (textTokens < 1) throw new ArgumentException($"text tokens {textTokens}: expected at least 1");
        if (decodeTokens < 1) throw new ArgumentException($"decode tokens {decodeTokens}: expected at least 1");
        if (repeats < 1) throw new ArgumentException($"repeats {repeats}: expected at least 1");
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var dev = Devices.Resolve(device);
        var p = Presets.Presets.Get(preset);
        using var llm = RandomLlm(p, dev, seed);
        long nParams = llm.parameters().Sum(t => t.numel());
        long weightBytes = llm.parameters().Sum(t => t.numel() * t.ElementSize);
        int c = p.Text.HiddenSize;

        double Time(Action a)
        {
            var sw = Stopwatch.StartNew();
            a();
            return sw.Elapsed.TotalMilliseconds;
        }

        var query = torch.randn(1, textTokens, c, device: dev) * 0.02; // (1, Q, C)
        llm.Forward(inputsEmbeds: query, logitsToKeep: 1);           // warm-up
        var queryMs = Median(Enumerable.Range(0, repeats).Select(_ => Time(() => llm.Forward(inputsEmbeds: query, logitsToKeep: 1).LastHiddenState.cpu())).ToList());

        var points = new List<LatencyPoint>();
        foreach (var v in visualTokens)
        {
            using var s = torch.NewDisposeScope();
            var x = torch.randn(1, textTokens + v, c, device: dev) * 0.02; // (1, Q+V, C)
            using (var warm = llm.NewCache()) llm.Forward(inputsEmbeds: x, cache: warm, logitsToKeep: 1);
            var prefill = new List<double>();
            var decode = new List<double>();
            long kvBytes = 0;
            for (int r = 0; r < repeats; r++)
            {
                using var cache = llm.NewCache();
                Tensor logits = null!;
                prefill.Add(Time(() => logits = llm.Forward(inputsEmbeds: x, cache: cache, logitsToKeep: 1).Logits.cpu()));
                kvBytes = cache.Bytes;
                var next = logits[0, -1].argmax().view(1, 1).to(dev);
                decode.Add(Time(() =>
                {
                    for (int t = 0; t < decodeTokens; t++)
                    {
                        using var step = torch.NewDisposeScope();
                        var l = llm.Forward(inputIds: next, cache: cache).Logits; // (1, 1, V)
                        next = l[0, -1].argmax().view(1, 1).MoveToOuterDisposeScope();
                    }
                    next.cpu();
                }) / decodeTokens);
            }
            points.Add(new LatencyPoint(v, textTokens, Median(prefill), Median(decode), kvBytes, Compression.Flops.LlmInference(nParams, textTokens, v)));
        }

        // Copy bandwidth on a buffer well above cache sizes (256 MiB of float32), read + written bytes per second.
        var src = torch.ones(64L * 1024 * 1024, device: dev);
        var dst = torch.empty_like(src);
        dst.copy_(src);
        var copyMs = Median(Enumerable.Range(0, Math.Max(3, repeats)).Select(_ => Time(() => { dst.copy_(src); dst[0].ToSingle(); })).ToList());
        double copyBps = 2.0 * src.numel() * src.ElementSize / (copyMs / 1000);
        return new LatencyResult(p.Name, dev.ToString(), nParams, weightBytes, textTokens, decodeTokens, repeats, queryMs, copyBps,
                                 copyBps / weightBytes, points);
    }

    /// <summary>
    /// Questions/s of <see cref="LlavaModel.AnswerBatch"/> on a randomly initialised model of <paramref name="preset"/>
    /// (QueCC, <paramref name="visualTokens"/> tokens) over the same questions at each batch size, after a warm-up.
    /// </summary>
    public static EvalThroughputResult EvalThroughput(string preset, IReadOnlyList<int> batchSizes, int questions, int maxNewTokens,
                                                      int visualTokens = 4, long seed = 0)
    {
        if (batchSizes.Count == 0 || batchSizes.Any(b => b < 1)) throw new ArgumentException($"batch sizes [{string.Join(", ", batchSizes)}]: expected sizes ≥ 1");
        if (questions < 1) throw new ArgumentException($"questions {questions}: expected at least 1");
        var dir = Path.Combine(Path.GetTempPath(), $"quecc-bench-eval-{Guid.NewGuid():N}");
        try
        {
            LlavaEntryPoints.InitModel(preset, "quecc", visualTokens, dir, seed);
            using var model = LlavaCheckpoint.Load(dir, null, null);
            // Larger weights than the init's 0.02 so answers run to varied lengths instead of ending at once.
            torch.manual_seed(seed + 1);
            using (torch.no_grad()) foreach (var (_, prm) in model.Llm.named_parameters()) prm.normal_(0, 0.3);
            var rng = new Random((int)seed);
            var images = Enumerable.Range(0, questions).Select(i => RgbImage.Filled(32 + i % 17, 40 - i % 9, (byte)rng.Next(256), (byte)rng.Next(256), (byte)rng.Next(256))).ToArray();
            var words = new[] { "what", "colour", "is", "the", "object", "near", "left", "side", "of", "image", "how", "many" };
            var texts = Enumerable.Range(0, questions).Select(i => string.Join(" ", Enumerable.Range(0, 3 + i % 11).Select(_ => words[rng.Next(words.Length)])) + "?").ToArray();
            var opts = new GenerationOptions { MaxNewTokens = maxNewTokens };
            model.AnswerBatch(images.Take(2).ToArray(), texts.Take(2).ToArray(), opts); // warm-up
            var points = new List<EvalThroughputPoint>();
            foreach (var b in batchSizes)
            {
                int answerTokens = 0;
                var sw = Stopwatch.StartNew();
                for (int i = 0; i < questions; i += b)
                {
                    int n = Math.Min(b, questions - i);
                    var answers = model.AnswerBatch(images.Skip(i).Take(n).ToArray(), texts.Skip(i).Take(n).ToArray(), opts);
                    answerTokens += answers.Sum(a => model.Tokenizer!.Encode(a).Count);
                }
                double secs = sw.Elapsed.TotalSeconds;
                points.Add(new EvalThroughputPoint(b, questions, secs, questions / secs, answerTokens));
            }
            return new EvalThroughputResult(preset, model.Llm.parameters().First().device.ToString(), maxNewTokens, points);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, true);
        }
    }
}
