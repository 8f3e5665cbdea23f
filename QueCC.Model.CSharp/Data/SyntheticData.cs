using System.Text.Json;
using System.Text.Json.Nodes;
using QueCC.Model.Clip;
using SkiaSharp;

namespace QueCC.Model.Data;

/// <summary>
/// Synthetic LLaVA-format benchmarks with known answers, deterministic by seed (each sample draws from its own
/// generator seeded by (seed, split, index), so a sample does not depend on how many were asked for):
/// <c>shapes</c> — coloured circles/squares/triangles in a 3×3 grid, questions on colour, shape, count and left/right;
/// <c>ocr</c> — rendered characters (digits and capitals), "what is written" over the whole image (one large glyph) or in one
/// quadrant (two to four glyphs, one per quadrant).
/// Each record carries <c>question_type</c> (<see cref="QuestionTypes"/>), which LLaVA readers ignore and the evaluation's
/// per-type accuracy uses.
/// </summary>
public static class SyntheticData
{
    /// <summary>Side of the generated images; the CLIP preprocessing resizes them to the tower's size (48 for tiny, 96 for small).</summary>
    public const int ImageSize = 64;
    public static readonly string[] Kinds = { "shapes", "ocr" };
    /// <summary>The eval split as a LLaVA questions file with "answer" and "category" per line.</summary>
    public const string EvalQuestionsFile = "eval-questions.jsonl";
    public static readonly string[] QuestionTypes = { "color", "shape", "count", "position", "ocr_whole", "ocr_quadrant" };

