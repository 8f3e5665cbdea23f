using QueCC.Model.Checkpoints;
using QueCC.Model.Compression;
using QueCC.Model.Llava;
using TorchSharp;
using static TorchSharp.torch;

namespace QueCC.Model.Tests.Checkpoints;

/// <summary>
/// .bin files written by Debian's real torch.save (scripts/fixtures/make_bin_fixtures.py) against safetensors twins the same
/// script wrote: sharded LLaVA folder with a tied lm_head.weight, a vision tower, LLaVA's mm_projector.bin, and a pickle naming
/// os.system that a weights-only load must refuse.
/// </summary>
public class PyTorchBinTests
{
    private static string Fx(params string[] p) => Path.Combine(new[] { AppContext.BaseDirectory, "Fixtures", "checkpoints" }.Concat(p).ToArray());

    [Fact]
    public void A_sharded_bin_folder_gives_the_same_tensors_and_logits_as_its_safetensors_twin()
    {
        using var _ = NewDisposeScope();
        using var bin = LlavaCheckpoint.Load(Fx("llava-bin"));
        using var st = LlavaCheckpoint.Load(Fx("llava-safetensors"));
        var a = bin.LanguageStateDict().Concat(bin.VisionTower.state_dict().Select(kv => (kv.Key, kv.Value))).ToList();
        var b = st.LanguageStateDict().Concat(st.VisionTower.state_dict().Select(kv => (kv.Key, kv.Value))).ToDictionary(t => t.Item1, t => t.Item2);
        Assert.Equal(b.Count, a.Count);
        foreach (var (k, t) in a) Assert.True(t.allclose(b[k], 0, 0), $"{k} differs");
        var ids = torch.tensor(new long[] { 3, 17, 100, 5, 42, 7 }).unsqueeze(0);
        Assert.True(bin.Llm.Forward(inputIds: ids).Logits.allclose(st.Llm.Forward(inputIds: ids).Logits, 0, 0));
        var px = torch.rand(1, 3, 48, 48, generator: new Generator(1));
        Assert.True(bin.VisionTower.ForwardAll(px).LastHiddenState.allclose(st.VisionTower.ForwardAll(px).LastHiddenState, 0, 0));
    }

    [Fact]
    public void Bin_checkpoints_open_by_folder_index_and_file()
    {
        using var folder = Checkpoint.Open(Fx("llava-bin"));
        using var index = Checkpoint.Open(Fx("llava-bin", "pytorch_model.bin.index.json"));
        using var single = Checkpoint.Open(Fx("llava-bin", "vision_tower"));
        Assert.Equal(folder.Keys.OrderBy(k => k), index.Keys.OrderBy(k => k));
        Assert.Contains("lm_head.weight", folder.Keys);
        Assert.Equal("F16", folder.Info("model.embed_tokens.weight").DType);
        Assert.Equal(new long[] { 512, 64 }, folder.Info("model.embed_tokens.weight").Shape);
        Assert.Contains(single.Keys, k => k.StartsWith("vision_model."));
    }

    [Fact]
    public void LLaVA_mm_projector_bin_loads_into_the_projector()
    {
        using var _ = NewDisposeScope();
        using var st = LlavaCheckpoint.Load(Fx("llava-safetensors"));
        using var projector = new MultimodalProjector(st.Config.Projector);
        using (var ckpt = Checkpoint.Open(Fx("mm_projector.bin")))
            StateDictLoader.Load(projector, ckpt);
        var expected = st.Projector.state_dict();
        foreach (var (k, t) in projector.state_dict()) Assert.True(t.allclose(expected[k], 0, 0), $"{k} differs");
    }

    [Fact]
    public void A_pickle_naming_another_global_is_refused_and_never_run()
    {
        var marker = "/tmp/quecc-evil-bin-ran";
        File.Delete(marker);
        var e = Assert.Throws<CheckpointFormatException>(() => PyTorchFile.Open(Fx("evil.bin")));
        Assert.Contains("evil.bin", e.Message);
        Assert.Contains("'posix.system'", e.Message);
        Assert.Contains("weights-only", e.Message);
        Assert.False(File.Exists(marker));
    }

    [Fact]
    public void Truncated_legacy_and_foreign_files_are_named()
    {
        var dir = Directory.CreateTempSubdirectory("quecc-bin").FullName;
        try
        {
            var src = File.ReadAllBytes(Fx("mm_projector.bin"));
            var cut = Path.Combine(dir, "cut.bin");
            File.WriteAllBytes(cut, src[..(src.Length / 2)]);
            var e = Assert.Throws<CheckpointFormatException>(() => PyTorchFile.Open(cut));
            Assert.Contains(cut, e.Message);
            var legacy = Path.Combine(dir, "legacy.bin");
            File.WriteAllBytes(legacy, new byte[] { 0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc });
            e = Assert.Throws<CheckpointFormatException>(() => PyTorchFile.Open(legacy));
            Assert.Contains("legacy (pre-1.6) torch.save format", e.Message);
            var text = Path.Combine(dir, "text.bin");
            File.WriteAllText(text, "hello");
            e = Assert.Throws<CheckpointFormatException>(() => PyTorchFile.Open(text));
            Assert.Contains("not a PyTorch checkpoint", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void A_tied_model_accepts_an_equal_lm_head_weight_and_refuses_a_different_one()
    {
        using var _ = NewDisposeScope();
        var dir = Directory.CreateTempSubdirectory("quecc-tied").FullName;
        try
        {
            foreach (var f in Directory.EnumerateFiles(Fx("llava-safetensors"))) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
            var tensors = Safetensors.Load(Fx("llava-safetensors", "model.safetensors"));
            tensors["lm_head.weight"] = tensors["model.embed_tokens.weight"].clone();
            Safetensors.Write(Path.Combine(dir, "model.safetensors"), tensors);
            using (var m = LlavaCheckpoint.Load(dir, Fx("llava-safetensors", "vision_tower"))) Assert.NotNull(m.Llm);
            tensors["lm_head.weight"] = tensors["model.embed_tokens.weight"] * 2;
            Safetensors.Write(Path.Combine(dir, "model.safetensors"), tensors);
            var e = Assert.Throws<CheckpointFormatException>(() => LlavaCheckpoint.Load(dir, Fx("llava-safetensors", "vision_tower")));
            Assert.Contains("lm_head.weight differs from model.embed_tokens.weight", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }
}
