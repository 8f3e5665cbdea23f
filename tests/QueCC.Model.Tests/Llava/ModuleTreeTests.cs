using QueCC.Model.Checkpoints;
using QueCC.Model.Clip;
using QueCC.Model.Commands;
using QueCC.Model.Llava;
using TorchSharp;
using static TorchSharp.torch;

namespace QueCC.Model.Tests.Llava;

/// <summary>
/// <see cref="LlavaModel"/> is one module tree named by LLaVA's checkpoint keys, and <see cref="LlavaCheckpoint.Load"/> is one
/// strict load over it. Oracles: the key lists of folders on disk, one of them written by Python in liuhaotian/llava-v1.5-7b's layout.
/// </summary>
public class ModuleTreeTests(TinyLlavaFixture fx) : IClassFixture<TinyLlavaFixture>
{
    private const string Tower = "model.vision_tower.vision_tower.";

    private static string Fx(params string[] p) => Path.Combine(new[] { AppContext.BaseDirectory, "Fixtures" }.Concat(p).ToArray());

    /// <summary>The CLIP vision model's weights in a tower folder, under the tree's prefix (a full CLIP folder also holds the text tower).</summary>
    private static IEnumerable<string> TowerKeys(string towerDir)
    {
        using var ckpt = Checkpoint.Open(towerDir);
        return ckpt.Keys.Where(k => k.StartsWith("vision_model.") && !k.EndsWith("position_ids")).Select(k => Tower + k).ToList();
    }

    private static List<string> FolderKeys(string dir)
    {
        using var ckpt = Checkpoint.Open(dir);
        return ckpt.Keys.ToList();
    }

    [Fact]
    public void A_built_model_is_named_by_the_keys_of_its_saved_folder_and_tower()
    {
        using var _ = NewDisposeScope();
        var p = Presets.Presets.Get("tiny");
        using var model = new LlavaModel(LlavaEntryPoints.BuildConfig(p, "quecc", 4), p.Vision);
        var names = model.named_parameters().Select(x => x.name).ToList();
        var saved = FolderKeys(fx.Dir).Concat(TowerKeys(Path.Combine(fx.Dir, LlavaCheckpoint.VisionTowerFolder))).ToList();
        Assert.Equal(saved.Count, names.Count);
        Assert.Equal(saved.OrderBy(k => k, StringComparer.Ordinal), names.OrderBy(k => k, StringComparer.Ordinal));
        Assert.Equal(names, model.state_dict().Keys);
        foreach (var k in new[] { "model.embed_tokens.weight", "model.layers.1.self_attn.q_proj.bias", "model.norm.weight",
                                  "model.mm_projector.0.clip_attn.in_proj_weight", "model.mm_projector.3.bias",
                                  Tower + "vision_model.encoder.layers.0.mlp.fc1.weight", Tower + "vision_model.post_layernorm.bias" })
            Assert.Contains(k, names);
        // The views share the tree's tensors: no copy for the LLM, the projector or the tower.
        var tree = model.state_dict();
        Assert.All(model.Llm.state_dict(), kv => Assert.Same(kv.Value, tree[kv.Key]));
        Assert.All(model.Projector.state_dict(), kv => Assert.Same(kv.Value, tree[LlavaModel.ProjectorPrefix + kv.Key]));
        Assert.All(model.VisionTower.state_dict(), kv => Assert.Same(kv.Value, tree[Tower + kv.Key]));
    }

    [Fact]
    public void The_published_LLaVA_1_5_layout_is_the_trees_key_set_with_lm_head()
    {
        using var _ = NewDisposeScope();
        var dir = Fx("llava15", "llava-v1.5-tiny");
        var tower = Fx("llava15", "clip-vit-tiny-patch2-48");
        using var model = new LlavaModel(LlavaConfig.Load(Path.Combine(dir, "config.json")), ClipVisionConfig.Load(Path.Combine(tower, "config.json")));
        var names = model.named_parameters().Select(x => x.name).OrderBy(k => k, StringComparer.Ordinal);
        Assert.Equal(FolderKeys(dir).Concat(TowerKeys(tower)).OrderBy(k => k, StringComparer.Ordinal), names);
        Assert.Contains("lm_head.weight", names);
    }

    public enum Change { Remove, Add }

