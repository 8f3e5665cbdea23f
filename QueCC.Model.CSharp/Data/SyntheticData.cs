using System.Text.Json;
using System.Text.Json.Nodes;
using SkiaSharp;

namespace QueCC.Model.Data;

/// <summary>
/// Synthetic LLaVA-format benchmarks with known answers, deterministic by seed (each sample draws from its own
/// generator seeded by (seed, split, index), so a sample does not depend on how many were asked for):
/// <c>shapes</c> — coloured circles/squares/triangles in a 3×3 grid, questions on colour, shape, count and left/right;
/// <c>ocr</c> — rendered words/numbers, "what is written" over the whole image or one quadrant.
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
    private static readonly string[] Words = { "cat", "dog", "sun", "red", "blue", "tree", "book", "car", "map", "key", "box", "sky", "yes", "no", "top", "art" };
    private static readonly string[] Quadrants = { "top-left", "top-right", "bottom-left", "bottom-right" };

    /// <summary>
    /// Writes <paramref name="count"/> training records to <c>outDir/data.json</c> (and <paramref name="evalCount"/> held-out
    /// records to <c>outDir/eval.json</c> and, as questions for <c>quecc eval</c>, <c>outDir/eval-questions.jsonl</c>) with PNGs under <c>outDir/images/</c>; image paths in the JSON are relative to
    /// <paramref name="outDir"/>. Every file is written atomically. Returns the path of data.json.
    /// </summary>
    public static string Make(string kind, int count, int seed, int evalCount, string outDir)
    {
        var k = kind.Trim().ToLowerInvariant();
        if (!Kinds.Contains(k)) throw new ArgumentException($"synthetic data kind '{kind}': expected one of {string.Join(", ", Kinds)}");
        if (count < 1) throw new ArgumentException($"count {count}: expected at least 1");
        if (evalCount < 0) throw new ArgumentException($"eval count {evalCount}: expected 0 or more");
        Directory.CreateDirectory(Path.Combine(outDir, "images"));
        using var typeface = LoadFont();
        string Split(string split, int n)
        {
            var arr = new JsonArray();
            for (int i = 0; i < n; i++)
            {
                var rng = new Random(HashCode(seed, split == "train" ? 0 : 1, i));
                var rel = $"images/{k}_{split}_{i:D6}.png";
                var (png, question, answer, type) = k == "shapes" ? ShapesSample(rng) : OcrSample(rng, typeface);
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
            ?? throw new FileNotFoundException($"{file}: the DejaVu Sans font is needed for the ocr data (Debian package fonts-dejavu-core)");
    }

    private static byte[] Encode(SKBitmap bmp)
    {
        using var data = bmp.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    private static (byte[] Png, string Question, string Answer, string Type) ShapesSample(Random rng)
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
                    return (Encode(bmp), $"What color is the {Shapes[objs[a].Shape]}?", Colors[objs[a].Color].Name, "color");
                case 1 when UniqueColor(a):
                    return (Encode(bmp), $"What shape is the {Colors[objs[a].Color].Name} object?", Shapes[objs[a].Shape], "shape");
                case 2:
                    return (Encode(bmp), "How many shapes are there?", CountWords[n], "count");
                case 3:
                    int b = Enumerable.Range(0, n).FirstOrDefault(j => j != a && objs[j].Col != objs[a].Col && UniqueBoth(j), -1);
                    if (b < 0 || !UniqueBoth(a)) break;
                    return (Encode(bmp), $"Is the {Name(a)} left or right of the {Name(b)}?", objs[a].Col < objs[b].Col ? "left" : "right", "position");
            }
        }
        throw new InvalidOperationException("unreachable: the count question always applies");
    }

    private static string Token(Random rng) => rng.Next(3) == 0 ? rng.Next(0, 100).ToString() : Words[rng.Next(Words.Length)];

    private static (byte[] Png, string Question, string Answer, string Type) OcrSample(Random rng, SKTypeface typeface)
    {
        using var bmp = new SKBitmap(ImageSize, ImageSize, SKColorType.Rgba8888, SKAlphaType.Premul);
        using var canvas = new SKCanvas(bmp);
        canvas.Clear(SKColors.White);
        using var paint = new SKPaint { Typeface = typeface, IsAntialias = true, Color = SKColors.Black };
        void Draw(string text, float x0, float y0, float w, float h, float maxSize)
        {
            // The largest size in [minimum, maxSize] that fits the box, then a random offset inside it.
            paint.TextSize = (float)(maxSize * (0.6 + 0.4 * rng.NextDouble()));
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
            Draw(word, 0, 0, ImageSize, ImageSize, 26);
            canvas.Flush();
            return (Encode(bmp), "What is written in the image?", word, "ocr_whole");
        }
        var words = Enumerable.Range(0, 4).Select(_ => Token(rng)).ToArray();
        int shown = rng.Next(2, 5);
        var quads = Enumerable.Range(0, 4).ToArray();
        rng.Shuffle(quads);
        float half = ImageSize / 2f;
        for (int i = 0; i < shown; i++) Draw(words[quads[i]], quads[i] % 2 * half, quads[i] / 2 * half, half, half, 16);
        canvas.Flush();
        int asked = quads[rng.Next(shown)];
        return (Encode(bmp), $"What is written in the {Quadrants[asked]}?", words[asked], "ocr_quadrant");
    }
}
