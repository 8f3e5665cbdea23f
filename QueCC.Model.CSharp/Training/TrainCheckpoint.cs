using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using QueCC.Model.Checkpoints;
using QueCC.Model.Data;
using static TorchSharp.torch;

namespace QueCC.Model.Training;

/// <summary>trainer_state.json: written last into a checkpoint, so its presence marks the checkpoint complete.</summary>
public sealed record TrainerState
{
    [JsonPropertyName("format")] public int Format { get; init; } = 1;
    /// <summary>Optimizer steps completed.</summary>
    [JsonPropertyName("step")] public int Step { get; init; }
    [JsonPropertyName("total_steps")] public int TotalSteps { get; init; }
    [JsonPropertyName("epoch")] public double Epoch { get; init; }
    [JsonPropertyName("stage")] public string Stage { get; init; } = "";
    [JsonPropertyName("seed")] public int Seed { get; init; }
    [JsonPropertyName("batch_size")] public int BatchSize { get; init; }
    [JsonPropertyName("grad_accum")] public int GradAccum { get; init; }
    [JsonPropertyName("group_by_length")] public bool GroupByLength { get; init; }
    [JsonPropertyName("usable_records")] public int UsableRecords { get; init; }
    /// <summary>Samples consumed since step 0; the data order of every epoch is a function of (seed, epoch), so this is the whole data-order position.</summary>
    [JsonPropertyName("samples_seen")] public long SamplesSeen { get; init; }
    /// <summary>AdamW's own step count (its bias corrections): the optimizer steps actually applied, i.e. <see cref="Step"/> minus skipped non-finite ones.</summary>
    [JsonPropertyName("optimizer_step")] public long OptimizerStep { get; init; }
    [JsonPropertyName("non_finite_steps")] public int NonFiniteSteps { get; init; }
    [JsonPropertyName("non_finite_in_a_row")] public int NonFiniteInARow { get; init; }
    [JsonPropertyName("first_loss")] public double? FirstLoss { get; init; }
    /// <summary>"fp32" or "bf16" (null in checkpoints from before bf16 existed: fp32). The saved weights are float32 either way (bf16 runs save their master weights).</summary>
    [JsonPropertyName("precision")] public string? Precision { get; init; }
    /// <summary>Names of the trainable tensors stored in model.safetensors.</summary>
    [JsonPropertyName("trainable")] public string[] Trainable { get; init; } = Array.Empty<string>();
}

/// <summary>
/// Checkpoints under <c>OUT/checkpoints/step-N/</c>: model.safetensors (the trainable tensors only — frozen ones never
/// change and are rebuilt from the model folder and the pretrained projector), optimizer.safetensors (AdamW moments;
/// its step count is trainer_state.json's optimizer_step), rng.safetensors (torch's default generator), trainer_state.json last.
/// Written into <c>step-N.tmp-XXXX/</c>, each file flushed to disk, then renamed to <c>step-N</c>: a crash at any
/// instant leaves either no <c>step-N</c> or a complete one.
/// </summary>
public static class TrainCheckpoint
{
    public const string Folder = "checkpoints";
    public const string StateFile = "trainer_state.json";
    public const string ModelFile = "model.safetensors";
    public const string OptimizerFile = "optimizer.safetensors";
    public const string RngFile = "rng.safetensors";
    private static readonly Regex StepDir = new(@"^step-(\d+)$", RegexOptions.Compiled);

    public static string Save(string outDir, TrainerState state, IEnumerable<KeyValuePair<string, Tensor>> trainable, AdamW optimizer, Tensor rngState)
    {
        var root = Path.Combine(outDir, Folder);
        Directory.CreateDirectory(root);
        var final = Path.Combine(root, $"step-{state.Step}");
        var tmp = Path.Combine(root, $"step-{state.Step}.tmp-{Guid.NewGuid().ToString("N")[..8]}");
        Directory.CreateDirectory(tmp);
        try
        {
            Safetensors.Write(Path.Combine(tmp, ModelFile), trainable);
            Safetensors.Write(Path.Combine(tmp, OptimizerFile), optimizer.StateTensors());
            Safetensors.Write(Path.Combine(tmp, RngFile), new[] { new KeyValuePair<string, Tensor>("torch_rng_state", rngState) });
            AtomicFile.WriteAllText(Path.Combine(tmp, StateFile), JsonSerializer.Serialize(state, new JsonSerializerOptions { WriteIndented = true }));
            // A step-N left by an earlier run that died after it (and is being redone) is replaced.
            if (Directory.Exists(final)) Directory.Delete(final, true);
            Directory.Move(tmp, final);
        }
        catch
        {
            try { Directory.Delete(tmp, true); } catch (IOException) { }
            throw;
        }
        return final;
    }

    /// <summary>The newest complete checkpoint (a step-N folder with trainer_state.json); tmp folders and incomplete ones are ignored.</summary>
    public static string? FindLatest(string outDir)
    {
        var root = Path.Combine(outDir, Folder);
        if (!Directory.Exists(root)) return null;
        return Directory.EnumerateDirectories(root)
            .Select(d => (Dir: d, M: StepDir.Match(Path.GetFileName(d))))
            .Where(x => x.M.Success && File.Exists(Path.Combine(x.Dir, StateFile)))
            .OrderByDescending(x => long.Parse(x.M.Groups[1].Value))
            .Select(x => x.Dir).FirstOrDefault();
    }

    public static TrainerState ReadState(string checkpointDir)
    {
        var path = Path.Combine(checkpointDir, StateFile);
        try { return JsonSerializer.Deserialize<TrainerState>(File.ReadAllText(path)) ?? throw new UserInputException($"{path}: empty trainer state"); }
        catch (JsonException e) { throw new UserInputException($"{path}: not a valid trainer_state.json ({e.Message})"); }
    }
}
