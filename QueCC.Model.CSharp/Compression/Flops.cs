namespace QueCC.Model.Compression;

/// <summary>
/// Analytic FLOPs of one part of the projector for one image. A multiply-add counts as 2 FLOPs.
/// Counted: Linear layers, the depthwise conv, the attention products (q·kᵀ and attn·v), average pooling (1 per
/// input element). Not counted: GELU, LayerNorm, softmax, bias and residual adds — elementwise work below 1 %
/// of the total at the paper's dimensions. Backward = weight gradients (as many FLOPs as the forward product)
/// plus input gradients only where the input needs a gradient: the vision and text features are frozen
/// inputs, so the first layer of k_proj, v_proj, text_projection (and q_proj without text) computes none.
/// </summary>
public sealed record FlopEntry(string Module, double Forward, double Backward);

public static class Flops
{
    /// <summary>Per-image FLOPs of each compressor submodule, then each projector Linear (named by state-dict key).</summary>
    public static IReadOnlyList<FlopEntry> PerImage(ProjectorConfig c)
    {
        double w = c.Width, m = c.MultiLevelSize, n = c.InputTokenCount ?? 0, v = c.OutputTokenCount, d = c.LlmHidden;
        double kk = (double)c.WindowSide * c.WindowSide, conv = (double)c.Kernel * c.Kernel;
        var e = new List<FlopEntry>();
        // A matmul of `fwd` FLOPs: backward = fwd (weight grad) + fwd (input grad, if the input needs it).
        void Add(string name, double fwd, bool inputGrad) => e.Add(new FlopEntry(name, fwd, fwd * (inputGrad ? 2 : 1)));
        var kind = c.Compression;
        var p = kind == CompressionType.None ? "" : "0.";
        if (kind == CompressionType.Quecc)
            Add(p + "text_projection", 2 * c.TextSize * w, false);
        if (kind is CompressionType.Quecc or CompressionType.QueccNoQuery)
        {
            e.Add(new FlopEntry(p + "q_proj", 2 * n * w * w * 2, 2 * n * w * w * (kind == CompressionType.Quecc ? 4 : 3)));
            Add(p + "q_downsample", 2 * v * w * conv, true);
        }
        if (kind == CompressionType.TokenPacker)
            e.Add(new FlopEntry(p + "q_proj", 2 * v * w * w * 2, 2 * v * w * w * 3));
        if (c.NeedsMultiLevel)
        {
            foreach (var name in new[] { "k_proj", "v_proj" })
                e.Add(new FlopEntry(p + name, 2 * n * (m * w + w * w), 2 * n * (m * w + 2 * w * w)));
            // in_proj on V queries and N keys/values, 2 attention products over K·K keys, out_proj on V tokens.
            Add(p + "clip_attn", 2 * v * w * w + 2 * 2 * n * w * w + 2 * 2 * v * kk * w + 2 * v * w * w, true);
        }
        if (kind == CompressionType.AvgPool)
            e.Add(new FlopEntry(p + "avgpool", n * w, 0)); // no parameters and frozen input: nothing to differentiate
        int index = kind == CompressionType.None ? 0 : 1;
        for (int i = 0; i < c.MlpDepth; i++)
        {
            if (i > 0) index++; // GELU
            // The first projector layer's input is the compressor output: it needs a gradient only if something trainable precedes it.
            bool inputGrad = i > 0 || kind is CompressionType.Quecc or CompressionType.QueccNoQuery or CompressionType.TokenPacker;
            Add($"{index++}", 2 * v * (i == 0 ? w : d) * d, inputGrad);
        }
        return e;
    }

    /// <summary>Sum of the compressor entries (keys under <c>0.</c>; zero for <c>none</c>).</summary>
    public static (double Forward, double Backward) Compressor(ProjectorConfig c)
    {
        var parts = PerImage(c).Where(x => c.Compression != CompressionType.None && x.Module.StartsWith("0.")).ToList();
        return (parts.Sum(x => x.Forward), parts.Sum(x => x.Backward));
    }

    /// <summary>Sum of the projector MLP entries.</summary>
    public static (double Forward, double Backward) Mlp(ProjectorConfig c)
    {
        var parts = PerImage(c).Where(x => c.Compression == CompressionType.None || !x.Module.StartsWith("0.")).ToList();
        return (parts.Sum(x => x.Forward), parts.Sum(x => x.Backward));
    }

    /// <summary>LLM inference FLOPs per the paper's cost model, 2·N·(Q + V), with N in parameters.</summary>
    public static double LlmInference(double llmParameters, int textTokens, int visualTokens) => 2 * llmParameters * (textTokens + visualTokens);
}