    /// <summary>One key of one part removed or added; the tower's is changed in its own folder, given as vision_tower/ or --vision-tower.</summary>
    [Theory]
    [InlineData("llm", Change.Remove, "model.layers.1.mlp.down_proj.weight")]
    [InlineData("llm", Change.Add, "model.layers.2.mlp.down_proj.weight")]
    [InlineData("projector", Change.Remove, "model.mm_projector.0.q_downsample.bias")]
    [InlineData("projector", Change.Add, "model.mm_projector.5.weight")]
    [InlineData("tower", Change.Remove, "vision_model.encoder.layers.1.self_attn.k_proj.weight")]
    [InlineData("tower", Change.Add, "vision_model.encoder.layers.7.self_attn.k_proj.weight")]
    [InlineData("tower-flag", Change.Remove, "vision_model.pre_layrnorm.weight")]
    [InlineData("tower-flag", Change.Add, "vision_model.extra.weight")]
    public void One_strict_load_reports_a_single_missing_or_extra_key_of_any_part(string part, Change change, string key)
    {
        using var _ = NewDisposeScope();
        var dir = CopyOfFixture();
        try
        {
            bool tower = part.StartsWith("tower");
            var towerDir = Path.Combine(dir, LlavaCheckpoint.VisionTowerFolder);
            var file = Path.Combine(tower ? towerDir : dir, "model.safetensors");
            var tensors = Safetensors.Load(file);
            if (change == Change.Remove) Assert.True(tensors.Remove(key), key);
            else tensors[key] = torch.zeros(2);
            Safetensors.Write(file, tensors);
            if (part == "tower-flag")
            {
                var moved = dir + "-tower";
                Directory.Move(towerDir, moved);
                towerDir = moved;
            }

            var e = Assert.Throws<StateDictMismatchException>(() => LlavaCheckpoint.Load(dir, part == "tower-flag" ? towerDir : null));
            var reported = (tower ? Tower : "") + key;
            Assert.Equal(change == Change.Remove ? new[] { reported } : Array.Empty<string>(), e.Missing);
            Assert.Equal(change == Change.Add ? new[] { reported } : Array.Empty<string>(), e.Unexpected);
            Assert.Empty(e.ShapeMismatches);
            Assert.Contains(reported, e.Message);
        }
        finally
        {
            Directory.Delete(dir, true);
            if (Directory.Exists(dir + "-tower")) Directory.Delete(dir + "-tower", true);
        }
    }

    [Fact]
    public void Faults_in_the_LLM_projector_and_tower_are_listed_by_one_load()
    {
        using var _ = NewDisposeScope();
        var dir = CopyOfFixture();
        try
        {
            var model = Safetensors.Load(Path.Combine(dir, "model.safetensors"));
            model.Remove("model.embed_tokens.weight");
            model["model.mm_projector.1.weight"] = torch.zeros(3, 3);
            Safetensors.Write(Path.Combine(dir, "model.safetensors"), model);
            var towerFile = Path.Combine(dir, LlavaCheckpoint.VisionTowerFolder, "model.safetensors");
            var tower = Safetensors.Load(towerFile);
            tower.Remove("vision_model.post_layernorm.bias");
            tower["vision_model.encoder.layers.0.extra"] = torch.zeros(1);
            Safetensors.Write(towerFile, tower);

            var e = Assert.Throws<StateDictMismatchException>(() => LlavaCheckpoint.Load(dir));
            Assert.Equal(new[] { "model.embed_tokens.weight", Tower + "vision_model.post_layernorm.bias" }.Order(StringComparer.Ordinal), e.Missing.Order(StringComparer.Ordinal));
            Assert.Equal(new[] { Tower + "vision_model.encoder.layers.0.extra" }, e.Unexpected);
            Assert.Contains("model.mm_projector.1.weight", Assert.Single(e.ShapeMismatches));
            Assert.Contains(dir, e.Message);
            Assert.Contains(Path.Combine(dir, LlavaCheckpoint.VisionTowerFolder), e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    private string CopyOfFixture()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"quecc-tree-{Guid.NewGuid():N}");
        foreach (var src in Directory.EnumerateFiles(fx.Dir, "*", SearchOption.AllDirectories))
        {
            var dst = Path.Combine(dir, Path.GetRelativePath(fx.Dir, src));
            Directory.CreateDirectory(Path.GetDirectoryName(dst)!);
            File.Copy(src, dst);
        }
        return dir;
    }
}
