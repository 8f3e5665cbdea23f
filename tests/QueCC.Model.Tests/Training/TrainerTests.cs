using System.Text.Json.Nodes;
using QueCC.Model.Checkpoints;
using QueCC.Model.Llava;
using QueCC.Model.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace QueCC.Model.Tests.Training;

[Collection("training")]
public class TrainerTests(TrainingFixture fx)
{
    private static byte[] Weights(string modelDir) => File.ReadAllBytes(Path.Combine(modelDir, Checkpoint.SingleFileName));

    private static Dictionary<string, Tensor> AllParameters(LlavaModel m) =>
        m.VisionTower.named_parameters().Select(p => ("vision." + p.name, (Tensor)p.parameter))
            .Concat(m.Llm.named_parameters().Select(p => (p.name, (Tensor)p.parameter)))
            .Concat(m.Projector.named_parameters().Select(p => ("proj." + p.name, (Tensor)p.parameter)))
            .ToDictionary(x => x.Item1, x => x.Item2);

    [Fact]
    public void Same_seed_twice_gives_bit_identical_weights_and_the_stage1_artefacts()
    {
        var again = Trainer.Train(fx.Options("pretrain-b") with { MaxSteps = 3, TensorBoard = true });
        Assert.Single(Directory.GetFiles(Path.Combine(again.OutDir, "tensorboard"), "events.out.tfevents.*"));
        Assert.Equal(Weights(fx.Pretrain.FinalDir!), Weights(again.FinalDir!));
        Assert.Equal(File.ReadAllBytes(fx.Pretrain.ProjectorFile!), File.ReadAllBytes(again.ProjectorFile!));
        using var proj = Checkpoint.Open(fx.Pretrain.ProjectorFile!);
        Assert.All(proj.Keys, k => Assert.StartsWith("model.mm_projector.", k));
        var lines = File.ReadAllLines(fx.Pretrain.MetricsPath);
        Assert.Equal(3, lines.Length);
        var rec = JsonNode.Parse(lines[2])!;
        foreach (var key in new[] { "step", "loss", "lr", "grad_norm", "samples_per_s", "epoch" }) Assert.NotNull(rec[key]);
        Assert.Equal(3, rec["step"]!.GetValue<int>());
        // The final folder is a complete model folder.
        using var m = LlavaCheckpoint.Load(fx.Pretrain.FinalDir!);
        Assert.NotNull(m.Tokenizer);
    }

    /// <summary>
    /// Kept tower features against the reference's encoding at every visit (FeatureCacheMb = 0): the same per-step losses
    /// to float32 rounding (1e-4 relative: a batch of one versus a batch of four through the tower's matmuls), and the
    /// same final weights to 1e-4.
    /// </summary>
    [Fact]
    public void Kept_tower_features_train_as_encoding_every_image_at_every_visit()
    {
        var opts = fx.Options("cache-on", "finetune") with { MaxSteps = 6, BatchSize = 4, PretrainedProjector = fx.Pretrain.ProjectorFile };
        var kept = Trainer.Train(opts);
        var every = Trainer.Train(opts with { OutDir = fx.Out("cache-off"), FeatureCacheMb = 0 });
        static double[] Losses(string metrics) => File.ReadAllLines(metrics).Select(l => JsonNode.Parse(l)!["loss"]!.GetValue<double>()).ToArray();
        var a = Losses(kept.MetricsPath);
        var b = Losses(every.MetricsPath);
        Assert.Equal(6, a.Length);
        Assert.Equal(6, b.Length);
        for (int i = 0; i < a.Length; i++) Assert.True(Math.Abs(a[i] - b[i]) <= 1e-4 * Math.Abs(b[i]), $"step {i + 1}: {a[i]} kept vs {b[i]} encoded each visit");
        using var _ = NewDisposeScope();
        using var ma = LlavaCheckpoint.Load(kept.FinalDir!);
        using var mb = LlavaCheckpoint.Load(every.FinalDir!);
        var pa = AllParameters(ma);
        var pb = AllParameters(mb);
        foreach (var (k, t) in pa) Assert.True(t.allclose(pb[k], rtol: 1e-4, atol: 1e-4), k);
    }