    private static readonly (string Name, SKColor Color)[] Colors =
    {
        ("red", new SKColor(220, 30, 30)), ("green", new SKColor(30, 170, 40)), ("blue", new SKColor(30, 60, 220)), ("yellow", new SKColor(235, 200, 20)),
    };
    private static readonly string[] Shapes = { "circle", "square", "triangle" };
    private static readonly string[] CountWords = { "zero", "one", "two", "three", "four" };
    /// <summary>
    /// What the ocr images show: single characters, each its own answer. Glyphs rather than words because the tiny tower
    /// (2-pixel patches on a 48-pixel image) could not read the earlier 3-letter words and 2-digit numbers at all (stage 0's
    /// whole-image word head stayed at chance, 0.015; docs/miniature-world.md §5), which left the ocr family untrainable.
    /// </summary>
    public static readonly string[] Glyphs = { "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "A", "E", "H", "K", "R", "X" };
    private static readonly string[] Quadrants = { "top-left", "top-right", "bottom-left", "bottom-right" };

    /// <summary>
    /// Writes <paramref name="count"/> training records to <c>outDir/data.json</c> (and <paramref name="evalCount"/> held-out
    /// records to <c>outDir/eval.json</c> and, as questions for <c>quecc eval</c>, <c>outDir/eval-questions.jsonl</c>) with PNGs under <c>outDir/images/</c>; image paths in the JSON are relative to
    /// <paramref name="outDir"/>. Every file is written atomically. Returns the path of data.json.
    /// </summary>
    public static string Make(string kind, int count, int seed, int evalCount, string outDir)
    {
        var k = kind.Trim().ToLowerInvariant();
        if (!Kinds.Contains(k)) throw new UserInputException($"synthetic data kind '{kind}': expected one of {string.Join(", ", Kinds)}");
        if (count < 1) throw new UserInputException($"count {count}: expected at least 1");
        if (evalCount < 0) throw new UserInputException($"eval count {evalCount}: expected 0 or more");
        Directory.CreateDirectory(Path.Combine(outDir, "images"));
        using var typeface = LoadFont();
        string Split(string split, int n)
        {
            var arr = new JsonArray();
            for (int i = 0; i < n; i++)
            {
                var rng = new Random(HashCode(seed, split == "train" ? 0 : 1, i));
                var rel = $"images/{k}_{split}_{i:D6}.png";
                var (png, question, answer, type, _) = k == "shapes" ? ShapesSample(rng) : OcrSample(rng, typeface);
                AtomicFile.WriteAllBytes(Path.Combine(outDir, rel), png);
                arr.Add(new JsonObject
                {
                    ["id"] = $"{k}-{split}-{i:D6}",
                    ["image"] = rel,
                    ["question_type"] = type,
                    ["conversations"] = new JsonArray(
                        new JsonObject { ["from"] = "human", ["value"] = "<image>\n" + question },
                        new JsonObject { ["from"] = "gpt", ["value"] = answer }),
                });
            }
            var path = Path.Combine(outDir, split == "train" ? "data.json" : "eval.json");
            AtomicFile.WriteAllText(path, arr.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            if (split == "eval")
            {
                // The same split in LLaVA's question format for `quecc eval`, with the truth and type it grades against.
                var lines = arr.Select(r => new JsonObject
                {
                    ["question_id"] = r!["id"]!.GetValue<string>(),
                    ["image"] = r["image"]!.GetValue<string>(),
                    ["text"] = r["conversations"]![0]!["value"]!.GetValue<string>().Replace("<image>\n", ""),
                    ["answer"] = r["conversations"]![1]!["value"]!.GetValue<string>(),
                    ["category"] = r["question_type"]!.GetValue<string>(),
                }.ToJsonString());
                AtomicFile.WriteAllText(Path.Combine(outDir, EvalQuestionsFile), string.Join("\n", lines) + "\n");
            }
            return path;
        }
        var data = Split("train", count);
        if (evalCount > 0) Split("eval", evalCount);
        return data;
    }

    /// <summary>
    /// What is where in one image, for stage 0 (pretraining the vision tower on this distribution): shapes → per cell of the
    /// 3×3 grid (row-major) its colour (1…4, 0 = empty) and shape (1…3, 0 = empty); ocr → per quadrant the class of its word
    /// (<see cref="WordClass"/>, 0 = empty) on quadrant images and the class of the single word on whole-image ones.
    /// Labels that do not apply to the image are −1 (arrays of the other kind are empty).
    /// </summary>
    public sealed record SceneLabels(int[] CellColors, int[] CellShapes, int[] QuadrantWords, int WholeWord);

    /// <summary>Number of OCR classes: the <see cref="Glyphs"/>, plus 0 for "empty".</summary>
    public static int WordClasses => Glyphs.Length + 1;
    public const int ColorClasses = 5;
    public const int ShapeClasses = 4;

    /// <summary>1…16 for the <see cref="Glyphs"/> in order.</summary>
    public static int WordClass(string token) =>
        Array.IndexOf(Glyphs, token) is var w and >= 0 ? w + 1 : throw new ArgumentException($"'{token}' is not an ocr glyph");

    /// <summary>
    /// Image <paramref name="index"/> of a third split (neither train nor eval) of <paramref name="kind"/> with its labels:
    /// the images stage 0 trains the tower on.
    /// </summary>
    public static (RgbImage Image, SceneLabels Labels) Scene(string kind, int seed, int index)
    {
        var rng = new Random(HashCode(seed, 2, index));
        var (png, _, _, _, labels) = kind switch
        {
            "shapes" => ShapesSample(rng),
            "ocr" => OcrSample(rng, SceneFont.Value),
            _ => throw new ArgumentException($"synthetic data kind '{kind}': expected one of {string.Join(", ", Kinds)}"),
        };
        var tmp = Path.Combine(Path.GetTempPath(), $"quecc-scene-{Environment.ProcessId}-{Guid.NewGuid():N}.png");
        try { File.WriteAllBytes(tmp, png); return (RgbImage.Load(tmp), labels); }
        finally { File.Delete(tmp); }
    }

    // One typeface for all stage-0 images of a process (a font lookup per image cost more than drawing it).
    private static readonly Lazy<SKTypeface> SceneFont = new(LoadFont);

    // A fixed mix (not string.GetHashCode, which is randomised per process).
    private static int HashCode(int seed, int split, int index)
    {
        unchecked
        {
            ulong h = 1469598103934665603UL;
            foreach (var v in new[] { seed, split, index }) { h ^= (uint)v; h *= 1099511628211UL; h ^= h >> 29; }
            return (int)(h & 0x7fffffff);
        }
    }

    private static SKTypeface LoadFont()
    {
        var tf = SKTypeface.FromFamilyName("DejaVu Sans");
        if (tf is not null && tf.FamilyName.Contains("DejaVu")) return tf;
        const string file = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
        return (File.Exists(file) ? SKTypeface.FromFile(file) : null) ?? tf
            ?? throw new UserInputException($"{file}: the DejaVu Sans font is needed for the ocr data (Debian package fonts-dejavu-core)");
    }

    private static byte[] Encode(SKBitmap bmp)
    {
        using var data = bmp.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    private static (byte[] Png, string Question, string Answer, string Type, SceneLabels Labels) ShapesSample(Random rng)
    {
        int n = rng.Next(2, 5);
        var cells = Enumerable.Range(0, 9).ToArray();
        rng.Shuffle(cells);
        var objs = new List<(int Color, int Shape, int Row, int Col)>();
        for (int i = 0; i < n; i++) objs.Add((rng.Next(Colors.Length), rng.Next(Shapes.Length), cells[i] / 3, cells[i] % 3));

        using var bmp = new SKBitmap(ImageSize, ImageSize, SKColorType.Rgba8888, SKAlphaType.Premul);
        using (var canvas = new SKCanvas(bmp))
        {
            canvas.Clear(SKColors.White);
            float cell = ImageSize / 3f;
            foreach (var (c, s, r, col) in objs)
            {
                using var paint = new SKPaint { Color = Colors[c].Color, IsAntialias = true, Style = SKPaintStyle.Fill };
                float cx = (col + 0.5f) * cell, cy = (r + 0.5f) * cell, h = cell * 0.38f;
                switch (Shapes[s])
                {
                    case "circle": canvas.DrawCircle(cx, cy, h, paint); break;
                    case "square": canvas.DrawRect(cx - h, cy - h, 2 * h, 2 * h, paint); break;
                    default:
                        using (var path = new SKPath())
                        {
                            path.MoveTo(cx, cy - h); path.LineTo(cx + h, cy + h); path.LineTo(cx - h, cy + h); path.Close();
                            canvas.DrawPath(path, paint);
                        }
                        break;
                }
            }
        }
        var labels = new SceneLabels(new int[9], new int[9], Array.Empty<int>(), -1);
        foreach (var (c, sh, r, col) in objs) { labels.CellColors[r * 3 + col] = c + 1; labels.CellShapes[r * 3 + col] = sh + 1; }
        string Name(int i) => $"{Colors[objs[i].Color].Name} {Shapes[objs[i].Shape]}";
        bool UniqueShape(int i) => objs.Count(o => o.Shape == objs[i].Shape) == 1;
        bool UniqueColor(int i) => objs.Count(o => o.Color == objs[i].Color) == 1;
        bool UniqueBoth(int i) => objs.Count(o => o.Shape == objs[i].Shape && o.Color == objs[i].Color) == 1;
        // Question families in turn until one applies to this image (count always does).
        foreach (var family in new[] { rng.Next(4), rng.Next(4), 2 })
        {
            int a = rng.Next(n);
            switch (family)
            {
                case 0 when UniqueShape(a):
                    return (Encode(bmp), $"What color is the {Shapes[objs[a].Shape]}?", Colors[objs[a].Color].Name, "color", labels);
                case 1 when UniqueColor(a):
                    return (Encode(bmp), $"What shape is the {Colors[objs[a].Color].Name} object?", Shapes[objs[a].Shape], "shape", labels);
                case 2:
                    return (Encode(bmp), "How many shapes are there?", CountWords[n], "count", labels);
                case 3:
                    int b = Enumerable.Range(0, n).FirstOrDefault(j => j != a && objs[j].Col != objs[a].Col && UniqueBoth(j), -1);
                    if (b < 0 || !UniqueBoth(a)) break;
                    return (Encode(bmp), $"Is the {Name(a)} left or right of the {Name(b)}?", objs[a].Col < objs[b].Col ? "left" : "right", "position", labels);
            }
        }
        throw new InvalidOperationException("unreachable: the count question always applies");
    }

    private static string Token(Random rng) => Glyphs[rng.Next(Glyphs.Length)];

    private static (byte[] Png, string Question, string Answer, string Type, SceneLabels Labels) OcrSample(Random rng, SKTypeface typeface)
    {
        using var bmp = new SKBitmap(ImageSize, ImageSize, SKColorType.Rgba8888, SKAlphaType.Premul);
        using var canvas = new SKCanvas(bmp);
        canvas.Clear(SKColors.White);
        using var paint = new SKPaint { Typeface = typeface, IsAntialias = true, Color = SKColors.Black };
        void Draw(string text, float x0, float y0, float w, float h, float maxSize)
        {
            // A size in [0.75, 1] × maxSize shrunk until it fits the box, then a random offset inside it.
            paint.TextSize = (float)(maxSize * (0.75 + 0.25 * rng.NextDouble()));
            while (paint.TextSize > 7 && (paint.MeasureText(text) > w - 2 || paint.TextSize > h - 2)) paint.TextSize -= 1;
            float tw = paint.MeasureText(text);
            var m = paint.FontMetrics;
            float th = m.Descent - m.Ascent;
            float x = x0 + 1 + (float)rng.NextDouble() * Math.Max(0, w - 2 - tw);
            float y = y0 + 1 + (float)rng.NextDouble() * Math.Max(0, h - 2 - th) - m.Ascent;
            canvas.DrawText(text, x, y, paint);
        }
        if (rng.Next(2) == 0)
        {
            var word = Token(rng);
            Draw(word, 0, 0, ImageSize, ImageSize, 52);
            canvas.Flush();
            return (Encode(bmp), "What is written in the image?", word, "ocr_whole", new SceneLabels(Array.Empty<int>(), Array.Empty<int>(), new[] { -1, -1, -1, -1 }, WordClass(word)));
        }
        var words = Enumerable.Range(0, 4).Select(_ => Token(rng)).ToArray();
        int shown = rng.Next(2, 5);
        var quads = Enumerable.Range(0, 4).ToArray();
        rng.Shuffle(quads);
        float half = ImageSize / 2f;
        for (int i = 0; i < shown; i++) Draw(words[quads[i]], quads[i] % 2 * half, quads[i] / 2 * half, half, half, 30);
        canvas.Flush();
        int asked = quads[rng.Next(shown)];
        var quadWords = new int[4];
        for (int i = 0; i < shown; i++) quadWords[quads[i]] = WordClass(words[quads[i]]);
        return (Encode(bmp), $"What is written in the {Quadrants[asked]}?", words[asked], "ocr_quadrant", new SceneLabels(Array.Empty<int>(), Array.Empty<int>(), quadWords, -1));
    }
}
