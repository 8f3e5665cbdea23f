using QueCC.Model.Decoder;
using TorchSharp;
using static TorchSharp.torch;

namespace QueCC.Model.Generation;

/// <summary>Decoding settings. Temperature 0 is greedy; otherwise softmax(logits / T) restricted to the top-p nucleus, drawn from a generator seeded with <see cref="Seed"/>.</summary>
public sealed record GenerationOptions
{
    public int MaxNewTokens { get; init; } = 64;
    public double Temperature { get; init; }
    public double TopP { get; init; } = 1.0;
    public long Seed { get; init; }
    /// <summary>Generation ends when one of these is produced; it is not part of the returned tokens.</summary>
    public IReadOnlyCollection<int> StopTokenIds { get; init; } = Array.Empty<int>();
    /// <summary>False recomputes the whole sequence each step (slow; the reference for the cached path).</summary>
    public bool UseKvCache { get; init; } = true;

    public GenerationOptions Validate()
    {
        if (MaxNewTokens < 0) throw new UserInputException($"max new tokens {MaxNewTokens}: expected ≥ 0");
        if (Temperature < 0 || double.IsNaN(Temperature)) throw new UserInputException($"temperature {Temperature}: expected ≥ 0 (0 = greedy)");
        if (!(TopP > 0 && TopP <= 1)) throw new UserInputException($"top-p {TopP}: expected in (0, 1]");
        return this;
    }
}

public enum StopReason { StopToken, MaxNewTokens }

public sealed record GenerationResult(IReadOnlyList<int> Tokens, StopReason Reason);

public static class TextGenerator
{
    /// <summary>Continues a single sequence given as token ids.</summary>
    public static GenerationResult Generate(CausalLM model, IReadOnlyList<int> promptIds, GenerationOptions options)
    {
        if (promptIds.Count == 0) throw new UserInputException("the prompt has no tokens");
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var ids = torch.tensor(promptIds.Select(i => (long)i).ToArray(), device: model.parameters().First().device).unsqueeze(0); // (1, T)
        return GenerateFromEmbeds(model, model.EmbedTokens(ids), options);
    }

    /// <summary>Continues a single sequence given as input embeddings (1, T, C), e.g. text with visual tokens spliced in.</summary>
    public static GenerationResult GenerateFromEmbeds(CausalLM model, Tensor promptEmbeds, GenerationOptions options)
    {
        options.Validate();
        if (promptEmbeds.dim() != 3 || promptEmbeds.shape[0] != 1)
            throw new ArgumentException($"prompt embeddings have shape [{string.Join(", ", promptEmbeds.shape)}]; expected [1, T, C] (one sequence)");
        using var outer = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var gen = new torch.Generator((ulong)options.Seed, promptEmbeds.device);
        var tokens = new List<int>();
        using var cache = options.UseKvCache ? model.NewCache() : null;
        var embeds = promptEmbeds;
        Tensor? next = null; // (1, 1) id of the last sampled token
        for (int step = 0; step < options.MaxNewTokens; step++)
        {
            using var scope = torch.NewDisposeScope();
            Tensor logits;
            if (cache is null)
            {
                if (next is not null) embeds = torch.cat(new[] { embeds, model.EmbedTokens(next) }, 1).MoveToOuterDisposeScope();
                logits = model.Forward(inputsEmbeds: embeds, logitsToKeep: 1).Logits;  // (1, 1, V)
            }
            else
            {
                logits = step == 0
                    ? model.Forward(inputsEmbeds: promptEmbeds, cache: cache, logitsToKeep: 1).Logits
                    : model.Forward(inputIds: next, cache: cache).Logits;
            }
            int token = Sample(logits[0, -1], options.Temperature, options.TopP, gen);
            if (options.StopTokenIds.Contains(token)) return new GenerationResult(tokens, StopReason.StopToken);
            tokens.Add(token);
            next = torch.tensor(new long[] { token }, device: promptEmbeds.device).unsqueeze(0).MoveToOuterDisposeScope();
        }
        return new GenerationResult(tokens, StopReason.MaxNewTokens);
    }

