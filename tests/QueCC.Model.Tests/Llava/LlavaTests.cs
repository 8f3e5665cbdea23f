using QueCC.Model.Checkpoints;
using QueCC.Model.Clip;
using QueCC.Model.Commands;
using QueCC.Model.Llava;
using QueCC.Model.Tests.Text;
using QueCC.Model.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace QueCC.Model.Tests.Llava;

/// <summary>One tiny QueCC model folder (V = 4) shared by the tests of this class.</summary>
public sealed class TinyLlavaFixture : IDisposable
{
    public string Dir { get; } = Path.Combine(Path.GetTempPath(), $"quecc-llava-{Guid.NewGuid():N}");
    public TinyLlavaFixture() => LlavaEntryPoints.InitModel("tiny", "quecc", 4, Dir, seed: 5);
    public void Dispose() => Directory.Delete(Dir, true);
}

public class LlavaTests(TinyLlavaFixture fx) : IClassFixture<TinyLlavaFixture>
{
    private static string TempDir() => Path.Combine(Path.GetTempPath(), $"quecc-t-{Guid.NewGuid():N}");

    private static Tensor Pixels(int seed) { torch.manual_seed(seed); return torch.randn(3, 48, 48); }

    private static LlavaSample Sample(int seed, string question, string answer) => new(Pixels(seed), new[] { ($"<image>\n{question}", (string?)answer) });

    [Fact]
    public void Init_writes_the_folder_layout_and_config_keys()
    {
        foreach (var f in new[] { "config.json", "model.safetensors", "vocab.json", "merges.txt", "tokenizer_config.json", "vision_tower/config.json", "vision_tower/model.safetensors" })
            Assert.True(File.Exists(Path.Combine(fx.Dir, f)), f);
        var cfg = LlavaConfig.Load(Path.Combine(fx.Dir, "config.json"));
        Assert.Equal(4, cfg.Projector.OutputTokenCount);
        Assert.Equal(12, cfg.Projector.Kernel);
        Assert.Equal(64, cfg.Projector.TextSize);
        Assert.Equal(ConversationStyle.Qwen15Chat, cfg.Style);
        using var ckpt = Checkpoint.Open(fx.Dir);
        Assert.Contains("model.mm_projector.0.text_projection.0.weight", ckpt.Keys);
        Assert.Contains("model.mm_projector.0.clip_attn.in_proj_weight", ckpt.Keys);
        Assert.Contains("model.mm_projector.1.weight", ckpt.Keys);
        Assert.Contains("model.mm_projector.3.bias", ckpt.Keys);
        Assert.Contains("model.layers.1.self_attn.q_proj.bias", ckpt.Keys);
        Assert.DoesNotContain("lm_head.weight", ckpt.Keys); // tiny ties embeddings
        using var tower = Checkpoint.Open(Path.Combine(fx.Dir, "vision_tower"));
        Assert.All(tower.Keys, k => Assert.StartsWith("vision_model.", k));
    }

    [Theory]
    [InlineData(5)]
    [InlineData(0)]
    public void Bad_visual_token_counts_are_rejected_with_the_allowed_values(int v)
    {
        var e = Assert.Throws<UserInputException>(() => LlavaEntryPoints.InitModel("tiny", "quecc", v, TempDir()));
        Assert.Contains("1, 4, 9, 16, 36, 64, 144, 576", e.Message);
        Assert.Throws<UserInputException>(() => LlavaEntryPoints.InitModel("qwen1.5-7b", "quecc", 4, TempDir()));
    }

