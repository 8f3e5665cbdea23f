using QueCC.Model.Runtime;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using QueCC.Model.Checkpoints;
using QueCC.Model.Data;
using QueCC.Model.Llava;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace QueCC.Model.Training;

/// <summary>
/// The LLaVA-1.5 training loop for both stages. Loss: summed next-token cross-entropy over the supervised tokens of
/// every micro-batch of an optimizer step, divided by the number of those tokens in the whole step — so B×A samples in
/// A accumulation steps give the same gradient as one batch of B·A (a per-token mean over the step).
/// Every optimizer step consumes exactly BatchSize × GradAccum samples; an epoch's incomplete last window is dropped.
/// The models have no dropout and stay in eval mode; with the data order a function of (seed, epoch), a CPU run is
/// bit-reproducible and a resumed run ends with the same weights as an uninterrupted one.
/// </summary>
public static class Trainer
{
    public const string MetricsFile = "metrics.jsonl";
    public const string FinalFolder = "final";
    public const string ProjectorFile = "mm_projector.safetensors";
    public const string SkippedFile = "skipped_records.jsonl";
    private static readonly string[] TokenizerFiles =
        { "vocab.json", "merges.txt", "tokenizer_config.json", "tokenizer.json", "tokenizer.model", "special_tokens_map.json", "added_tokens.json", "generation_config.json" };

    public static TrainStage ParseStage(string stage) => stage.Trim().ToLowerInvariant() switch
    {
        "pretrain" or "stage1" or "1" => TrainStage.Pretrain,
        "finetune" or "stage2" or "2" => TrainStage.Finetune,
        _ => throw new UserInputException($"stage '{stage}': expected pretrain or finetune"),
    };

    /// <summary>Peak learning rate: the option, else the reference's 1e-3 (pretrain) / 2e-5 (finetune).</summary>
    public static double PeakLr(TrainOptions o, TrainStage stage) => o.Lr ?? (stage == TrainStage.Pretrain ? 1e-3 : 2e-5);

    private static void Validate(TrainOptions o)
    {
        if (string.IsNullOrWhiteSpace(o.ModelDir)) throw new UserInputException("model dir: expected a model folder");
        if (string.IsNullOrWhiteSpace(o.DataJson)) throw new UserInputException("data: expected a LLaVA JSON file");
        if (string.IsNullOrWhiteSpace(o.OutDir)) throw new UserInputException("out dir: expected a folder for checkpoints and metrics");
        void Positive(string name, double v) { if (!(v > 0)) throw new UserInputException($"{name} {v}: expected a positive value"); }
        Positive("batch size", o.BatchSize);
        if (o.FeatureCacheMb < 0) throw new UserInputException($"feature cache {o.FeatureCacheMb} MiB: expected 0 (off) or more");
        Positive("grad accum", o.GradAccum);
        Positive("max length", o.MaxLength);
        if (o.MaxSteps is { } ms) Positive("max steps", ms); else Positive("epochs", o.Epochs);
        if (o.Lr is { } lr) Positive("lr", lr);
        if (!(o.WarmupRatio >= 0 && o.WarmupRatio <= 1)) throw new UserInputException($"warmup ratio {o.WarmupRatio}: expected a value in [0, 1]");
        if (!(o.WeightDecay >= 0)) throw new UserInputException($"weight decay {o.WeightDecay}: expected 0 or more");
        if (!(o.MaxGradNorm >= 0)) throw new UserInputException($"max grad norm {o.MaxGradNorm}: expected 0 (off) or more");
        if (o.SaveEvery < 0) throw new UserInputException($"save every {o.SaveEvery}: expected 0 (off) or more steps");
        UsesBf16(o.Precision, torch.CPU);
        if (o.MaxConsecutiveNonFinite < 1) throw new UserInputException($"max consecutive non-finite {o.MaxConsecutiveNonFinite}: expected at least 1");
        // Non-finite hyper-parameters poison every weight at the first step; a huge window is an allocation, not a run.
        void Finite(string name, double v) { if (!double.IsFinite(v)) throw new UserInputException($"{name} {v}: expected a finite number"); }
        if (o.Lr is { } lr2) Finite("lr", lr2);
        Finite("weight decay", o.WeightDecay); Finite("max grad norm", o.MaxGradNorm);
        if (!(o.Beta1 >= 0 && o.Beta1 < 1)) throw new UserInputException($"beta1 {o.Beta1}: expected a value in [0, 1)");
        if (!(o.Beta2 >= 0 && o.Beta2 < 1)) throw new UserInputException($"beta2 {o.Beta2}: expected a value in [0, 1)");
        if (!(o.Eps > 0 && double.IsFinite(o.Eps))) throw new UserInputException($"eps {o.Eps}: expected a positive finite number");
        if ((long)o.BatchSize * o.GradAccum > MaxWindow)
            throw new UserInputException($"batch size {o.BatchSize} × grad accum {o.GradAccum} = {(long)o.BatchSize * o.GradAccum}: expected at most {MaxWindow} samples per optimizer step");
        if (o.MaxLength > MaxSequenceLength) throw new UserInputException($"max length {o.MaxLength}: expected at most {MaxSequenceLength} tokens");
        ParseStage(o.Stage);
    }

