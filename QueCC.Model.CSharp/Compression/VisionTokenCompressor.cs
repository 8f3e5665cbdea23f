using QueCC.Model.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace QueCC.Model.Compression;

/// <summary>
/// A vision-token compressor: index 0 of the projector, so its parameters load from <c>mm_projector.0.*</c>.
/// One forward signature for every method; a method that does not need an input ignores it.
/// </summary>
public abstract class VisionTokenCompressor : nn.Module
{
    protected readonly ProjectorConfig config;

    protected VisionTokenCompressor(string name, ProjectorConfig config) : base(name) => this.config = config;

    /// <summary>
    /// imageFeatures (B, N, mm_hidden_size); imageFeaturesMulti (B, N, mm_vision_multi_level_size);
    /// textFeatures (B, 1, mm_vision_output_text_embedding_size). Returns (B, V, mm_hidden_size).
    /// </summary>
    public abstract Tensor Forward(Tensor imageFeatures, Tensor? imageFeaturesMulti = null, Tensor? textFeatures = null);

    /// <summary>Shape checks whose messages name the input and the expected shape; user data reaches here.</summary>
    protected void CheckInputs(Tensor x, Tensor? multi, Tensor? text)
    {
        var kind = config.CompressionTypeName ?? "none";
        long n = config.InputTokenCount ?? -1;
        if (x.dim() != 3 || x.shape[2] != config.Width || (n >= 0 && x.shape[1] != n))
            throw new UserInputException($"image_features: expected shape (B, {(n >= 0 ? n : "N")}, {config.Width}) for {kind}, got {Shape(x)}");
        var b = x.shape[0];
        if (config.NeedsMultiLevel)
        {
            if (multi is null)
                throw new UserInputException($"image_features_multi: {kind} needs the multi-level features (B, {x.shape[1]}, {config.MultiLevelSize}) but none were given");
            if (multi.dim() != 3 || multi.shape[0] != b || multi.shape[1] != x.shape[1] || multi.shape[2] != config.MultiLevelSize)
                throw new UserInputException($"image_features_multi: expected shape ({b}, {x.shape[1]}, {config.MultiLevelSize}) for {kind}, got {Shape(multi)}");
        }
        if (config.NeedsText)
        {
            if (text is null)
                throw new UserInputException($"text_features: {kind} needs the query text embedding (B, 1, {config.TextSize}) but none was given");
            if (text.dim() != 3 || text.shape[0] != b || text.shape[1] != 1 || text.shape[2] != config.TextSize)
                throw new UserInputException($"text_features: expected shape ({b}, 1, {config.TextSize}) for {kind}, got {Shape(text)}");
        }
    }

    internal static string Shape(Tensor t) => "(" + string.Join(", ", t.shape) + ")";

    /// <summary>[Linear, GELU, Linear, LayerNorm eps 1e-6]: keys {0, 2, 3} as in the reference q_proj / k_proj / v_proj.</summary>
    protected static Sequential ProjectionMlp(long inFeatures, long outFeatures, Device? device) => nn.Sequential(
        ("0", nn.Linear(inFeatures, outFeatures, device: device)),
        ("1", nn.GELU()),
        ("2", nn.Linear(outFeatures, outFeatures, device: device)),
        ("3", nn.LayerNorm([outFeatures], eps: 1e-6, device: device)));

    /// <summary>(B, N, C) → (B, C, G, G), token index = row·G + col.</summary>
    protected static Tensor ToGrid(Tensor x, int grid) =>
        x.transpose(1, 2).reshape(x.shape[0], x.shape[2], grid, grid); // (B, C, G, G)

    /// <summary>(B, C, h, w) → (B, h·w, C), row-major.</summary>
    protected static Tensor FromGrid(Tensor x) => x.flatten(2).transpose(1, 2); // (B, h·w, C)

    /// <summary>Builds the compressor named by the config (on <paramref name="device"/>, e.g. meta for shape-only work).</summary>
    public static VisionTokenCompressor Create(ProjectorConfig config, Device? device = null) => config.Compression switch
    {
        CompressionType.Quecc => new QueccCompressor(config, useText: true, device),
        CompressionType.QueccNoQuery => new QueccCompressor(config, useText: false, device),
        CompressionType.TokenPacker => new TokenPackerCompressor(config, device),
        CompressionType.AvgPool => new AvgPoolCompressor(config),
        _ => new IdentityCompressor(config),
    };
}

