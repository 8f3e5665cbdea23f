using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;

namespace QueCC.Model.Compression;

/// <summary>A projector / compressor configuration a user got wrong; the message names the source, the key, the value and what is allowed.</summary>
public sealed class ProjectorConfigException(string message) : UserInputException(message);

/// <summary>The vision-token compressor in front of the projector MLP (<c>mm_vision_token_compression_type</c>).</summary>
public enum CompressionType
{
    /// <summary>Pass-through: all input tokens reach the projector.</summary>
    None,
    /// <summary>QueCC: text-conditioned query, depthwise strided conv, region cross-attention (PAPER.md §2).</summary>
    Quecc,
    /// <summary>QueCC without the text embedding (no <c>text_projection</c>).</summary>
    QueccNoQuery,
    /// <summary>TokenPacker-style: bilinear-downsampled single-level query, same region cross-attention.</summary>
    TokenPacker,
    /// <summary>2-D average pooling to the output grid (M3-style), no parameters.</summary>
    AvgPool,
}

/// <summary>
/// The projector part of a LLaVA-style <c>config.json</c>. Unknown keys (the rest of a full LLaVA config) are ignored.
/// Geometry: the input tokens form a G×G grid (token index = row·G + col). The depthwise conv of QueCC
/// (kernel k, stride s, no padding) maps it to an h×h grid with h = (G − k)/s + 1, and each output token
/// attends to one K×K window with K = G/h. Both divisions must be exact so that the windows tile the grid
/// with no token left out or shared; for k = s this is "s divides G". TokenPacker and avgpool have no conv
/// but use the same k, s to define h (so one config key sets the token budget for every method).
/// </summary>
public sealed record ProjectorConfig
{
    public static readonly string[] ProjectorTypes = ["linear", "mlpNx_gelu (e.g. mlp2x_gelu, N ≤ 64)", "identity"];

    /// <summary>Deepest mlpNx_gelu accepted (LLaVA uses 2); a typo such as mlp200000x_gelu would otherwise build 200000 layers.</summary>
    public const int MaxMlpDepth = 64;
    public static readonly string[] CompressionTypes = ["quecc", "quecc_noquery", "tokenpacker", "avgpool", "none"];

    [JsonPropertyName("mm_projector_type")] public string ProjectorType { get; init; } = "linear";
    /// <summary>Vision feature width (1024 for CLIP ViT-L/14).</summary>
    [JsonPropertyName("mm_hidden_size")] public int? VisionWidth { get; init; }
    /// <summary>LLM hidden size: the width of the visual tokens the projector emits.</summary>
    [JsonPropertyName("hidden_size")] public int? LlmWidth { get; init; }
    [JsonPropertyName("mm_vision_token_compression_type")] public string? CompressionTypeName { get; init; }
    /// <summary>Number of vision tokens entering the compressor (576 for CLIP-336); a perfect square.</summary>
    [JsonPropertyName("mm_vision_output_token_count")] public int? InputTokenCount { get; init; }
    [JsonPropertyName("mm_vision_output_text_embedding_size")] public int? TextEmbeddingSize { get; init; }
    [JsonPropertyName("mm_vision_token_compression_kernel_size")] public int? KernelSize { get; init; }
    /// <summary>Conv stride; absent means equal to the kernel size (non-overlapping windows, as in the reference scripts).</summary>
    [JsonPropertyName("mm_vision_token_compression_stride")] public int? Stride { get; init; }
    /// <summary>Width of the concatenated multi-level features; absent means 4 × mm_hidden_size (4 CLIP layers).</summary>
    [JsonPropertyName("mm_vision_multi_level_size")] public int? MultiLevelSizeRaw { get; init; }
    [JsonPropertyName("mm_vision_token_compression_num_heads")] public int? NumHeadsRaw { get; init; }

    /// <summary>Where the config came from, for error messages.</summary>
    [JsonIgnore] public string Source { get; init; } = "<config>";

    [JsonIgnore] public int Width => VisionWidth ?? 0;
    [JsonIgnore] public int LlmHidden => LlmWidth ?? 0;
    [JsonIgnore] public int MultiLevelSize => MultiLevelSizeRaw ?? 4 * Width;
    [JsonIgnore] public int NumHeads => NumHeadsRaw ?? 8;
    [JsonIgnore] public int TextSize => TextEmbeddingSize ?? 0;
    [JsonIgnore] public int Kernel => KernelSize ?? 1;
    [JsonIgnore] public int StrideOrKernel => Stride ?? Kernel;