    /// <summary>Most samples per optimizer step accepted (the reference's largest global batch is 256).</summary>
    public const int MaxWindow = 1 << 20;
    /// <summary>Longest sequence accepted (LLaVA uses 2048–4096).</summary>
    public const int MaxSequenceLength = 1 << 20;

    /// <summary>Whether a run trains in bf16 mixed precision: <c>auto</c> = on CUDA only, <c>fp32</c> never, <c>bf16</c> always (CPU too: slower there, but it is how the path is tested).</summary>
    public static bool UsesBf16(string precision, Device device) => (precision ?? "").Trim().ToLowerInvariant() switch
    {
        "auto" => device.type == DeviceType.CUDA,
        "fp32" or "float32" => false,
        "bf16" or "bfloat16" => true,
        _ => throw new UserInputException($"precision '{precision}': expected auto, fp32 or bf16"),
    };

    /// <summary>Trainable tensors of a stage under their checkpoint names; everything else gets requires_grad = false.</summary>
    public static List<(string Name, Parameter Param)> Freeze(LlavaModel model, TrainStage stage)
    {
        foreach (var (_, p) in model.VisionTower.named_parameters()) p.requires_grad = false;
        var llm = model.Llm.named_parameters().ToList();
        foreach (var (_, p) in llm) p.requires_grad = stage == TrainStage.Finetune;
        var proj = model.Projector.named_parameters().ToList();
        foreach (var (_, p) in proj) p.requires_grad = true;
        var list = new List<(string, Parameter)>();
        var seen = new HashSet<IntPtr>();
        foreach (var (n, p) in proj) if (seen.Add(p.Handle)) list.Add((LlavaModel.ProjectorPrefix + n, p));
        if (stage == TrainStage.Finetune)
            foreach (var (n, p) in llm) if (seen.Add(p.Handle)) list.Add((n, p));
        return list;
    }

    /// <summary>Loads a stage-1 projector file (keys <c>model.mm_projector.*</c> or <c>mm_projector.*</c>) into the model, strictly.</summary>
    public static void LoadProjector(LlavaModel model, string path)
    {
        using var ckpt = Checkpoint.Open(path);
        var prefix = ckpt.Keys.Any(k => k.StartsWith(LlavaModel.ProjectorPrefix, StringComparison.Ordinal)) ? LlavaModel.ProjectorPrefix
            : ckpt.Keys.Any(k => k.StartsWith("mm_projector.", StringComparison.Ordinal)) ? "mm_projector."
            : throw new UserInputException($"{path}: no projector tensors; expected keys model.mm_projector.* or mm_projector.*");
        StateDictLoader.LoadStrict(model.Projector.state_dict().Select(kv => (prefix + kv.Key, kv.Value)), ckpt, k => !k.StartsWith(prefix, StringComparison.Ordinal));
    }