/// <summary>
/// <c>clip_attn</c>: multi-head attention with PyTorch nn.MultiheadAttention parameters and semantics
/// (in_proj_weight = [W_q; W_k; W_v], biases, out_proj, scale 1/√head_dim), restricted so that output
/// token (i, j) of the h×h grid attends only to the K×K window of input tokens rows [iK, (i+1)K), cols [jK, (j+1)K).
/// All B·h·h windows run as one batched attention call; since the windows tile the grid, the k/v in-projection
/// runs once per input token, exactly as in a loop over windows.
/// </summary>
public sealed class RegionAttention : nn.Module
{
    private readonly Parameter in_proj_weight;
    private readonly Parameter in_proj_bias;
    private readonly Linear out_proj;
    private readonly long embed, heads;

    public RegionAttention(long embedDim, long numHeads, Device? device = null) : base("clip_attn")
    {
        embed = embedDim;
        heads = numHeads;
        // Same initialisation as nn.MultiheadAttention: xavier-uniform in_proj, zero biases.
        in_proj_weight = nn.Parameter(torch.empty(3 * embedDim, embedDim, device: device));
        in_proj_bias = nn.Parameter(torch.zeros(3 * embedDim, device: device));
        out_proj = nn.Linear(embedDim, embedDim, device: device);
        if (in_proj_weight.device_type != DeviceType.META)
        {
            using var _ = torch.no_grad();
            nn.init.xavier_uniform_(in_proj_weight);
            nn.init.zeros_(out_proj.bias!);
        }
        RegisterComponents();
    }

    /// <summary>query (B, h·h, E); keys, values (B, G·G, E) → (B, h·h, E).</summary>
    public Tensor Forward(Tensor query, Tensor keys, Tensor values, int grid, int outGrid)
    {
        long b = query.shape[0], e = embed, hd = embed / heads, h = outGrid, k = grid / outGrid, v = h * h;
        var q = nn.functional.linear(query, in_proj_weight.narrow(0, 0, e), in_proj_bias.narrow(0, 0, e)); // (B, V, E)
        q = q.view(b * v, 1, heads, hd).transpose(1, 2); // (B·V, H, 1, hd)
        var kk = Windows(nn.functional.linear(keys, in_proj_weight.narrow(0, e, e), in_proj_bias.narrow(0, e, e)), b, h, k, hd); // (B·V, H, K·K, hd)
        var vv = Windows(nn.functional.linear(values, in_proj_weight.narrow(0, 2 * e, e), in_proj_bias.narrow(0, 2 * e, e)), b, h, k, hd);
        var o = nn.functional.scaled_dot_product_attention(q, kk, vv); // (B·V, H, 1, hd)
        o = o.transpose(1, 2).reshape(b, v, e); // (B, V, E), heads concatenated as in nn.MultiheadAttention
        return out_proj.call(o);
    }

    /// <summary>(B, G·G, E) → (B·h·h, H, K·K, hd): windows row-major, tokens row-major inside a window.</summary>
    private Tensor Windows(Tensor x, long b, long h, long k, long hd) =>
        x.view(b, h, k, h, k, heads, hd)         // (B, i, a, j, c, H, hd): token (i·K + a, j·K + c)
         .permute(0, 1, 3, 5, 2, 4, 6)          // (B, i, j, H, a, c, hd)
         .reshape(b * h * h, heads, k * k, hd); // (B·V, H, K·K, hd)
}

/// <summary>
/// QueCC (PAPER.md §2): x ← x + text_projection(t) (quecc only); q ← q_downsample(q_proj(x)) on the G×G grid;
/// k, v ← k_proj, v_proj of the multi-level features; each of the h×h queries attends to its own K×K window.
/// </summary>
public sealed class QueccCompressor : VisionTokenCompressor
{
    private readonly Sequential? text_projection;
    private readonly Sequential q_proj;
    private readonly Conv2d q_downsample;
    private readonly Sequential k_proj;
    private readonly Sequential v_proj;
    private readonly RegionAttention clip_attn;

    public QueccCompressor(ProjectorConfig config, bool useText, Device? device = null) : base(useText ? "quecc" : "quecc_noquery", config)
    {
        int w = config.Width;
        if (useText)
            text_projection = nn.Sequential(
                ("0", nn.Linear(config.TextSize, w, device: device)),
                ("1", nn.LayerNorm([w], eps: 1e-6, device: device)));
        q_proj = ProjectionMlp(w, w, device);
        q_downsample = nn.Conv2d(w, w, config.Kernel, stride: config.StrideOrKernel, groups: w, bias: true, device: device);
        k_proj = ProjectionMlp(config.MultiLevelSize, w, device);
        v_proj = ProjectionMlp(config.MultiLevelSize, w, device);
        clip_attn = new RegionAttention(w, config.NumHeads, device);
        RegisterComponents();
    }