    [JsonIgnore]
    public CompressionType Compression => (CompressionTypeName ?? "none") switch
    {
        "none" => CompressionType.None,
        "quecc" => CompressionType.Quecc,
        "quecc_noquery" => CompressionType.QueccNoQuery,
        "tokenpacker" => CompressionType.TokenPacker,
        "avgpool" => CompressionType.AvgPool,
        var other => throw Error("mm_vision_token_compression_type", $"'{other}'", string.Join(", ", CompressionTypes)),
    };

    /// <summary>Side G of the input token grid.</summary>
    [JsonIgnore] public int InputGrid => (int)Math.Round(Math.Sqrt(Math.Max(InputTokenCount ?? 0, 0)));

    /// <summary>Side h of the output token grid (h = G for <c>none</c>).</summary>
    [JsonIgnore] public int OutputGrid => Compression == CompressionType.None ? InputGrid : (InputGrid - Kernel) / StrideOrKernel + 1;

    /// <summary>Side K of each attention / pooling window, K = G / h.</summary>
    [JsonIgnore] public int WindowSide => InputGrid / OutputGrid;

    /// <summary>V: visual tokens handed to the LLM per image.</summary>
    [JsonIgnore] public int OutputTokenCount => Compression == CompressionType.None && InputTokenCount is null ? 0 : OutputGrid * OutputGrid;

    /// <summary>Number of Linear layers of an <c>mlpNx_gelu</c> projector (1 for linear, 0 for identity).</summary>
    [JsonIgnore]
    public int MlpDepth
    {
        get
        {
            if (ProjectorType == "linear") return 1;
            if (ProjectorType == "identity") return 0;
            var m = Regex.Match(ProjectorType, @"^mlp(\d+)x_gelu$");
            if (m.Success && int.TryParse(m.Groups[1].Value, out var n) && n >= 1 && n <= MaxMlpDepth) return n;
            throw Error("mm_projector_type", $"'{ProjectorType}'", string.Join(", ", ProjectorTypes));
        }
    }

    /// <summary>True where the compressor reads the multi-level features.</summary>
    [JsonIgnore] public bool NeedsMultiLevel => Compression is CompressionType.Quecc or CompressionType.QueccNoQuery or CompressionType.TokenPacker;

    /// <summary>True where the compressor reads the text embedding of the user query.</summary>
    [JsonIgnore] public bool NeedsText => Compression == CompressionType.Quecc;