    [Fact]
    public void The_feature_cache_keeps_an_image_once_and_nothing_past_its_budget()
    {
        using var _ = NewDisposeScope();
        using var model = LlavaCheckpoint.Load(fx.ModelDir);
        var image = Directory.GetFiles(Path.Combine(fx.DataDir, "images"), "*.png").Order().First();
        var pixels = QueCC.Model.Data.LlavaDataset.LoadPixels(image, model.Config.Settings.AspectMode(model.Config.Source), model.ImageProcessorConfig).unsqueeze(0);
        var (x, multi) = model.TowerFeatures(pixels);
        using (var big = new QueCC.Model.Data.TowerFeatureCache(1L << 30))
        {
            var first = big.Get(model, image);
            var second = big.Get(model, image);
            Assert.Same(first.X, second.X);
            Assert.Equal(1, big.Count);
            Assert.True(first.X.allclose(x[0], rtol: 0, atol: 0), "kept features differ from the tower's");
            Assert.True(first.Multi!.allclose(multi![0], rtol: 0, atol: 0));
            Assert.Equal((x[0].NumberOfElements + multi[0].NumberOfElements) * 4, big.Bytes);
        }
        using var small = new QueCC.Model.Data.TowerFeatureCache(1024);
        var f = small.Get(model, image);
        Assert.Equal(0, small.Count);
        Assert.True(f.X.allclose(x[0], rtol: 0, atol: 0));
    }

    [Fact]
    public void Stage1_changes_only_projector_parameters()
    {
        using var _ = NewDisposeScope();
        using var before = LlavaCheckpoint.Load(fx.ModelDir);
        using var after = LlavaCheckpoint.Load(fx.Pretrain.FinalDir!);
        var a = AllParameters(before);
        var b = AllParameters(after);
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        foreach (var (k, t) in a)
        {
            if (!k.StartsWith("proj.")) Assert.True(TensorAssert.Same(t, b[k]), k);
        }
        Assert.Contains(a.Keys, k => k.StartsWith("proj.") && !TensorAssert.Same(a[k], b[k]));
    }

    [Fact]
    public void Interrupted_then_resumed_finetune_equals_the_uninterrupted_run_and_never_touches_the_vision_tower()
    {
        var baseOpts = fx.Options("ft-full", "finetune") with { MaxSteps = 5, Lr = 5e-4, SaveEvery = 2, PretrainedProjector = fx.Pretrain.ProjectorFile, BatchSize = 2, GradAccum = 2 };
        var full = Trainer.Train(baseOpts);

        var opts = baseOpts with { OutDir = fx.Out("ft-resumed") };
        var first = Trainer.Train(opts with { StopAfterSteps = 3 });
        Assert.True(first.Stopped);
        Assert.Null(first.FinalDir);
        Assert.Equal(3, File.ReadAllLines(first.MetricsPath).Length);
        // What a kill during the next save (or a torn copy) leaves: a tmp folder and a step folder without trainer_state.json.
        var ck = Path.Combine(opts.OutDir, TrainCheckpoint.Folder);
        Directory.CreateDirectory(Path.Combine(ck, "step-4.tmp-deadbeef"));
        File.WriteAllText(Path.Combine(ck, "step-4.tmp-deadbeef", TrainCheckpoint.ModelFile), "partial");
        Directory.CreateDirectory(Path.Combine(ck, "step-9"));
        File.Copy(Path.Combine(ck, "step-2", TrainCheckpoint.ModelFile), Path.Combine(ck, "step-9", TrainCheckpoint.ModelFile));
        Assert.Equal(Path.Combine(ck, "step-2"), TrainCheckpoint.FindLatest(opts.OutDir));

        var logs = new List<string>();
        var resumed = Trainer.Train(opts with { Resume = true }, log: logs.Add);
        Assert.Equal(2, resumed.ResumedFromStep);
        Assert.Contains(logs, l => l.Contains("resuming from") && l.Contains("step-2"));
        Assert.Equal(Weights(full.FinalDir!), Weights(resumed.FinalDir!));
        Assert.Equal(Weights(Path.Combine(full.FinalDir!, "vision_tower")), Weights(Path.Combine(resumed.FinalDir!, "vision_tower")));
        Assert.Equal(File.ReadAllLines(full.MetricsPath).Select(l => JsonNode.Parse(l)!["loss"]!.GetValue<double>()),
                     File.ReadAllLines(resumed.MetricsPath).Select(l => JsonNode.Parse(l)!["loss"]!.GetValue<double>()));

        // Stage 2: the tower is the model folder's, bit for bit; LLM and projector moved.
        Assert.Equal(Weights(Path.Combine(fx.ModelDir, "vision_tower")), Weights(Path.Combine(full.FinalDir!, "vision_tower")));
        using var _ = NewDisposeScope();
        using var before = LlavaCheckpoint.Load(fx.ModelDir);
        using var after = LlavaCheckpoint.Load(full.FinalDir!);
        var a = AllParameters(before);
        var b = AllParameters(after);
        Assert.All(a.Keys.Where(k => k.StartsWith("vision.")), k => Assert.True(TensorAssert.Same(a[k], b[k]), k));
        Assert.False(TensorAssert.Same(a["model.embed_tokens.weight"], b["model.embed_tokens.weight"]));
        Assert.False(TensorAssert.Same(a["model.layers.0.mlp.up_proj.weight"], b["model.layers.0.mlp.up_proj.weight"]));
    }