    /// <summary>
    /// Continues B sequences at once: <paramref name="promptEmbeds"/> (B, T, C) left-padded, <paramref name="attentionMask"/>
    /// (B, T) with 0 on the padding. Positions come from the mask (HF's cumsum − 1), so a padded row sees the same
    /// positions and keys as alone; one KV cache holds all rows; a row that meets a stop token is finished while the
    /// others go on (its later tokens are computed and dropped). Greedy answers equal <see cref="GenerateFromEmbeds"/>'s
    /// row by row; with sampling one generator serves the rows in turn, so draws differ from batch-of-one runs.
    /// </summary>
    public static GenerationResult[] GenerateBatchFromEmbeds(CausalLM model, Tensor promptEmbeds, Tensor attentionMask, GenerationOptions options)
    {
        options.Validate();
        if (promptEmbeds.dim() != 3)
            throw new ArgumentException($"prompt embeddings have shape [{string.Join(", ", promptEmbeds.shape)}]; expected [B, T, C]");
        long b = promptEmbeds.shape[0], t = promptEmbeds.shape[1];
        if (attentionMask.dim() != 2 || attentionMask.shape[0] != b || attentionMask.shape[1] != t)
            throw new ArgumentException($"attention mask has shape [{string.Join(", ", attentionMask.shape)}]; expected [{b}, {t}]");
        using var outer = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var dev = promptEmbeds.device;
        var gen = new torch.Generator((ulong)options.Seed, dev);
        var tokens = Enumerable.Range(0, (int)b).Select(_ => new List<int>()).ToArray();
        var reasons = Enumerable.Repeat(StopReason.MaxNewTokens, (int)b).ToArray();
        var done = new bool[b];
        using var cache = model.NewCache();
        var mask = attentionMask.to_type(ScalarType.Int64);
        Tensor? next = null; // (B, 1) the token each row feeds next
        for (int step = 0; step < options.MaxNewTokens; step++)
        {
            using var scope = torch.NewDisposeScope();
            var logits = step == 0
                ? model.Forward(inputsEmbeds: promptEmbeds, attentionMask: mask, cache: cache, logitsToKeep: 1).Logits // (B, 1, V)
                : model.Forward(inputIds: next, attentionMask: mask, cache: cache).Logits;
            var feed = new long[b];
            for (int i = 0; i < b; i++)
            {
                if (done[i]) continue;
                int token = Sample(logits[i, -1], options.Temperature, options.TopP, gen);
                if (options.StopTokenIds.Contains(token)) { done[i] = true; reasons[i] = StopReason.StopToken; continue; }
                tokens[i].Add(token);
                feed[i] = token;
            }
            if (done.All(d => d)) break;
            next = torch.tensor(feed, device: dev).unsqueeze(1).MoveToOuterDisposeScope();                                        // (B, 1)
            mask = torch.cat(new[] { mask, torch.ones(b, 1, dtype: ScalarType.Int64, device: dev) }, 1).MoveToOuterDisposeScope(); // (B, P+1)
        }
        return tokens.Select((ts, i) => new GenerationResult(ts, reasons[i])).ToArray();
    }

    /// <summary>
    /// One token from (V) logits: argmax at temperature 0; otherwise HF's TopPLogitsWarper (keep the most probable
    /// tokens until their mass reaches top-p, at least one) then a multinomial draw.
    /// </summary>
    public static int Sample(Tensor logits, double temperature, double topP, torch.Generator? generator)
    {
        using var scope = torch.NewDisposeScope();
        var l = logits.to_type(ScalarType.Float32);
        if (temperature == 0) return (int)l.argmax().ToInt64();
        var probs = torch.softmax(l / temperature, 0);                   // (V)
        var (sorted, order) = probs.sort(descending: true);
        var before = sorted.cumsum(0) - sorted;                            // mass strictly above each token
        var drop = before.ge(topP);
        drop[0] = torch.tensor(false);
        var kept = sorted.masked_fill(drop, 0);
        var pick = torch.multinomial(kept / kept.sum(), 1, false, generator); // index into the sorted order
        return (int)order[pick[0]].ToInt64();
    }
}