    /// <summary>
    /// Global L2 norm of the gradients, then, when it exceeds <paramref name="maxNorm"/> (&gt; 0), every gradient scaled by
    /// maxNorm / (norm + 1e-6) — torch.nn.utils.clip_grad_norm_. Returns the norm before clipping; <paramref name="maxNorm"/> ≤ 0
    /// only measures it.
    /// </summary>
    public static double ClipGradNorm(IEnumerable<Parameter> parameters, double maxNorm)
    {
        using var scope = torch.NewDisposeScope();
        var withGrad = parameters.Where(p => p.grad is not null).ToList();
        if (withGrad.Count == 0) return 0;
        // libtorch's own clip_grad_norm_: one native call instead of a norm, a stack and a sync per tensor. A non-finite norm
        // leaves NaN gradients, which the trainer never applies (the step is skipped and the gradients zeroed).
        return torch.nn.utils.clip_grad_norm_(withGrad, maxNorm > 0 ? maxNorm : double.PositiveInfinity);
    }

    /// <summary>
    /// <see cref="ClipGradNorm(IEnumerable{Parameter}, double)"/> over free-standing gradient tensors (the bf16 path's float32
    /// copies), with clip_grad_norm_'s arithmetic: total = ‖(‖g₁‖, …, ‖gₙ‖)‖₂, every g scaled in place by
    /// min(1, maxNorm / (total + 1e-6)). Null entries are skipped. Returns the norm before clipping.
    /// </summary>
    public static double ClipGradients(IReadOnlyList<Tensor?> grads, double maxNorm)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var gs = grads.Where(g => g is not null).Select(g => g!).ToList();
        if (gs.Count == 0) return 0;
        var total = torch.linalg.vector_norm(torch.stack(gs.Select(g => torch.linalg.vector_norm(g)).ToList()));
        if (maxNorm > 0)
        {
            using Scalar tiny = 1e-6, one = 1.0, max = maxNorm; // explicit, see AdamW.Step
            var coef = (total + tiny).reciprocal_().mul_(max).clamp_max(one);
            foreach (var g in gs) g.mul_(coef);
        }
        return total.item<float>();
    }

    /// <summary>
    /// Forward and backward over one optimizer step's samples in micro-batches of <paramref name="batchSize"/>, gradients
    /// accumulating on the parameters: each micro-batch's summed token loss is divided by the supervised tokens of the
    /// whole step, so the result does not depend on how the step is split. Returns the step's per-token mean loss.
    /// </summary>
    public static double ForwardBackward(LlavaModel model, IReadOnlyList<TokenizedExample> examples, int batchSize, TowerFeatureCache? cache = null)
    {
        int tokens = examples.Sum(e => e.SupervisedTokens);
        double loss = 0;
        for (int m = 0; m * batchSize < examples.Count; m++)
        {
            using var scope = torch.NewDisposeScope();
            var batch = LlavaDataset.Collate(model, examples.Skip(m * batchSize).Take(batchSize).ToList(), cache);
            var l = model.Loss(batch, nn.Reduction.Sum).Over(tokens);
            l.backward();
            loss += l.item<float>();
        }
        return loss;
    }

    /// <summary>Runs (or resumes) a training run; see <see cref="TrainOptions"/>. Errors users can cause throw with a one-line message.</summary>
    public static TrainResult Train(TrainOptions opts, Action<TrainProgress>? progress = null, Action<string>? log = null)
    {
        Validate(opts);
        var stage = ParseStage(opts.Stage);
        var device = Runtime.Devices.Resolve(opts.Device);
        bool groupByLength = opts.GroupByLength ?? stage == TrainStage.Finetune;
        double peakLr = PeakLr(opts, stage);
        bool bf16 = UsesBf16(opts.Precision, device);
        string precision = bf16 ? "bf16" : "fp32";
        if (bf16)
            log?.Invoke("precision: bf16 mixed precision (bf16 weights and activations, float32 master weights, AdamW state, loss and clipping; " +
                        "DeepSpeed's bf16 mode, since TorchSharp 0.107 has no torch.autocast)");
        Directory.CreateDirectory(opts.OutDir);

        var latest = TrainCheckpoint.FindLatest(opts.OutDir);
        if (latest is not null && !opts.Resume)
            throw new UserInputException($"{opts.OutDir}: holds checkpoints ({Path.GetFileName(latest)}); pass resume to continue, or choose another out dir");

        torch.manual_seed(opts.Seed);
        using var model = LlavaCheckpoint.Load(opts.ModelDir, opts.VisionTowerDir, device);
        var tok = model.Tokenizer ?? throw new UserInputException($"{opts.ModelDir}: no tokenizer files (vocab.json + merges.txt or tokenizer.model)");
        if (opts.PretrainedProjector is { } pp) LoadProjector(model, pp);
        using var masters = new MasterWeights();
        if (bf16)
        {
            // Float32 masters of the trainable tensors, taken before the cast; the optimizer updates these and the bf16 model
            // gets their rounded values after every step.
            // The detached view is a `using` local, not a chain temporary: outside a dispose scope a temporary can be
            // finalized (its at::Tensor freed) while clone() is still reading it (see Safetensors.Write).
            foreach (var (n, p) in Freeze(model, stage))
            {
                using var detached = p.detach();
                masters.Add(n, detached.clone());
            }
            model.ToDType(ScalarType.BFloat16);
        }
        var trainable = Freeze(model, stage);
        if (bf16 && !trainable.Select(t => t.Name).SequenceEqual(masters.Names))
            throw new InvalidOperationException("bf16: the trainable tensors changed names across the dtype cast");
        var optimized = bf16 ? masters.Pairs : trainable.Select(t => (t.Name, (Tensor)t.Param)).ToList();
        void SyncModel()
        {
            if (!bf16) return;
            using var _ = torch.no_grad();
            for (int i = 0; i < trainable.Count; i++) trainable[i].Param.copy_(optimized[i].Item2);
        }
        SyncModel();

        var data = LlavaDataset.Load(opts.DataJson, opts.ImagesDir ?? Path.GetDirectoryName(Path.GetFullPath(opts.DataJson))!, tok, model.Config.Style,
                                     model.VisualTokenCount, opts.MaxLength, opts.Strict, log, model.Config.Settings.QueryRule);
        WriteSkipped(opts.OutDir, data.Skipped);
        using var featureCache = opts.FeatureCacheMb > 0 ? new TowerFeatureCache(opts.FeatureCacheMb * 1024L * 1024L) : null;
        int window = opts.BatchSize * opts.GradAccum;
        int stepsPerEpoch = data.Examples.Count / window;
        if (stepsPerEpoch == 0)
            throw new UserInputException($"{opts.DataJson}: {data.Examples.Count} usable records, fewer than batch size × grad accum = {window}");
        int totalSteps = opts.MaxSteps ?? opts.Epochs * stepsPerEpoch;
        int warmup = LrSchedule.WarmupSteps(opts.WarmupRatio, totalSteps);
        var lengths = data.Examples.Select(e => e.Length).ToList();

        using var optimizer = new AdamW(optimized, opts.Beta1, opts.Beta2, opts.Eps, opts.WeightDecay);
        int step = 0, nonFinite = 0, inARow = 0;
        double? firstLoss = null;
        int? resumedFrom = null;
        var metricsPath = Path.Combine(opts.OutDir, MetricsFile);
        if (latest is not null)
        {
            var st = TrainCheckpoint.ReadState(latest);
            void Same<T>(string field, T saved, T now)
            {
                if (!EqualityComparer<T>.Default.Equals(saved, now))
                    throw new UserInputException($"{Path.Combine(latest, TrainCheckpoint.StateFile)}: {field} was {saved}, this run has {now}; resume needs the same setting");
            }
            Same("stage", st.Stage, stage.ToString().ToLowerInvariant());
            Same("seed", st.Seed, opts.Seed);
            Same("batch_size", st.BatchSize, opts.BatchSize);
            Same("grad_accum", st.GradAccum, opts.GradAccum);
            Same("group_by_length", st.GroupByLength, groupByLength);
            Same("usable_records", st.UsableRecords, data.Examples.Count);
            Same("total_steps", st.TotalSteps, totalSteps);
            Same("precision", st.Precision ?? "fp32", precision);
            using (var ck = Checkpoint.Open(Path.Combine(latest, TrainCheckpoint.ModelFile)))
                StateDictLoader.LoadStrict(optimized, ck, _ => false);
            SyncModel();
            using (var ck = Checkpoint.Open(Path.Combine(latest, TrainCheckpoint.OptimizerFile)))
                optimizer.LoadState(ck.Read, st.OptimizerStep);
            using (var ck = Checkpoint.Open(Path.Combine(latest, TrainCheckpoint.RngFile)))
            using (var rng = ck.Read("torch_rng_state"))
                torch.random.set_rng_state(rng);
            (step, nonFinite, inARow, firstLoss, resumedFrom) = (st.Step, st.NonFiniteSteps, st.NonFiniteInARow, st.FirstLoss, st.Step);
            TruncateMetrics(metricsPath, step);
            log?.Invoke($"resuming from {latest} (step {step} of {totalSteps})");
        }
        else if (File.Exists(metricsPath)) File.Delete(metricsPath);
        AtomicFile.WriteAllText(Path.Combine(opts.OutDir, "train_options.json"), JsonSerializer.Serialize(opts, new JsonSerializerOptions { WriteIndented = true }));

        using var metrics = new FileStream(metricsPath, FileMode.Append, FileAccess.Write, FileShare.Read);
        var tb = opts.TensorBoard ? torch.utils.tensorboard.SummaryWriter(Path.Combine(opts.OutDir, "tensorboard")) : null;

        int[]? order = null;
        int orderEpoch = -1;
        double lastLoss = double.NaN;
        var stepSeconds = new List<double>();
        double stepSecondsSum = 0;
        var total = Stopwatch.StartNew();
        bool stopped = false;
        var parameters = trainable.Select(t => (Tensor)t.Param).ToList();
        while (step < totalSteps)
        {
            if (opts.StopAfterSteps is { } stopAt && step >= stopAt) { stopped = true; break; }
            var sw = Stopwatch.StartNew();
            int epoch = step / stepsPerEpoch, pos = step % stepsPerEpoch;
            if (epoch != orderEpoch) { order = DataOrder.Epoch(lengths, opts.Seed, epoch, window, groupByLength); orderEpoch = epoch; }
            var examples = order!.Skip(pos * window).Take(window).Select(i => data.Examples[i]).ToList();
            int tokens = examples.Sum(e => e.SupervisedTokens);
            double lr = LrSchedule.Cosine(peakLr, step, totalSteps, warmup);

            double loss = 0, gradNorm;
            using (var scope = torch.NewDisposeScope())
            {
                loss = ForwardBackward(model, examples, opts.BatchSize, featureCache);
                // bf16: the gradients reach the float32 masters as float32 copies; norm and clipping are taken on those.
                var grads32 = bf16 ? trainable.Select(t => t.Param.grad?.to_type(ScalarType.Float32)).ToList() : null;
                gradNorm = grads32 is null ? ClipGradNorm(trainable.Select(t => t.Param), opts.MaxGradNorm) : ClipGradients(grads32, opts.MaxGradNorm);
                bool finite = double.IsFinite(loss) && double.IsFinite(gradNorm);
                if (finite) { optimizer.Step(lr, grads32); SyncModel(); inARow = 0; }
                else { nonFinite++; inARow++; }
                using (torch.no_grad()) foreach (var p in parameters) p.grad?.zero_();
                if (!finite)
                {
                    log?.Invoke($"step {step + 1}: non-finite {(double.IsFinite(loss) ? "gradient norm" : "loss")}; update skipped ({inARow} in a row)");
                    if (inARow >= opts.MaxConsecutiveNonFinite)
                        throw new InvalidOperationException($"stopped at step {step + 1}: {inARow} non-finite losses/gradients in a row (lower the lr, or check the data)");
                }
            }
            step++;
            if (double.IsFinite(loss)) { firstLoss ??= loss; lastLoss = loss; }
            double sps = window / sw.Elapsed.TotalSeconds;
            double epochF = (double)step / stepsPerEpoch;
            var eta = TimeSpan.FromSeconds((stepSeconds.Count > 0 ? stepSecondsSum / stepSeconds.Count : sw.Elapsed.TotalSeconds) * (totalSteps - step));
            WriteMetric(metrics, step, loss, lr, gradNorm, sps, epochF, tokens, double.IsFinite(loss) && double.IsFinite(gradNorm));
            if (tb is not null)
            {
                if (double.IsFinite(loss)) tb.add_scalar("train/loss", (float)loss, step);
                tb.add_scalar("train/lr", (float)lr, step);
                if (double.IsFinite(gradNorm)) tb.add_scalar("train/grad_norm", (float)gradNorm, step);
                tb.add_scalar("train/samples_per_s", (float)sps, step);
            }
            progress?.Invoke(new TrainProgress(step, totalSteps, epochF, loss, lr, gradNorm, sps, eta, nonFinite));
            // A step's time includes its bookkeeping (metrics line, TensorBoard scalars, progress), not checkpoint saves.
            stepSeconds.Add(sw.Elapsed.TotalSeconds);
            stepSecondsSum += stepSeconds[^1];

            if (opts.SaveEvery > 0 && step % opts.SaveEvery == 0)
            {
                var state = new TrainerState
                {
                    Step = step, TotalSteps = totalSteps, Epoch = epochF, Stage = stage.ToString().ToLowerInvariant(), Seed = opts.Seed,
                    BatchSize = opts.BatchSize, GradAccum = opts.GradAccum, GroupByLength = groupByLength, UsableRecords = data.Examples.Count,
                    SamplesSeen = (long)step * window, OptimizerStep = optimizer.StepCount, NonFiniteSteps = nonFinite, NonFiniteInARow = inARow, FirstLoss = firstLoss,
                    Trainable = trainable.Select(t => t.Name).ToArray(), Precision = precision,
                };
                using var rng = torch.random.get_rng_state();
                var dir = TrainCheckpoint.Save(opts.OutDir, state, optimized.Select(t => new KeyValuePair<string, Tensor>(t.Item1, t.Item2)), optimizer, rng);
                log?.Invoke($"checkpoint {dir}");
            }
        }
        total.Stop();

        string? finalDir = null, projectorFile = null;
        if (!stopped)
        {
            // bf16: the saved model is the source model's float32 weights with the float32 masters in place of the trained
            // tensors, so frozen weights come out bit-identical (not rounded through bf16).
            using var fresh = bf16 ? LlavaCheckpoint.Load(opts.ModelDir, opts.VisionTowerDir, torch.CPU) : null;
            var saved = fresh ?? model;
            if (fresh is not null)
            {
                var targets = Freeze(fresh, stage);
                using var _ = torch.no_grad();
                for (int i = 0; i < targets.Count; i++) targets[i].Param.copy_(masters.Pairs[i].Item2);
            }
            finalDir = SaveFinal(saved, opts.ModelDir, Path.Combine(opts.OutDir, FinalFolder));
            if (stage == TrainStage.Pretrain)
            {
                projectorFile = Path.Combine(opts.OutDir, ProjectorFile);
                Safetensors.Write(projectorFile, saved.Projector.state_dict().Select(kv => new KeyValuePair<string, Tensor>(LlavaModel.ProjectorPrefix + kv.Key, kv.Value)),
                                  new Dictionary<string, string> { ["format"] = "pt" });
            }
        }
        return new TrainResult(opts.OutDir, finalDir, projectorFile, metricsPath, step, totalSteps, resumedFrom, firstLoss ?? double.NaN, lastLoss,
                               data.Skipped.Count, nonFinite, data.Examples.Count, total.Elapsed.TotalSeconds, stepSeconds, stopped);
    }

    /// <summary>Float32 master copies of the trainable tensors of a bf16 run, in trainable order; disposed with the run.</summary>
    private sealed class MasterWeights : IDisposable
    {
        public List<(string, Tensor)> Pairs { get; } = new();
        public IEnumerable<string> Names => Pairs.Select(p => p.Item1);
        public void Add(string name, Tensor t) => Pairs.Add((name, t.DetachFromDisposeScope()));
        public void Dispose() { foreach (var (_, t) in Pairs) t.Dispose(); }
    }

    /// <summary>A full model folder (LlavaCheckpoint layout + the tokenizer files of the source folder), written beside and renamed into place.</summary>
    private static string SaveFinal(LlavaModel model, string sourceDir, string finalDir)
    {
        var tmp = finalDir + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        LlavaCheckpoint.Save(model, tmp);
        foreach (var f in TokenizerFiles)
            if (File.Exists(Path.Combine(sourceDir, f))) AtomicFile.WriteAllBytes(Path.Combine(tmp, f), File.ReadAllBytes(Path.Combine(sourceDir, f)));
        if (Directory.Exists(finalDir)) Directory.Delete(finalDir, true);
        Directory.Move(tmp, finalDir);
        return finalDir;
    }

    private static void WriteMetric(FileStream fs, int step, double loss, double lr, double gradNorm, double sps, double epoch, int tokens, bool applied)
    {
        static JsonNode? Num(double v) => double.IsFinite(v) ? JsonValue.Create(v) : null;
        var rec = new JsonObject
        {
            ["step"] = step, ["loss"] = Num(loss), ["lr"] = lr, ["grad_norm"] = Num(gradNorm), ["samples_per_s"] = Num(sps),
            ["epoch"] = epoch, ["tokens"] = tokens, ["skipped"] = !applied,
        };
        fs.Write(Encoding.UTF8.GetBytes(rec.ToJsonString() + "\n"));
        // To the OS, which keeps it through a killed process; an fsync per step would cost more than the step on tiny models.
        // A line torn by a power cut is dropped on resume.
        fs.Flush(flushToDisk: false);
    }

    /// <summary>Drops the records a killed run wrote after the checkpoint it resumes from (and a torn last line).</summary>
    private static void TruncateMetrics(string path, int step)
    {
        if (!File.Exists(path)) return;
        var keep = new StringBuilder();
        foreach (var line in File.ReadLines(path))
        {
            try
            {
                if (JsonNode.Parse(line)?["step"]?.GetValue<int>() is { } s && s <= step) keep.Append(line).Append('\n');
            }
            catch (JsonException) { }
        }
        AtomicFile.WriteAllText(path, keep.ToString());
    }

    private static void WriteSkipped(string outDir, IReadOnlyList<SkippedRecord> skipped)
    {
        var sb = new StringBuilder();
        foreach (var s in skipped) sb.Append(new JsonObject { ["index"] = s.Index, ["id"] = s.Id, ["reason"] = s.Reason }.ToJsonString()).Append('\n');
        AtomicFile.WriteAllText(Path.Combine(outDir, SkippedFile), sb.ToString());
    }
}