    [Fact]
    public void Save_then_load_gives_identical_logits_single_file_sharded_and_bf16()
    {
        using var _ = NewDisposeScope();
        using var a = LlavaCheckpoint.Load(fx.Dir);
        var batch = a.Prepare(new[] { Sample(1, "What is in the image?", "A red square.") });
        var expected = a.Llm.Forward(inputsEmbeds: batch.InputsEmbeds, attentionMask: batch.AttentionMask).Logits;

        var sharded = TempDir();
        try
        {
            LlavaCheckpoint.Save(a, sharded, maxShardBytes: 40_000);
            Assert.True(File.Exists(Path.Combine(sharded, Checkpoint.IndexFileName)));
            Assert.True(Directory.GetFiles(sharded, "model-*-of-*.safetensors").Length > 1);
            foreach (var f in new[] { "vocab.json", "merges.txt", "tokenizer_config.json" }) File.Copy(Path.Combine(fx.Dir, f), Path.Combine(sharded, f));
            using var b = LlavaCheckpoint.Load(sharded);
            var batchB = b.Prepare(new[] { Sample(1, "What is in the image?", "A red square.") });
            Assert.True(batchB.InputsEmbeds.allclose(batch.InputsEmbeds, 0, 0));
            Assert.True(b.Llm.Forward(inputsEmbeds: batchB.InputsEmbeds, attentionMask: batchB.AttentionMask).Logits.allclose(expected, 0, 0));

            LlavaCheckpoint.Save(a, sharded, ScalarType.BFloat16);
            Assert.False(File.Exists(Path.Combine(sharded, Checkpoint.IndexFileName)));
            using var c = LlavaCheckpoint.Load(sharded);
            var pa = a.Llm.named_parameters().ToDictionary(x => x.name, x => x.parameter);
            foreach (var (name, pc) in c.Llm.named_parameters())
                Assert.True(pc.allclose(pa[name].to_type(ScalarType.BFloat16).to_type(ScalarType.Float32), 0, 0), name);
        }
        finally { Directory.Delete(sharded, true); }
    }

