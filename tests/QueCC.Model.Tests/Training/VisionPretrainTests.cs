using QueCC.Model.Checkpoints;
using QueCC.Model.Clip;
using QueCC.Model.Commands;
using QueCC.Model.Data;
using QueCC.Model.Llava;
using QueCC.Model.Training;
using TorchSharp;

namespace QueCC.Model.Tests.Training;

public class VisionPretrainTests
{
    private static string NewDir() => Path.Combine(Path.GetTempPath(), $"quecc-stage0-{Guid.NewGuid():N}");

    [Fact]
    public void Scene_labels_name_what_the_pixels_show()
    {
        // Independent truth: the centre pixel of each 3×3 cell, matched to the nearest colour of the drawing palette.
        var palette = new (int R, int G, int B)[] { (220, 30, 30), (30, 170, 40), (30, 60, 220), (235, 200, 20) };
        int cellsChecked = 0;
        for (int i = 0; i < 20; i++)
        {
            var (img, l) = SyntheticData.Scene("shapes", 5, i);
            Assert.Equal(9, l.CellColors.Length);
            for (int cell = 0; cell < 9; cell++)
            {
                int x = (int)((cell % 3 + 0.5) * img.Width / 3), y = (int)((cell / 3 + 0.55) * img.Height / 3);
                int r = img[y, x, 0], g = img[y, x, 1], b = img[y, x, 2];
                bool empty = r + g + b > 600;
                Assert.Equal(empty, l.CellColors[cell] == 0);
                Assert.Equal(empty, l.CellShapes[cell] == 0);
                if (!empty)
                {
                    int nearest = Enumerable.Range(0, 4).MinBy(k => Math.Pow(palette[k].R - r, 2) + Math.Pow(palette[k].G - g, 2) + Math.Pow(palette[k].B - b, 2));
                    Assert.Equal(nearest + 1, l.CellColors[cell]);
                }
                cellsChecked++;
            }
            var (_, o) = SyntheticData.Scene("ocr", 5, i);
            Assert.Equal(4, o.QuadrantWords.Length);
            Assert.True(o.WholeWord == -1 ? o.QuadrantWords.Count(w => w > 0) >= 2 : o.QuadrantWords.All(w => w == -1));
        }
        Assert.Equal(180, cellsChecked);
        Assert.Equal(6, SyntheticData.WordClass("5"));
        Assert.Equal(11, SyntheticData.WordClass("A"));
        Assert.Equal(17, SyntheticData.WordClasses);
    }

    [Fact]
    public void Stage_zero_writes_a_CLIP_folder_that_init_model_starts_from_and_a_foreign_tower_is_refused()
    {
        var root = NewDir();
        try
        {
            var tower = Path.Combine(root, "tower");
            var r = VisionPretrain.Run(new VisionPretrainOptions { OutDir = tower, ImagesPerKind = 4, EvalImagesPerKind = 2, Steps = 2, BatchSize = 4 });
            Assert.True(double.IsFinite(r.FirstLoss) && double.IsFinite(r.LastLoss));
            Assert.True(File.Exists(Path.Combine(tower, VisionPretrain.ResultFile)));
            Assert.Empty(Directory.GetDirectories(root, "tower.tmp-*"));
            Assert.Equal(Presets.Presets.TinyClip, ClipVisionConfig.Load(Path.Combine(tower, "config.json")));

            var model = LlavaEntryPoints.InitModel("tiny", "quecc", 4, Path.Combine(root, "m"), 1, tower);
            using (var saved = Checkpoint.Open(Path.Combine(tower, "model.safetensors")))
            using (var copied = Checkpoint.Open(Path.Combine(model, LlavaCheckpoint.VisionTowerFolder, "model.safetensors")))
            {
                Assert.Equal(saved.Keys.Order(), copied.Keys.Order());
                foreach (var k in saved.Keys)
                {
                    using var a = saved.Read(k);
                    using var b = copied.Read(k);
                    Assert.True(a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>(), k);
                }
            }
            // A random tower differs from the pretrained one (the test above could not fail otherwise).
            var plain = LlavaEntryPoints.InitModel("tiny", "quecc", 4, Path.Combine(root, "p"), 1);
            using (var saved = Checkpoint.Open(Path.Combine(tower, "model.safetensors")))
            using (var random = Checkpoint.Open(Path.Combine(plain, LlavaCheckpoint.VisionTowerFolder, "model.safetensors")))
            using (var a = saved.Read("vision_model.encoder.layers.0.mlp.fc1.weight"))
            using (var b = random.Read("vision_model.encoder.layers.0.mlp.fc1.weight"))
                Assert.False(a.eq(b).all().item<bool>());

            var e = Assert.Throws<InvalidDataException>(() => LlavaEntryPoints.InitModel("small", "quecc", 4, Path.Combine(root, "s"), 1, tower));
            Assert.Contains(Path.Combine(tower, "config.json"), e.Message);
            Assert.Contains("is not preset small's", e.Message);
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, true);
        }
    }
}