    [Fact]
    public void Two_accumulated_micro_batches_of_B_equal_one_batch_of_2B()
    {
        using var _ = NewDisposeScope();
        using var model = LlavaCheckpoint.Load(fx.ModelDir);
        var trainable = Trainer.Freeze(model, TrainStage.Finetune);
        var ds = QueCC.Model.Data.LlavaDataset.Load(fx.DataJson, fx.DataDir, model.Tokenizer!, model.Config.Style, model.VisualTokenCount, 256);
        // Micro-batches with different supervised-token counts: where a mean of per-micro-batch means would differ.
        var bySize = ds.Examples.OrderBy(e => e.SupervisedTokens).ToList();
        var window = bySize.Take(2).Concat(bySize.TakeLast(2)).ToList();
        // preprocess_qwen supervises the template's structural tokens too, so one-word answers give equal counts; unsupervise
        // part of the first two samples to make the micro-batches differ.
        for (int i = 0; i < 2; i++)
        {
            var labels = window[i].Labels.ToList();
            int masked = 0;
            for (int j = 1; j < labels.Count && masked < 3 + i; j++)
                if (labels[j] != -100) { labels[j] = -100; masked++; }
            window[i] = window[i] with { Labels = labels };
        }
        Assert.NotEqual(window[0].SupervisedTokens + window[1].SupervisedTokens, window[2].SupervisedTokens + window[3].SupervisedTokens);
        Dictionary<string, Tensor> Grads(int batchSize, out double loss)
        {
            foreach (var (_, p) in trainable) p.grad = null;
            loss = Trainer.ForwardBackward(model, window, batchSize);
            return trainable.ToDictionary(t => t.Name, t => t.Param.grad!.clone());
        }
        var accumulated = Grads(2, out var lossAccum);
        var single = Grads(4, out var lossSingle);
        // Oracle for the loss: the model's own mean cross-entropy over all supervised tokens of the 4 samples at once.
        double mean;
        using (torch.no_grad()) mean = model.Loss(QueCC.Model.Data.LlavaDataset.Collate(model, window)).item<float>();
        Assert.Equal(mean, lossSingle, 5);
        Assert.Equal(mean, lossAccum, 5);
        foreach (var (k, g) in single)
        {
            Assert.True(g.abs().sum().item<float>() > 0 || k.Contains("bias"), $"{k}: no gradient");
            Assert.True(accumulated[k].allclose(g, 1e-4, 1e-7), $"{k}: max diff {(accumulated[k] - g).abs().max().item<float>()}");
        }
    }

    [Fact]
    public void Cosine_schedule_with_warmup_matches_the_hand_formula()
    {
        Assert.Equal(3, LrSchedule.WarmupSteps(0.03, 100));
        Assert.Equal(1, LrSchedule.WarmupSteps(0.03, 10)); // ceil(0.3)
        Assert.Equal(0.0, LrSchedule.Cosine(1e-3, 0, 100, 3));
        Assert.Equal(1e-3 / 3, LrSchedule.Cosine(1e-3, 1, 100, 3), 15);
        Assert.Equal(2e-3 / 3, LrSchedule.Cosine(1e-3, 2, 100, 3), 15);
        Assert.Equal(1e-3, LrSchedule.Cosine(1e-3, 3, 100, 3), 15);
        for (int s = 3; s <= 100; s++)
            Assert.Equal(1e-3 * 0.5 * (1 + Math.Cos(Math.PI * (s - 3) / 97.0)), LrSchedule.Cosine(1e-3, s, 100, 3), 15);
        Assert.Equal(0.5e-3, LrSchedule.Cosine(1e-3, 5, 7, 3), 15); // halfway through the decay: cos(π/2) = 0
        Assert.Equal(0.0, LrSchedule.Cosine(1e-3, 100, 100, 3), 15);
    }

