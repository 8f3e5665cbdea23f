using System.Diagnostics;
using System.Text.Json;
using QueCC.Model.Clip;
using QueCC.Model.Data;
using QueCC.Model.Llava;
using TorchSharp;
using static TorchSharp.torch;

namespace QueCC.Model.Training;

/// <summary>Stage 0 settings: which tower, how many synthetic images of each kind, and the optimizer.</summary>
public sealed record VisionPretrainOptions
{
    /// <summary>The pairing preset whose tower is trained (tiny, small, sweep-*).</summary>
    public string Preset { get; init; } = "tiny";
    public string OutDir { get; init; } = "";
    /// <summary>Training images per kind (shapes and ocr, half each batch).</summary>
    public int ImagesPerKind { get; init; } = 1024;
    /// <summary>Held-out images per kind on which the label accuracies are reported.</summary>
    public int EvalImagesPerKind { get; init; } = 128;
    public int Steps { get; init; } = 300;
    public int BatchSize { get; init; } = 16;
    public double Lr { get; init; } = 2e-3;
    public int Seed { get; init; }
    public string Device { get; init; } = "cpu";
}

/// <summary>What stage 0 reached: held-out accuracy of each label head (chance: colour 0.2, shape 0.25, word 1/117).</summary>
public sealed record VisionPretrainResult(string TowerDir, int Steps, double FirstLoss, double LastLoss, double CellColorAccuracy,
                                          double CellShapeAccuracy, double QuadrantWordAccuracy, double WholeWordAccuracy, double Seconds);

/// <summary>
/// Stage 0 of the miniature world: the tiny CLIP tower is pretrained on the synthetic distribution before any LLaVA stage, so
/// its features carry what the questions ask about, as a real CLIP's do for real images (a random frozen tower gave
/// models whose accuracy with grey images equalled their accuracy with the real ones; docs/miniature-world.md).
/// Objective: attribute prediction from the hidden state LLaVA selects (layer −2), mean-pooled over image regions —
/// per cell of the shapes grid its colour and shape, per quadrant of an ocr image its word, and the word of a whole-image
/// ocr sample from the mean over all patches. Linear heads, cross-entropy, AdamW with the cosine schedule. Regions are
/// read from the patch grid, so the tower learns to keep each region's content in that region's patch tokens: pooling
/// them to one token keeps the coarse content (colours, shapes, counts) and mixes the quadrants' words, which is the
/// split between the reasoning and the OCR family the study looks for. The tower is saved as a Hugging Face
/// CLIPVisionModel folder (config.json + model.safetensors with vision_model.* keys); the heads are discarded.
/// </summary>
public static class VisionPretrain
{
    public const string ResultFile = "stage0.json";

