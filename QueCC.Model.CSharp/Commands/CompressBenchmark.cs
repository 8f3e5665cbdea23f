using System.Diagnostics;
using System.Globalization;
using System.Text;
using QueCC.Model.Compression;
using TorchSharp;
using static TorchSharp.torch;

namespace QueCC.Model.Commands;

/// <summary>
/// One benchmarked configuration; times are per image (batch time / batch), GFLOP/s from <see cref="Flops"/>.
/// <paramref name="MatmulGflops"/> is the dense-matmul ceiling measured right before and after this row (the better
/// of the two): on a shared machine the available compute drifts, so each row is compared with its own ceiling.
/// </summary>
public sealed record CompressBenchmarkRow(
    string Method, int OutputTokens, int Batch,
    double ForwardMsPerImage, double ForwardBackwardMsPerImage,
    double ForwardGflopPerImage, double ForwardBackwardGflopPerImage, double MatmulGflops)
{
    public double ForwardBackwardFractionOfMatmul => ForwardBackwardGflops / MatmulGflops;
    public double ForwardGflops => ForwardGflopPerImage / (ForwardMsPerImage / 1e3);
    public double ForwardBackwardGflops => ForwardBackwardGflopPerImage / (ForwardBackwardMsPerImage / 1e3);
}

/// <summary>A benchmark run: rows, each with the same run's dense-matmul throughput as the achievable ceiling.</summary>
public sealed record CompressBenchmarkResult(IReadOnlyList<CompressBenchmarkRow> Rows, int Threads, int Iterations)
{
    public string Format()
    {
        var sb = new StringBuilder();
        sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"projector (compressor + mlp2x_gelu) at paper dims: 576 tokens, width 1024, multi 4096, text 4096, LLM 4096; CPU, {Threads} threads, median of {Iterations}"));
        sb.AppendLine($"{"method",-14} {"V",4} {"batch",5} {"fwd ms/img",11} {"fwd GFLOP/s",12} {"fwd+bwd ms/img",15} {"fwd+bwd GFLOP/s",16} {"matmul GFLOP/s",15} {"fwd+bwd/matmul",15}");
        foreach (var r in Rows)
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"{r.Method,-14} {r.OutputTokens,4} {r.Batch,5} {r.ForwardMsPerImage,11:F1} {r.ForwardGflops,12:F1} {r.ForwardBackwardMsPerImage,15:F1} {r.ForwardBackwardGflops,16:F1} {r.MatmulGflops,15:F1} {100 * r.ForwardBackwardFractionOfMatmul,14:F0}%"));
        sb.Append("matmul: best 2048×2048 float32 torch.matmul in the same process, measured before and after each row");
        return sb.ToString();
    }
}

/// <summary>Forward and forward+backward speed of the projector at the paper's dimensions (backs <c>quecc bench compress</c>).</summary>
public static class CompressBenchmark
{
    /// <summary>The reference QueCC setting (LLaVA-1.5, Vicuna-7B, CLIP-336) with k = s = 24/√V.</summary>
    public static ProjectorConfig PaperConfig(int outputTokens, string method = "quecc")
    {
        int side = (int)Math.Round(Math.Sqrt(outputTokens));
        if (side * side != outputTokens || 24 % side != 0)
            throw new UserInputException($"output tokens {outputTokens}: expected a square whose side divides 24 (1, 4, 9, 16, 36, 64, 144, 576)");
        return new ProjectorConfig
        {
            ProjectorType = "mlp2x_gelu", VisionWidth = 1024, LlmWidth = 4096, CompressionTypeName = method,
            InputTokenCount = 576, TextEmbeddingSize = 4096, KernelSize = 24 / side, Stride = 24 / side,
        }.Validate();
    }

    public static CompressBenchmarkResult Run(int batch = 16, int[]? outputTokens = null, int iterations = 3, Action<string>? log = null, string method = "quecc")
    {
        outputTokens ??= [36, 1];
        log ??= _ => { };
        var rows = new List<CompressBenchmarkRow>();
        foreach (var v in outputTokens)
        {
            using var scope = torch.NewDisposeScope();
            var config = PaperConfig(v, method);
            torch.manual_seed(0);
            using var projector = new MultimodalProjector(config);
            var x = torch.randn(batch, 576, 1024);
            var multi = torch.randn(batch, 576, config.MultiLevelSize);
            var text = torch.randn(batch, 1, 4096);

            double Forward()
            {
                using var s = torch.NewDisposeScope();
                using var _ = torch.no_grad();
                var sw = Stopwatch.StartNew();
                projector.Forward(x, multi, text).sum().item<float>(); // reading a value makes sure all work is done
                return sw.Elapsed.TotalMilliseconds;
            }
            double ForwardBackward()
            {
                using var s = torch.NewDisposeScope();
                projector.zero_grad();
                var sw = Stopwatch.StartNew();
                projector.Forward(x, multi, text).square().mean().backward();
                return sw.Elapsed.TotalMilliseconds;
            }

            var ceilingBefore = MatmulGflops();
            Forward(); // warm-up: allocator and kernel selection
            var fwd = Runtime.Stats.Median(Enumerable.Range(0, iterations).Select(_ => Forward()));
            log(string.Create(CultureInfo.InvariantCulture, $"{method} V={v}: forward {fwd / batch:F1} ms/image"));
            ForwardBackward();
            var fb = Runtime.Stats.Median(Enumerable.Range(0, iterations).Select(_ => ForwardBackward()));
            log(string.Create(CultureInfo.InvariantCulture, $"{method} V={v}: forward+backward {fb / batch:F1} ms/image"));
            var ceiling = Math.Max(ceilingBefore, MatmulGflops());
            log(string.Create(CultureInfo.InvariantCulture, $"matmul ceiling around V={v}: {ceiling:F1} GFLOP/s"));
            var flops = Flops.PerImage(config);
            double f = flops.Sum(e => e.Forward), b = flops.Sum(e => e.Backward);
            rows.Add(new CompressBenchmarkRow(method, v, batch, fwd / batch, fb / batch, f / 1e9, (f + b) / 1e9, ceiling));
        }
        return new CompressBenchmarkResult(rows, torch.get_num_threads(), iterations);
    }

    /// <summary>Best of a few 2048³ float32 matmuls: what this machine's BLAS reaches on the same cores.</summary>
    public static double MatmulGflops(int n = 2048, int repeats = 3)
    {
        using var scope = torch.NewDisposeScope();
        var a = torch.randn(n, n);
        var b = torch.randn(n, n);
        torch.matmul(a, b).Dispose();
        double best = double.MaxValue;
        for (int i = 0; i < repeats; i++)
        {
            var sw = Stopwatch.StartNew();
            torch.matmul(a, b).Dispose();
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        return 2.0 * n * n * n / best / 1e9;
    }
}