    [Fact]
    public void AdamW_matches_torch_optim_AdamW()
    {
        using var _ = NewDisposeScope();
        torch.manual_seed(1);
        var w0 = torch.randn(4, 3);
        var b0 = torch.randn(3);
        var mine = new[] { ("w", (Tensor)w0.clone().requires_grad_(true)), ("b", (Tensor)b0.clone().requires_grad_(true)) };
        var w = new TorchSharp.Modules.Parameter(w0.clone());
        var b = new TorchSharp.Modules.Parameter(b0.clone());
        // Oracle: torch's AdamW with HF's grouping (decay on the matrix only).
        var reference = torch.optim.AdamW(new[]
        {
            new TorchSharp.Modules.AdamW.ParamGroup(new[] { w }, new TorchSharp.Modules.AdamW.Options { weight_decay = 0.1 }),
            new TorchSharp.Modules.AdamW.ParamGroup(new[] { b }, new TorchSharp.Modules.AdamW.Options { weight_decay = 0.0 }),
        }, lr: 0.01);
        using var opt = new AdamW(mine, weightDecay: 0.1);
        var x = torch.randn(5, 4);
        for (int i = 0; i < 6; i++)
        {
            reference.zero_grad();
            ((x.mm(w) + b).pow(2).sum() * (i + 1)).backward();
            reference.step();
            foreach (var (_, p) in mine) p.grad?.zero_();
            ((x.mm(mine[0].Item2) + mine[1].Item2).pow(2).sum() * (i + 1)).backward();
            opt.Step(0.01);
        }
        Assert.True(mine[0].Item2.allclose(w, 1e-5, 1e-6));
        Assert.True(mine[1].Item2.allclose(b, 1e-5, 1e-6));
        Assert.False(mine[0].Item2.allclose(w0, 1e-3, 1e-3));
    }

    [Fact]
    public void Clipping_bounds_the_global_norm_as_torch_clip_grad_norm()
    {
        using var _ = NewDisposeScope();
        torch.manual_seed(2);
        var ps = Enumerable.Range(0, 3).Select(i => new TorchSharp.Modules.Parameter(torch.randn(5, i + 1))).ToList();
        var qs = ps.Select(p => new TorchSharp.Modules.Parameter(p.detach().clone())).ToList();
        foreach (var p in ps.Concat(qs)) p.grad = null;
        var grads = ps.Select(p => torch.randn(p.shape) * 10).ToList();
        for (int i = 0; i < 3; i++) { ps[i].grad = grads[i].clone(); qs[i].grad = grads[i].clone(); }
        double byHand = Math.Sqrt(grads.Sum(g => g.pow(2).sum().item<float>()));
        double norm = Trainer.ClipGradNorm(ps, 1.0);
        Assert.Equal(byHand, norm, 3);
        double oracle = torch.nn.utils.clip_grad_norm_(qs, 1.0);
        Assert.Equal(oracle, norm, 3);
        double after = Math.Sqrt(ps.Sum(p => p.grad!.pow(2).sum().item<float>()));
        Assert.True(after <= 1.0 + 1e-5, $"norm after clipping {after}");
        for (int i = 0; i < 3; i++) Assert.True(ps[i].grad!.allclose(qs[i].grad!, 1e-5, 1e-6));
        // Below the bound nothing changes.
        var before = ps[0].grad!.clone();
        Trainer.ClipGradNorm(ps, 100.0);
        Assert.True(TensorAssert.Same(before, ps[0].grad!));

        // The free-tensor overload (bf16 path) against the same oracle; a null entry is skipped.
        var free = grads.Select(g => (Tensor?)g.clone()).Append(null).ToList();
        Assert.Equal(oracle, Trainer.ClipGradients(free, 1.0), 4);
        for (int i = 0; i < 3; i++) Assert.True(free[i]!.allclose(qs[i].grad!, 1e-5, 1e-6), $"tensor {i}");
        var unclipped = grads.Select(g => (Tensor?)g.clone()).ToList();
        Assert.Equal(oracle, Trainer.ClipGradients(unclipped, 0), 4); // 0 = measure only
        Assert.True(TensorAssert.Same(grads[0], unclipped[0]!));
        Assert.Equal(0, Trainer.ClipGradients(new Tensor?[] { null }, 1.0));
    }