    public static VisionPretrainResult Run(VisionPretrainOptions o, Action<string>? log = null)
    {
        if (string.IsNullOrWhiteSpace(o.OutDir)) throw new ArgumentException("out dir: expected a folder for the vision tower");
        if (o.ImagesPerKind < 1) throw new ArgumentException($"images per kind {o.ImagesPerKind}: expected at least 1");
        if (o.EvalImagesPerKind < 1) throw new ArgumentException($"eval images per kind {o.EvalImagesPerKind}: expected at least 1");
        if (o.Steps < 1) throw new ArgumentException($"steps {o.Steps}: expected at least 1");
        if (o.BatchSize < 2) throw new ArgumentException($"batch size {o.BatchSize}: expected at least 2 (half shapes, half ocr)");
        if (!(o.Lr > 0)) throw new ArgumentException($"lr {o.Lr}: expected a positive value");
        var sw = Stopwatch.StartNew();
        var preset = Presets.Presets.Get(o.Preset);
        var cfg = preset.Vision;
        int grid = cfg.NumPatchesPerSide;
        if (grid % 3 != 0 || grid % 2 != 0) throw new ArgumentException($"preset {o.Preset}: a {grid}×{grid} patch grid does not split into the 3×3 cells and 2×2 quadrants of the synthetic images");
        var device = Runtime.Devices.Resolve(o.Device);
        torch.manual_seed(o.Seed);
        using var tower = new ClipVisionModel(cfg, device);
        int c = cfg.HiddenSize;
        using var colorHead = nn.Linear(c, SyntheticData.ColorClasses, device: device);
        using var shapeHead = nn.Linear(c, SyntheticData.ShapeClasses, device: device);
        using var quadHead = nn.Linear(c, SyntheticData.WordClasses, device: device);
        using var wholeHead = nn.Linear(c, SyntheticData.WordClasses, device: device);
        var named = tower.named_parameters().Select(p => ("tower." + p.name, (Tensor)p.parameter))
            .Concat(colorHead.named_parameters().Select(p => ("color." + p.name, (Tensor)p.parameter)))
            .Concat(shapeHead.named_parameters().Select(p => ("shape." + p.name, (Tensor)p.parameter)))
            .Concat(quadHead.named_parameters().Select(p => ("quad." + p.name, (Tensor)p.parameter)))
            .Concat(wholeHead.named_parameters().Select(p => ("whole." + p.name, (Tensor)p.parameter))).ToList();
        var allParams = tower.parameters().Concat(colorHead.parameters()).Concat(shapeHead.parameters()).Concat(quadHead.parameters()).Concat(wholeHead.parameters()).ToList();
        using var opt = new AdamW(named);
        var procCfg = ClipImageProcessorConfig.ForImageSize(cfg.ImageSize);

        // Images are made once and kept preprocessed: (N, 3, S, S) per kind, labels as (N, regions) long tensors.
        (Tensor Pixels, Tensor A, Tensor B) Make(string kind, int from, int count)
        {
            using var scope = torch.NewDisposeScope();
            var px = new List<Tensor>();
            var a = new List<long>();
            var b = new List<long>();
            for (int i = from; i < from + count; i++)
            {
                var (img, l) = SyntheticData.Scene(kind, o.Seed, i);
                px.Add(ClipImageProcessor.Preprocess(img, ImageAspectMode.Pad, procCfg));
                if (kind == "shapes") { a.AddRange(l.CellColors.Select(v => (long)v)); b.AddRange(l.CellShapes.Select(v => (long)v)); }
                else { a.AddRange(l.QuadrantWords.Select(v => (long)v)); b.Add(l.WholeWord); }
            }
            int ra = kind == "shapes" ? 9 : 4, rb = kind == "shapes" ? 9 : 1;
            return (torch.stack(px).to(device).MoveToOuterDisposeScope(), torch.tensor(a.ToArray(), device: device).view(count, ra).MoveToOuterDisposeScope(),
                    torch.tensor(b.ToArray(), device: device).view(count, rb).MoveToOuterDisposeScope());
        }
        log?.Invoke($"stage 0: making {o.ImagesPerKind} + {o.EvalImagesPerKind} images per kind");
        var shapes = Make("shapes", 0, o.ImagesPerKind);
        var ocr = Make("ocr", 0, o.ImagesPerKind);
        var shapesEval = Make("shapes", o.ImagesPerKind, o.EvalImagesPerKind);
        var ocrEval = Make("ocr", o.ImagesPerKind, o.EvalImagesPerKind);

        Tensor Features(Tensor pixels) => ClipFeatures.Select(tower.ForwardAll(pixels).HiddenStates, preset.SelectLayer); // (B, N, C)
        Tensor Regions(Tensor f, int side) // (B, side², C): mean over each region of the patch grid
        {
            long bsz = f.shape[0];
            var g = f.transpose(1, 2).reshape(bsz, c, grid, grid);                                   // (B, C, G, G)
            return nn.functional.avg_pool2d(g, grid / side).reshape(bsz, c, side * side).transpose(1, 2); // (B, side², C)
        }
        Tensor[] Heads(Tensor sp, Tensor op)
        {
            var fs = Features(sp);
            var fo = Features(op);
            var col = colorHead.forward(Regions(fs, 3));   // (B, 9, 5)
            var shp = shapeHead.forward(Regions(fs, 3));   // (B, 9, 4)
            var quad = quadHead.forward(Regions(fo, 2));   // (B, 4, K)
            var whole = wholeHead.forward(fo.mean(new long[] { 1 }, keepdim: true)); // (B, 1, K)
            return new[] { col, shp, quad, whole };
        }
        // Mean over the labels that apply; a batch in which none applies (e.g. no whole-image ocr sample) contributes 0,
        // where the plain mean would be 0/0 = NaN and poison every weight.
        static Tensor Ce(Tensor logits, Tensor target)
        {
            var t = target.reshape(-1);
            var sum = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[^1]), t, ignore_index: -1, reduction: nn.Reduction.Sum);
            return sum / t.ne(-1).sum().clamp_min(1);
        }

        int half = o.BatchSize / 2, warmup = LrSchedule.WarmupSteps(0.03, o.Steps);
        var rng = new Random(o.Seed);
        double first = double.NaN, last = double.NaN;
        var lastLosses = new List<double>();
        for (int step = 0; step < o.Steps; step++)
        {
            using var scope = torch.NewDisposeScope();
            var si = torch.tensor(Enumerable.Range(0, half).Select(_ => (long)rng.Next(o.ImagesPerKind)).ToArray(), device: device);
            var oi = torch.tensor(Enumerable.Range(0, half).Select(_ => (long)rng.Next(o.ImagesPerKind)).ToArray(), device: device);
            var lg = Heads(shapes.Pixels.index_select(0, si), ocr.Pixels.index_select(0, oi));
            var loss = Ce(lg[0], shapes.A.index_select(0, si)) + Ce(lg[1], shapes.B.index_select(0, si))
                     + Ce(lg[2], ocr.A.index_select(0, oi)) + Ce(lg[3], ocr.B.index_select(0, oi));
            loss.backward();
            Trainer.ClipGradNorm(allParams, 1.0);
            opt.Step(LrSchedule.Cosine(o.Lr, step, o.Steps, warmup));
            using (torch.no_grad()) foreach (var (_, p) in named) p.grad?.zero_();
            double l = loss.item<float>();
            if (step == 0) first = l;
            lastLosses.Add(l);
            if ((step + 1) % 25 == 0 || step + 1 == o.Steps)
            {
                last = lastLosses.Average();
                log?.Invoke($"stage 0: step {step + 1}/{o.Steps} loss {last:F4} ({sw.Elapsed.TotalSeconds:F0} s)");
                lastLosses.Clear();
            }
        }

        // Held-out accuracy of each head, over the labels that apply (−1 excluded).
        double colorAcc, shapeAcc, quadAcc, wholeAcc;
        using (torch.no_grad())
        using (var scope = torch.NewDisposeScope())
        {
            var lg = Heads(shapesEval.Pixels, ocrEval.Pixels);
            static double Acc(Tensor logits, Tensor target)
            {
                var pred = logits.argmax(-1).reshape(-1);
                var t = target.reshape(-1);
                var valid = t.ne(-1);
                long n = valid.sum().item<long>();
                return n == 0 ? double.NaN : (double)pred.eq(t).logical_and(valid).sum().item<long>() / n;
            }
            (colorAcc, shapeAcc, quadAcc, wholeAcc) = (Acc(lg[0], shapesEval.A), Acc(lg[1], shapesEval.B), Acc(lg[2], ocrEval.A), Acc(lg[3], ocrEval.B));
        }
        foreach (var t in new[] { shapes, ocr, shapesEval, ocrEval }) { t.Pixels.Dispose(); t.A.Dispose(); t.B.Dispose(); }

        // Written beside and renamed, so a reader (parallel sweep runs) never sees half a tower.
        var full = Path.GetFullPath(o.OutDir);
        var tmp = full + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        LlavaCheckpoint.SaveVisionTower(tower, tmp);
        var result = new VisionPretrainResult(full, o.Steps, first, last, colorAcc, shapeAcc, quadAcc, wholeAcc, sw.Elapsed.TotalSeconds);
        File.WriteAllText(Path.Combine(tmp, ResultFile), JsonSerializer.Serialize(new { options = o with { OutDir = full }, result }, new JsonSerializerOptions { WriteIndented = true }));
        if (Directory.Exists(full)) Directory.Delete(full, true);
        Directory.Move(tmp, full);
        log?.Invoke($"stage 0: held-out accuracy: cell colour {colorAcc:F3}, cell shape {shapeAcc:F3}, quadrant word {quadAcc:F3}, whole word {wholeAcc:F3}");
        return result;
    }
}