    [Fact]
    public void Strict_loading_lists_missing_unexpected_and_misshaped_keys()
    {
        using var _ = NewDisposeScope();
        var dir = TempDir();
        try
        {
            Directory.CreateDirectory(dir);
            foreach (var f in Directory.GetFiles(fx.Dir)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
            var tensors = Safetensors.Load(Path.Combine(dir, "model.safetensors"));
            tensors.Remove("model.norm.weight");
            tensors["model.extra.weight"] = torch.zeros(2);
            tensors["model.mm_projector.1.bias"] = torch.zeros(3);
            Safetensors.Write(Path.Combine(dir, "model.safetensors"), tensors);
            var e = Assert.Throws<StateDictMismatchException>(() => LlavaCheckpoint.Load(dir, Path.Combine(fx.Dir, "vision_tower")));
            Assert.Equal(new[] { "model.norm.weight" }, e.Missing);
            Assert.Equal(new[] { "model.extra.weight" }, e.Unexpected);
            Assert.Single(e.ShapeMismatches);
            Assert.Contains("model.mm_projector.1.bias", e.Message);
            Assert.Contains(dir, e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Tower_loads_from_a_full_CLIP_checkpoint_ignoring_text_keys()
    {
        using var _ = NewDisposeScope();
        var dir = TempDir();
        try
        {
            Directory.CreateDirectory(dir);
            File.Copy(Path.Combine(fx.Dir, "vision_tower", "config.json"), Path.Combine(dir, "config.json"));
            var tensors = Safetensors.Load(Path.Combine(fx.Dir, "vision_tower", "model.safetensors"));
            tensors["text_model.embeddings.token_embedding.weight"] = torch.zeros(4, 2);
            tensors["logit_scale"] = torch.zeros(1);
            tensors["vision_model.embeddings.position_ids"] = torch.arange(577L).unsqueeze(0);
            Safetensors.Write(Path.Combine(dir, "model.safetensors"), tensors.Select(kv => kv.Value.dtype == ScalarType.Float32 ? new KeyValuePair<string, Tensor>(kv.Key, kv.Value.to_type(ScalarType.Float16)) : kv));
            using var m = LlavaCheckpoint.Load(fx.Dir, dir);
            var pe = m.VisionTower.named_parameters().First(p => p.name == "vision_model.embeddings.position_embedding.weight").parameter;
            Assert.True(pe.allclose(tensors["vision_model.embeddings.position_embedding.weight"].to_type(ScalarType.Float16).to_type(ScalarType.Float32), 0, 0));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Labels_supervise_only_assistant_tokens_and_visual_tokens_are_spliced_in_place()
    {
        using var _ = NewDisposeScope();
        using var m = LlavaCheckpoint.Load(fx.Dir);
        var tok = m.Tokenizer!;
        var samples = new[]
        {
            new LlavaSample(Pixels(1), new[] { ("<image>\nWhat is it?", (string?)"A cat."), ("And the color?", "Red.") }),
            Sample(2, "Describe.", "Blue"),
        };
        var batch = m.Prepare(samples);
        // oracle: preprocess_qwen written out by hand
        var (ids0, labelsRef0) = QwenReference.Encode(tok, ("user", "<image>\nWhat is it?"), ("assistant", "A cat."), ("user", "And the color?"), ("assistant", "Red."));
        var (ids1, labelsRef1) = QwenReference.Encode(tok, ("user", "<image>\nDescribe."), ("assistant", "Blue"));
        int at = ids0.IndexOf(LlavaModel.ImageTokenIndex);
        long len0 = ids0.Count - 1 + 4, len1 = ids1.Count - 1 + 4;
        Assert.Equal(Math.Max(len0, len1), batch.InputsEmbeds.shape[1]);
        Assert.Equal(new[] { len0, len1 }, Naive.Flat(batch.AttentionMask.sum(1).to_type(ScalarType.Float64)).Select(x => (long)x));
        var labels0 = Naive.Flat(batch.Labels[0].to_type(ScalarType.Float64)).Select(x => (int)x).ToList();
        Assert.Equal(labelsRef0.Take(at).Concat(Enumerable.Repeat(-100, 4)).Concat(labelsRef0.Skip(at + 1)), labels0.Take((int)len0));
        var labels1 = Naive.Flat(batch.Labels[1].to_type(ScalarType.Float64)).Select(x => (int)x).ToList();
        int at1 = ids1.IndexOf(LlavaModel.ImageTokenIndex);
        Assert.Equal(labelsRef1.Take(at1).Concat(Enumerable.Repeat(-100, 4)).Concat(labelsRef1.Skip(at1 + 1)), labels1.Take((int)len1));
        Assert.All(labels1.Skip((int)len1), l => Assert.Equal(LlavaModel.IgnoreIndex, l));
        // the four positions at the placeholder hold the projector's output for this image and query
        // The default query rule (first_user_turn): the first user turn's text after the image line.
        var query = m.QueryEmbedding(new[] { (IReadOnlyList<int>)tok.Encode("What is it?") });
        var visual = m.EncodeImages(Pixels(1).unsqueeze(0), query);
        Assert.True(torch.allclose(batch.InputsEmbeds[0].narrow(0, at, 4), visual[0], 1e-5, 1e-6));
        var textIds = torch.tensor(ids0.Take(at).Select(i => (long)i).ToArray());
        Assert.True(batch.InputsEmbeds[0].narrow(0, 0, at).allclose(m.Llm.EmbedTokens(textIds), 0, 0));
        var loss = m.Loss(batch).ToDouble();
        Assert.InRange(loss, 0.95 * Math.Log(512), 1.05 * Math.Log(512)); // HF-style init (std 0.02) is near-uniform over the 512-token vocab
    }

    [Fact]
    public void Placeholder_count_must_match_the_one_image()
    {
        using var _ = NewDisposeScope();
        using var m = LlavaCheckpoint.Load(fx.Dir);
        var none = new LlavaSample(Pixels(1), new[] { ("no placeholder here", (string?)"x") });
        var e = Assert.Throws<UserInputException>(() => m.Prepare(new[] { none }));
        Assert.Contains("0 <image> placeholders", e.Message);
        var two = new LlavaSample(Pixels(1), new[] { ("<image> and <image>", (string?)"x") });
        e = Assert.Throws<UserInputException>(() => m.Prepare(new[] { Sample(3, "ok", "ok"), two }));
        Assert.Contains("sample 1", e.Message);
        Assert.Contains("2 <image> placeholders", e.Message);
    }

    [Fact]
    public void Query_embedding_is_the_last_real_tokens_hidden_state_in_a_padded_batch()
    {
        using var _ = NewDisposeScope();
        using var m = LlavaCheckpoint.Load(fx.Dir);
        var tok = m.Tokenizer!;
        var q1 = tok.Encode("What is in the image?");
        var q2 = tok.Encode("Red?");
        var batched = m.QueryEmbedding(new[] { q1, q2 });
        Assert.Equal(new long[] { 2, 1, 64 }, batched.shape);
        var alone = m.Llm.Forward(inputIds: torch.tensor(q2.Select(i => (long)i).ToArray()).unsqueeze(0)).LastHiddenState; // (1, T, D)
        Assert.True(torch.allclose(batched[1, 0], alone[0, -1], 1e-5, 1e-6));
        // QueCC conditions on the query: a different question changes the visual tokens
        var px = Pixels(4).unsqueeze(0);
        var v1 = m.EncodeImages(px, batched.narrow(0, 0, 1));
        var v2 = m.EncodeImages(px, batched.narrow(0, 1, 1));
        Assert.Equal(new long[] { 1, 4, 64 }, v1.shape);
        Assert.False(torch.allclose(v1, v2, 1e-4, 1e-4));
    }

    [Fact]
    public void Generate_entry_point_is_deterministic_for_a_seed()
    {
        var img = Path.Combine(Path.GetTempPath(), $"quecc-{Guid.NewGuid():N}.png");
        try
        {
            RgbImage.Filled(64, 40, 200, 30, 90).SavePng(img);
            var a = LlavaEntryPoints.Generate(fx.Dir, null, img, "What is in the image?", 8, 0, 0);
            var b = LlavaEntryPoints.Generate(fx.Dir, Path.Combine(fx.Dir, "vision_tower"), img, "What is in the image?", 8, 0, 0);
            Assert.Equal(a, b);
            var s1 = LlavaEntryPoints.Generate(fx.Dir, null, img, "What is in the image?", 8, 1.0, 3);
            var s2 = LlavaEntryPoints.Generate(fx.Dir, null, img, "What is in the image?", 8, 1.0, 3);
            Assert.Equal(s1, s2);
            var e = Assert.Throws<UserInputException>(() => LlavaEntryPoints.Generate(fx.Dir, null, img + ".missing", "q", 4, 0, 0));
            Assert.Contains(img + ".missing", e.Message);
        }
        finally { File.Delete(img); }
    }

    [Fact]
    public void Baseline_compressors_init_and_run()
    {
        using var _ = NewDisposeScope();
        foreach (var (kind, v) in new[] { ("quecc_noquery", 16), ("avgpool", 1), ("tokenpacker", 36), ("none", 576) })
        {
            var dir = TempDir();
            try
            {
                LlavaEntryPoints.InitModel("tiny", kind, v, dir);
                using var m = LlavaCheckpoint.Load(dir);
                var batch = m.Prepare(new[] { Sample(1, "What?", "Yes.") });
                Assert.Equal(QwenReference.Encode(m.Tokenizer!, ("user", "<image>\nWhat?"), ("assistant", "Yes.")).Ids.Count - 1 + v, batch.InputsEmbeds.shape[1]);
                Assert.Equal(v, (int)m.EncodeImages(Pixels(1).unsqueeze(0), null).shape[1]);
            }
            finally { Directory.Delete(dir, true); }
        }
    }
}