    [Fact]
    public void AdamW_with_explicit_gradients_equals_AdamW_on_the_parameters_own()
    {
        using var _ = NewDisposeScope();
        torch.manual_seed(4);
        var w0 = torch.randn(3, 3);
        var a = new[] { ("w", (Tensor)w0.clone().requires_grad_(true)) };
        var b = new[] { ("w", w0.clone()) };
        using var optA = new AdamW(a, weightDecay: 0.1);
        using var optB = new AdamW(b, weightDecay: 0.1);
        for (int i = 0; i < 4; i++)
        {
            var g = torch.randn(3, 3);
            a[0].Item2.grad = g.clone();
            optA.Step(0.01);
            optB.Step(0.01, new Tensor?[] { g });
        }
        Assert.True(TensorAssert.Same(a[0].Item2.detach(), b[0].Item2));
        Assert.Contains("2 gradients for 1 parameters", Assert.Throws<ArgumentException>(() => optB.Step(0.01, new Tensor?[] { null, null })).Message);
    }

    [Fact]
    public void Precision_names_resolve_with_auto_meaning_bf16_on_CUDA_only()
    {
        Assert.False(Trainer.UsesBf16("auto", torch.CPU));
        Assert.True(Trainer.UsesBf16("auto", new Device(DeviceType.CUDA, 0)));
        Assert.True(Trainer.UsesBf16("BF16", torch.CPU));
        Assert.False(Trainer.UsesBf16("fp32", new Device(DeviceType.CUDA, 0)));
        Assert.Equal("precision 'fp8': expected auto, fp32 or bf16", Assert.Throws<UserInputException>(() => Trainer.UsesBf16("fp8", torch.CPU)).Message);
        Assert.Contains("precision 'half'", Assert.Throws<UserInputException>(() => Trainer.Train(fx.Options("bad-precision") with { Precision = "half" })).Message);
    }

    [Fact]
    public void Bf16_mixed_precision_tracks_fp32_keeps_float32_masters_and_resumes_exactly()
    {
        var baseOpts = fx.Options("bf16-full", "finetune") with
        {
            MaxSteps = 5, Lr = 5e-4, SaveEvery = 2, PretrainedProjector = fx.Pretrain.ProjectorFile, BatchSize = 4, Precision = "bf16",
        };
        var logs = new List<string>();
        var full = Trainer.Train(baseOpts, log: logs.Add);
        Assert.Contains(logs, l => l.Contains("bf16 mixed precision"));
        var fp32 = Trainer.Train(baseOpts with { OutDir = fx.Out("bf16-vs-fp32"), Precision = "fp32" });

        // The bf16 run computes in bf16 (losses differ from fp32) yet follows the fp32 run closely.
        double[] Losses(TrainResult r) => File.ReadAllLines(r.MetricsPath).Select(l => JsonNode.Parse(l)!["loss"]!.GetValue<double>()).ToArray();
        var lb = Losses(full);
        var lf = Losses(fp32);
        Assert.Equal(5, lb.Length);
        Assert.NotEqual(lf, lb);
        for (int i = 0; i < 5; i++) Assert.True(Math.Abs(lb[i] - lf[i]) < 0.02 * lf[i], $"step {i + 1}: bf16 loss {lb[i]} vs fp32 {lf[i]}");
        Assert.True(lb[^1] < lb[0], $"bf16 loss did not fall: {lb[0]} → {lb[^1]}");

        // Saved weights are float32 masters (not bf16-rounded values); frozen ones are the source's bit for bit.
        Assert.Equal(Weights(Path.Combine(fx.ModelDir, "vision_tower")), Weights(Path.Combine(full.FinalDir!, "vision_tower")));
        using (var _ = NewDisposeScope())
        {
            using var ck = Checkpoint.Open(Path.Combine(full.FinalDir!, Checkpoint.SingleFileName));
            var up = ck.Read("model.layers.0.mlp.up_proj.weight");
            Assert.Equal(ScalarType.Float32, up.dtype);
            Assert.False(TensorAssert.Same(up, up.to_type(ScalarType.BFloat16).to_type(ScalarType.Float32)), "the saved weights went through bf16");
            using var step2 = Checkpoint.Open(Path.Combine(full.OutDir, TrainCheckpoint.Folder, "step-2", TrainCheckpoint.ModelFile));
            Assert.Equal(ScalarType.Float32, step2.Read("model.layers.0.mlp.up_proj.weight").dtype);
        }
        Assert.Equal("bf16", TrainCheckpoint.ReadState(Path.Combine(full.OutDir, TrainCheckpoint.Folder, "step-4")).Precision);

        // Interrupted at step 3 and resumed from step 2: the same final weights as the uninterrupted bf16 run.
        var opts = baseOpts with { OutDir = fx.Out("bf16-resumed") };
        Assert.True(Trainer.Train(opts with { StopAfterSteps = 3 }).Stopped);
        var e = Assert.Throws<UserInputException>(() => Trainer.Train(opts with { Resume = true, Precision = "fp32" }));
        Assert.Contains("precision was bf16, this run has fp32", e.Message);
        var resumed = Trainer.Train(opts with { Resume = true });
        Assert.Equal(2, resumed.ResumedFromStep);
        Assert.Equal(Weights(full.FinalDir!), Weights(resumed.FinalDir!));
    }

