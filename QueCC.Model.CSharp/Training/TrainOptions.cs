namespace QueCC.Model.Training;

/// <summary>The two LLaVA-1.5 stages: <c>pretrain</c> trains the projector (with its compressor) only; <c>finetune</c> the projector and the LLM. The vision tower is frozen in both.</summary>
public enum TrainStage { Pretrain, Finetune }

/// <summary>
/// One training run. Unset values take the reference recipe where it applies (PAPER.md §3): lr 1e-3 (pretrain) / 2e-5
/// (finetune), weight decay 0, warmup ratio 0.03, cosine schedule, 1 epoch, max length 2048, grouping by length in finetune.
/// Batch defaults suit a CPU: 8 per micro-batch × 1 accumulation step (the reference's 256 / 128 are global batches
/// over 8 GPUs; set <see cref="BatchSize"/> × <see cref="GradAccum"/> to reproduce them).
/// </summary>
public sealed record TrainOptions
{
    /// <summary>A model folder as written by Commands.LlavaEntryPoints.InitModel or LlavaCheckpoint.Save (config.json, weights, tokenizer, vision_tower/).</summary>
    public string ModelDir { get; init; } = "";
    /// <summary>Vision tower folder when it is not the model folder's vision_tower/.</summary>
    public string? VisionTowerDir { get; init; }
    /// <summary>"pretrain" or "finetune".</summary>
    public string Stage { get; init; } = "pretrain";
    /// <summary>LLaVA conversation JSON.</summary>
    public string DataJson { get; init; } = "";
    /// <summary>Folder the records' image paths are relative to; null = the folder of <see cref="DataJson"/>.</summary>
    public string? ImagesDir { get; init; }
    public string OutDir { get; init; } = "";
    /// <summary>Optimizer steps to run; null = <see cref="Epochs"/> × steps per epoch.</summary>
    public int? MaxSteps { get; init; }
    public int Epochs { get; init; } = 1;
    /// <summary>Samples per micro-batch (one forward/backward).</summary>
    public int BatchSize { get; init; } = 8;
    /// <summary>Micro-batches per optimizer step.</summary>
    public int GradAccum { get; init; } = 1;
    /// <summary>Peak learning rate; null = 1e-3 for pretrain, 2e-5 for finetune.</summary>
    public double? Lr { get; init; }
    public double WarmupRatio { get; init; } = 0.03;
    /// <summary>AdamW decoupled weight decay, applied to matrices/embeddings (tensors with ≥ 2 dims), not to biases and norm weights.</summary>
    public double WeightDecay { get; init; }
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.999;
    public double Eps { get; init; } = 1e-8;
    /// <summary>Global gradient-norm clip; 0 = no clipping (the norm is still logged).</summary>
    public double MaxGradNorm { get; init; } = 1.0;
    /// <summary>Checkpoint every this many optimizer steps; 0 = none (only the final model).</summary>
    public int SaveEvery { get; init; } = 100;
    public int Seed { get; init; } = 42;
    /// <summary>auto | cpu | cuda | cuda:N.</summary>
    public string Device { get; init; } = "auto";
    /// <summary>
    /// auto | fp32 | bf16. auto = bf16 on CUDA (the reference trains with --bf16), fp32 on CPU. bf16 is mixed precision the
    /// way DeepSpeed's bf16 mode (the reference's launcher) does it: the model's weights and activations in bfloat16,
    /// float32 master weights and AdamW moments, float32 loss, gradient norm and clipping.
    /// </summary>
    public string Precision { get; init; } = "auto";
    /// <summary>Continue from the newest complete checkpoint under OutDir/checkpoints (a fresh start when there is none).</summary>
    public bool Resume { get; init; }
    /// <summary>Stop at the first malformed record instead of skipping it.</summary>
    public bool Strict { get; init; }
    /// <summary>Stage-1 artefact to start from: mm_projector.safetensors with model.mm_projector.* or mm_projector.* keys.</summary>
    public string? PretrainedProjector { get; init; }
    /// <summary>Longest sequence the LLM sees, visual tokens included; longer samples are cut at the end.</summary>
    public int MaxLength { get; init; } = 2048;
    /// <summary>Length-grouped batches (HF LengthGroupedSampler); null = on for finetune, off for pretrain, as the reference.</summary>
    public bool? GroupByLength { get; init; }
    /// <summary>Non-finite losses in a row that stop the run.</summary>
    public int MaxConsecutiveNonFinite { get; init; } = 10;
    /// <summary>
    /// Memory (MiB) for keeping the frozen tower's features of each training image after its first visit
    /// (<see cref="Data.TowerFeatureCache"/>); 0 encodes every image at every visit, as the reference does.
    /// </summary>
    public int FeatureCacheMb { get; init; } = 2048;
    /// <summary>Write TensorBoard event files under OutDir/tensorboard.</summary>
    public bool TensorBoard { get; init; } = true;
    /// <summary>For tests and drills: end the process's work after this many optimizer steps (counted from step 0) without
    /// saving anything beyond the regular checkpoints, as if it had been killed there.</summary>
    public int? StopAfterSteps { get; init; }
}

/// <summary>Reported after every optimizer step (the CLI draws its progress bar from it).</summary>
public sealed record TrainProgress(int Step, int TotalSteps, double Epoch, double Loss, double Lr, double GradNorm,
                                   double SamplesPerSecond, TimeSpan Eta, int NonFiniteSteps);

/// <summary>What a run did. <see cref="FinalDir"/> is null when the run stopped early (<see cref="TrainOptions.StopAfterSteps"/>).</summary>
public sealed record TrainResult(string OutDir, string? FinalDir, string? ProjectorFile, string MetricsPath, int Steps, int TotalSteps,
                                 int? ResumedFromStep, double FirstLoss, double LastLoss, int SkippedRecords, int NonFiniteSteps,
                                 int UsableRecords, double TrainSeconds, IReadOnlyList<double> StepSeconds, bool Stopped);