    /// <summary>Reads and validates a config.json.</summary>
    public static ProjectorConfig Load(string path)
    {
        if (!File.Exists(path)) throw new ProjectorConfigException($"{path}: projector config not found");
        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Parses and validates config JSON; <paramref name="source"/> names it in errors.</summary>
    public static ProjectorConfig Parse(string json, string source = "<config>")
    {
        ProjectorConfig? config;
        JsonElement root;
        try { root = Runtime.JsonInput.ParseRoot(json, source); }
        catch (UserInputException e) { throw new ProjectorConfigException(e.Message); }
        if (root.ValueKind == JsonValueKind.Null) throw new ProjectorConfigException($"{source}: projector config is JSON null; expected an object");
        if (root.ValueKind != JsonValueKind.Object) throw new ProjectorConfigException($"{source}: projector config is a JSON {root.ValueKind.ToString().ToLowerInvariant()}; expected an object");
        try
        {
            config = root.Deserialize<ProjectorConfig>(Runtime.JsonInput.StrictOptions);
        }
        catch (JsonException e)
        {
            throw new ProjectorConfigException("invalid projector config JSON: " + Runtime.JsonInput.TypeError(root, source, "projector config", e).Message);
        }
        if (config is null) throw new ProjectorConfigException($"{source}: projector config is JSON null; expected an object");
        config = config with { Source = source };
        config.Validate();
        return config;
    }

    private ProjectorConfigException Error(string key, string value, string allowed) =>
        new($"{Source}: {key} = {value} is invalid; expected {allowed}");

    /// <summary>Throws <see cref="ProjectorConfigException"/> naming the first bad key.</summary>
    public ProjectorConfig Validate()
    {
        if (VisionWidth is not > 0) throw Error("mm_hidden_size", VisionWidth?.ToString() ?? "(absent)", "a positive integer (vision feature width)");
        if (LlmWidth is not > 0) throw Error("hidden_size", LlmWidth?.ToString() ?? "(absent)", "a positive integer (LLM width)");
        if (VisionWidth > MaxWidth) throw Error("mm_hidden_size", VisionWidth.ToString()!, $"a width of at most {MaxWidth}");
        if (LlmWidth > MaxWidth) throw Error("hidden_size", LlmWidth.ToString()!, $"a width of at most {MaxWidth}");
        if (MultiLevelSizeRaw > MaxWidth || (long)MultiLevelSize > MaxWidth) throw Error("mm_vision_multi_level_size", MultiLevelSize.ToString(), $"a width of at most {MaxWidth}");
        if (TextEmbeddingSize > MaxWidth) throw Error("mm_vision_output_text_embedding_size", TextEmbeddingSize.ToString()!, $"a width of at most {MaxWidth}");
        var depth = MlpDepth;
        if (depth == 0 && Width != LlmHidden)
            throw Error("mm_projector_type", "'identity'", $"a projector that maps mm_hidden_size {Width} to hidden_size {LlmHidden} (identity needs them equal)");
        var kind = Compression;
        if (kind == CompressionType.None && InputTokenCount is null) return this;

        if (InputTokenCount is not > 0) throw Error("mm_vision_output_token_count", InputTokenCount?.ToString() ?? "(absent)", "the positive number of vision tokens entering the compressor, a perfect square such as 576");
        var g = InputGrid;
        if ((long)g * g != InputTokenCount) throw Error("mm_vision_output_token_count", InputTokenCount.ToString()!, $"a perfect square (e.g. 576 = 24×24); nearest are {(long)g * g} and {(g + 1L) * (g + 1)}");
        if (kind == CompressionType.None) return this;

        if (KernelSize is null) throw Error("mm_vision_token_compression_kernel_size", "(absent)", $"an integer in [1, {g}]");
        if (KernelSize < 1 || KernelSize > g) throw Error("mm_vision_token_compression_kernel_size", KernelSize.ToString()!, $"an integer in [1, {g}] (the token grid is {g}×{g})");
        if (StrideOrKernel < 1) throw Error("mm_vision_token_compression_stride", StrideOrKernel.ToString(), "a positive integer");
        if ((g - Kernel) % StrideOrKernel != 0)
            throw Error("mm_vision_token_compression_stride", $"{StrideOrKernel} (kernel {Kernel}, grid {g})",
                $"a stride s with (G − k) divisible by s so that h = (G − k)/s + 1 is an integer; for kernel {Kernel}: s ∈ {{{string.Join(", ", Divisors(g - Kernel))}}}");
        var h = OutputGrid;
        if (g % h != 0)
            throw Error("mm_vision_token_compression_kernel_size", $"{Kernel} (stride {StrideOrKernel}, grid {g} → output grid {h})",
                $"a kernel/stride whose output grid side h divides {g} so the K×K attention windows tile the grid; allowed h: {string.Join(", ", Divisors(g))} (with k = s: k = G/h)");

        if (NeedsMultiLevel)
        {
            if (MultiLevelSize < 1) throw Error("mm_vision_multi_level_size", MultiLevelSize.ToString(), "a positive integer (width of the concatenated multi-level features)");
            if (NumHeads < 1 || Width % NumHeads != 0)
                throw Error("mm_vision_token_compression_num_heads", NumHeads.ToString(), $"a positive divisor of mm_hidden_size {Width}: {string.Join(", ", Divisors(Width))}");
        }
        if (NeedsText && TextEmbeddingSize is not > 0)
            throw Error("mm_vision_output_text_embedding_size", TextEmbeddingSize?.ToString() ?? "(absent)", "the positive width of the text embedding (LLM hidden size of the embedding model) for quecc");
        return this;
    }

    /// <summary>Divisors in increasing order, found up to √n (a config with mm_hidden_size near int.MaxValue must not take seconds).</summary>
    private static IEnumerable<int> Divisors(int n)
    {
        if (n <= 0) return [];
        var small = new List<int>();
        var large = new List<int>();
        for (int d = 1; (long)d * d <= n; d++)
            if (n % d == 0) { small.Add(d); if (d != n / d) large.Add(n / d); }
        large.Reverse();
        return small.Concat(large);
    }

    /// <summary>Largest width accepted for any mm_* size: real towers and LLMs are below 16384.</summary>
    public const int MaxWidth = 1 << 20;

    /// <summary>
    /// An upper estimate of the projector's parameters from the config alone (floating point, so no overflow):
    /// the MLP exactly, the compressor as its largest terms (query MLP, text projection, attention, conv).
    /// </summary>
    public double ParameterEstimate()
    {
        double c = Width, d = LlmHidden, depth = MlpDepth;
        double mlp = depth == 0 ? 0 : c * d + d + (depth - 1) * (d * d + d);
        double compressor = Compression == CompressionType.None || Compression == CompressionType.AvgPool ? 0
            : c * ((double)MultiLevelSize + TextSize + 4.0 * c + (double)Kernel * Kernel + 8);
        return mlp + compressor;
    }

    /// <summary>The config as LLaVA-style JSON (defaults written out), e.g. to ship beside a projector.</summary>
    public string ToJson() => JsonSerializer.Serialize(this with { MultiLevelSizeRaw = MultiLevelSize, NumHeadsRaw = NumHeads },
        new JsonSerializerOptions { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull });
}