    [Fact]
    public void A_failed_checkpoint_write_leaves_no_step_folder_and_the_previous_one_stays_latest()
    {
        var outDir = fx.Out("ckpt-atomic");
        using var _ = NewDisposeScope();
        var t = torch.ones(2);
        using var opt = new AdamW(new[] { ("t", t) });
        var rng = torch.random.get_rng_state();
        TrainCheckpoint.Save(outDir, new TrainerState { Step = 1 }, new[] { new KeyValuePair<string, Tensor>("t", t) }, opt, rng);
        // A reserved tensor name makes the model file's write throw halfway through the checkpoint.
        Assert.ThrowsAny<Exception>(() => TrainCheckpoint.Save(outDir, new TrainerState { Step = 2 }, new[] { new KeyValuePair<string, Tensor>("__metadata__", t) }, opt, rng));
        var dirs = Directory.GetDirectories(Path.Combine(outDir, TrainCheckpoint.Folder)).Select(Path.GetFileName).ToList();
        Assert.Equal(new[] { "step-1" }, dirs);
        Assert.Equal(Path.Combine(outDir, TrainCheckpoint.Folder, "step-1"), TrainCheckpoint.FindLatest(outDir));
        Assert.Equal(1, TrainCheckpoint.ReadState(TrainCheckpoint.FindLatest(outDir)!).Step);
    }

    [Fact]
    public void A_second_run_into_an_out_dir_with_checkpoints_needs_resume()
    {
        var outDir = fx.Out("needs-resume");
        Directory.CreateDirectory(Path.Combine(outDir, TrainCheckpoint.Folder, "step-1"));
        File.WriteAllText(Path.Combine(outDir, TrainCheckpoint.Folder, "step-1", TrainCheckpoint.StateFile), "{}");
        var e = Assert.Throws<UserInputException>(() => Trainer.Train(fx.Options("needs-resume")));
        Assert.Contains("pass resume", e.Message);
    }

    [Fact]
    public void Projector_files_with_or_without_the_model_prefix_load()
    {
        using var _ = NewDisposeScope();
        using var src = Checkpoint.Open(fx.Pretrain.ProjectorFile!);
        var stripped = Path.Combine(fx.Root, "stripped_projector.safetensors");
        Safetensors.Write(stripped, src.Keys.Select(k => new KeyValuePair<string, Tensor>(k["model.".Length..], src.Read(k))));
        using var m = LlavaCheckpoint.Load(fx.ModelDir);
        Trainer.LoadProjector(m, stripped);
        foreach (var (k, t) in m.Projector.state_dict()) Assert.True(TensorAssert.Same(src.Read(LlavaModel.ProjectorPrefix + k), t), k);
        var bad = Path.Combine(fx.Root, "bad_projector.safetensors");
        Safetensors.Write(bad, new[] { new KeyValuePair<string, Tensor>("x", torch.ones(1)) });
        Assert.Contains("model.mm_projector.*", Assert.Throws<UserInputException>(() => Trainer.LoadProjector(m, bad)).Message);
    }

    [Fact]
    public void Too_many_non_finite_losses_in_a_row_stop_the_run()
    {
        var e = Assert.Throws<InvalidOperationException>(() =>
            Trainer.Train(fx.Options("nan") with { MaxSteps = 8, Lr = 1e30, WarmupRatio = 0, MaxGradNorm = 0, MaxConsecutiveNonFinite = 2 }));
        Assert.Contains("non-finite", e.Message);
        Assert.Contains("in a row", e.Message);
    }
}