    public override Tensor Forward(Tensor imageFeatures, Tensor? imageFeaturesMulti = null, Tensor? textFeatures = null)
    {
        CheckInputs(imageFeatures, imageFeaturesMulti, textFeatures);
        var x = imageFeatures; // (B, N, C)
        if (text_projection is not null)
            x = x.Plus(text_projection.call(textFeatures!)); // (B, N, C) + (B, 1, C): one text vector per image, added to every token
        var q = ToGrid(q_proj.call(x), config.InputGrid); // (B, C, G, G)
        q = FromGrid(Downsample(q)); // (B, h·h, C)
        var k = k_proj.call(imageFeaturesMulti!); // (B, N, C)
        var v = v_proj.call(imageFeaturesMulti!); // (B, N, C)
        return clip_attn.Forward(q, k, v, config.InputGrid, config.OutputGrid); // (B, h·h, C)
    }

    /// <summary>q_downsample: (B, C, G, G) → (B, C, h, h).</summary>
    private Tensor Downsample(Tensor q)
    {
        if (config.Kernel != config.StrideOrKernel)
            return q_downsample.call(q);
        // k = s (the reference setting): patches do not overlap, so the depthwise conv is a per-channel weighted
        // sum over each k×k patch. libtorch's grouped-conv kernel is several times slower here, mostly in backward.
        long b = q.shape[0], c = q.shape[1], h = config.OutputGrid, k = config.Kernel;
        var patches = q.view(b, c, h, k, h, k); // (B, C, i, a, j, c'): pixel (i·k + a, j·k + c')
        var w = q_downsample.weight!.view(1, c, 1, k, 1, k);
        return (patches * w).sum([3, 5]).Plus(q_downsample.bias!.view(1, c, 1, 1)); // (B, C, h, h)
    }
}

/// <summary>
/// TokenPacker-style region-to-point attention: the query is the single-level feature map bilinearly
/// interpolated (align_corners = false, no antialias, as TokenPacker's F.interpolate) down to the h×h grid,
/// then q_proj (keys 0, 2, 3 like QueCC's); keys and values as QueCC. No text, no conv.
/// </summary>
public sealed class TokenPackerCompressor : VisionTokenCompressor
{
    private readonly Sequential q_proj;
    private readonly Sequential k_proj;
    private readonly Sequential v_proj;
    private readonly RegionAttention clip_attn;

    public TokenPackerCompressor(ProjectorConfig config, Device? device = null) : base("tokenpacker", config)
    {
        int w = config.Width;
        q_proj = ProjectionMlp(w, w, device);
        k_proj = ProjectionMlp(config.MultiLevelSize, w, device);
        v_proj = ProjectionMlp(config.MultiLevelSize, w, device);
        clip_attn = new RegionAttention(w, config.NumHeads, device);
        RegisterComponents();
    }

    public override Tensor Forward(Tensor imageFeatures, Tensor? imageFeaturesMulti = null, Tensor? textFeatures = null)
    {
        CheckInputs(imageFeatures, imageFeaturesMulti, textFeatures);
        long h = config.OutputGrid;
        var q = nn.functional.interpolate(ToGrid(imageFeatures, config.InputGrid), size: [h, h],
            mode: InterpolationMode.Bilinear, align_corners: false); // (B, C, h, h)
        q = q_proj.call(FromGrid(q)); // (B, h·h, C)
        var k = k_proj.call(imageFeaturesMulti!); // (B, N, C)
        var v = v_proj.call(imageFeaturesMulti!); // (B, N, C)
        return clip_attn.Forward(q, k, v, config.InputGrid, config.OutputGrid);
    }
}

/// <summary>Average of each K×K window of the single-level features (M3-style pooling); no parameters.</summary>
public sealed class AvgPoolCompressor : VisionTokenCompressor
{
    public AvgPoolCompressor(ProjectorConfig config) : base("avgpool", config) { }

    public override Tensor Forward(Tensor imageFeatures, Tensor? imageFeaturesMulti = null, Tensor? textFeatures = null)
    {
        CheckInputs(imageFeatures, imageFeaturesMulti, textFeatures);
        long k = config.WindowSide;
        return FromGrid(nn.functional.avg_pool2d(ToGrid(imageFeatures, config.InputGrid), [k, k], [k, k])); // (B, h·h, C)
    }
}

/// <summary>No compression: every input token reaches the projector.</summary>
public sealed class IdentityCompressor : VisionTokenCompressor
{
    public IdentityCompressor(ProjectorConfig config) : base("none", config) { }

    public override Tensor Forward(Tensor imageFeatures, Tensor? imageFeaturesMulti = null, Tensor? textFeatures = null)
    {
        CheckInputs(imageFeatures, imageFeaturesMulti, textFeatures);
        return imageFeatures.alias();
    }
}
