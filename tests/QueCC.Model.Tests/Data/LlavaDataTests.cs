using System.Text.Json.Nodes;
using QueCC.Model.Clip;
using QueCC.Model.Data;
using QueCC.Model.Llava;
using QueCC.Model.Tests.Training;
using QueCC.Model.Text;
using QueCC.Model.Tests.Text;

namespace QueCC.Model.Tests.Data;

[Collection("training")]
public class LlavaDataTests(TrainingFixture fx)
{
    private string NewDir()
    {
        var d = Path.Combine(fx.Root, "data-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(d);
        RgbImage.Filled(8, 8, 200, 10, 10).SavePng(Path.Combine(d, "a.png"));
        return d;
    }

    private static JsonObject Rec(string id, string? image, params (string From, string Value)[] turns)
    {
        var o = new JsonObject { ["id"] = id, ["conversations"] = new JsonArray(turns.Select(t => (JsonNode)new JsonObject { ["from"] = t.From, ["value"] = t.Value }).ToArray()) };
        if (image is not null) o["image"] = image;
        return o;
    }

    private static string Write(string dir, JsonNode root)
    {
        var p = Path.Combine(dir, "data.json");
        File.WriteAllText(p, root.ToJsonString());
        return p;
    }

    private ChatTokenizer Tok => ChatTokenizer.Load(fx.ModelDir);

    [Fact]
    public void Labels_follow_preprocess_qwen_checked_token_by_token()
    {
        var dir = NewDir();
        // The placeholder written after the question is moved to the front, as LLaVA's preprocess_multimodal does.
        var json = Write(dir, new JsonArray(Rec("r1", "a.png", ("human", "What color?\n<image>"), ("gpt", "red"), ("human", "How many?"), ("gpt", "two"))));
        var tok = Tok;
        var ds = LlavaDataset.Load(json, dir, tok, ConversationStyle.Qwen15Chat, visualTokens: 4, maxLength: 512);
        var ex = Assert.Single(ds.Examples);

        var (expectedIds, expectedLabels) = QwenReference.Encode(tok, ("user", "<image>\nWhat color?"), ("assistant", "red"), ("user", "How many?"), ("assistant", "two"));
        Assert.Equal(expectedIds, ex.Ids);
        Assert.Equal(expectedLabels, ex.Labels);
        Assert.Equal(expectedIds.Count - 1 + 4, ex.Length);
        // The default rule ends the query with the first user turn.
        Assert.Equal(tok.Encode("What color?"), ex.QueryIds);
        // The authors' rule: decoded text after the image from the first "\n" to "ASSISTANT" (absent in ChatML, so to the end minus one character).
        var fork = Assert.Single(LlavaDataset.Load(json, dir, tok, ConversationStyle.Qwen15Chat, visualTokens: 4, maxLength: 512, queryRule: QueryRule.AuthorsFork).Examples);
        Assert.Equal(tok.Encode("What color?\nassistant\nred\nuser\nHow many?\nassistant\ntwo"), fork.QueryIds);
        Assert.Equal(expectedLabels.Skip(1).Count(l => l != -100), ex.SupervisedTokens);
    }

    [Fact]
    public void Collated_batch_keeps_labels_through_the_visual_splice_and_pads_with_minus_100()
    {
        using var _ = TorchSharp.torch.NewDisposeScope();
        using var model = LlavaCheckpoint.Load(fx.ModelDir);
        var ds = LlavaDataset.Load(fx.DataJson, fx.DataDir, model.Tokenizer!, model.Config.Style, model.VisualTokenCount, 256);
        var exs = ds.Examples.Take(3).ToList();
        var batch = LlavaDataset.Collate(model, exs);
        Assert.Equal(exs.Max(e => e.Length), (int)batch.Labels.shape[1]);
        for (int s = 0; s < 3; s++)
        {
            var labels = batch.Labels[s].data<long>().Select(x => (int)x).ToList();
            int at = exs[s].Ids.IndexOf(LlavaModel.ImageTokenIndex);
            var expected = exs[s].Labels.Take(at).Concat(Enumerable.Repeat(-100, 4)).Concat(exs[s].Labels.Skip(at + 1))
                .Concat(Enumerable.Repeat(-100, labels.Count - exs[s].Length));
            Assert.Equal(expected, labels);
            Assert.Equal(exs[s].Length, (int)batch.AttentionMask[s].sum().item<long>());
        }
    }

    [Fact]
    public void Truncation_cuts_at_max_length_and_skips_a_record_left_without_answer()
    {
        var dir = NewDir();
        var longAnswer = string.Join(" ", Enumerable.Repeat("blue", 40));
        var json = Write(dir, new JsonArray(Rec("long", "a.png", ("human", "<image>\nWhat?"), ("gpt", longAnswer))));
        var tok = Tok;
        var full = LlavaDataset.Load(json, dir, tok, ConversationStyle.Qwen15Chat, 4, 2048).Examples[0];
        int at = full.Ids.IndexOf(LlavaModel.ImageTokenIndex);
        int max = at + 4 + 5; // five tokens after the visual ones fit
        var cut = LlavaDataset.Load(json, dir, tok, ConversationStyle.Qwen15Chat, 4, max).Examples[0];
        Assert.Equal(max, cut.Length);
        Assert.Equal(full.Ids.Take(max - 4 + 1), cut.Ids);
        Assert.Equal(full.Labels.Take(max - 4 + 1), cut.Labels);

        // Cut before the image: nothing of the sample is left to learn from.
        var logs = new List<string>();
        var e = Assert.Throws<UserInputException>(() => LlavaDataset.Load(json, dir, tok, ConversationStyle.Qwen15Chat, 4, at + 3, log: logs.Add));
        Assert.Contains("no usable LLaVA records", e.Message);
        Assert.Contains("max length", e.Message);
    }

    [Fact]
    public void Malformed_records_are_skipped_with_id_and_reason_and_strict_stops()
    {
        var dir = NewDir();
        var json = Write(dir, new JsonArray(
            Rec("good", "a.png", ("human", "<image>\nQ?"), ("gpt", "A")),
            Rec("noimagefile", "missing.png", ("human", "<image>\nQ?"), ("gpt", "A")),
            Rec("noassistant", "a.png", ("human", "<image>\nQ?")),
            Rec("badrole", "a.png", ("human", "<image>\nQ?"), ("robot", "A")),
            Rec("twoimages", "a.png", ("human", "<image>\nQ? <image>"), ("gpt", "A")),
            Rec("noimage", null, ("human", "Q?"), ("gpt", "A")),
            JsonValue.Create(5),
            new JsonObject { ["id"] = "noconv", ["image"] = "a.png" }));
        var logs = new List<string>();
        var ds = LlavaDataset.Load(json, dir, Tok, ConversationStyle.Qwen15Chat, 4, 256, log: logs.Add);
        Assert.Equal("good", Assert.Single(ds.Examples).Id);
        Assert.Equal(7, ds.Skipped.Count);
        Assert.Equal(7, logs.Count);
        var reasons = ds.Skipped.ToDictionary(s => s.Id, s => s.Reason);
        Assert.Contains("image file not found", reasons["noimagefile"]);
        Assert.Contains("no assistant", reasons["noassistant"]);
        Assert.Contains("'robot'", reasons["badrole"]);
        Assert.Contains("2 <image> placeholders", reasons["twoimages"]);
        Assert.Contains("field 'image'", reasons["noimage"]);
        Assert.Contains("expected an object", reasons["#6"]);
        Assert.Contains("field 'conversations'", reasons["noconv"]);
        Assert.Contains(logs, l => l.Contains("noassistant") && l.Contains(json));

        var e = Assert.Throws<UserInputException>(() => LlavaDataset.Load(json, dir, Tok, ConversationStyle.Qwen15Chat, 4, 256, strict: true));
        Assert.Contains("id noimagefile", e.Message);
        Assert.Contains("strict", e.Message);
    }

    [Theory]
    [InlineData("{\"id\": 1}", "found object")]
    [InlineData("[{\"id\": 1,", "not valid JSON")]
    [InlineData("hello", "not valid JSON")]
    public void A_file_that_is_not_LLaVA_JSON_is_a_one_line_error_naming_the_file(string text, string expected)
    {
        var dir = NewDir();
        var p = Path.Combine(dir, "x.json");
        File.WriteAllText(p, text);
        var e = Assert.Throws<UserInputException>(() => LlavaJson.Read(p, dir));
        Assert.StartsWith(p + ": not LLaVA JSON", e.Message);
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Data_order_is_a_seeded_permutation_and_grouping_sorts_each_optimizer_step_by_length()
    {
        var lengths = Enumerable.Range(0, 230).Select(i => (i * 37) % 101).ToList();
        var a = DataOrder.Epoch(lengths, 5, 0, 8, false);
        Assert.Equal(Enumerable.Range(0, 230), a.OrderBy(i => i));
        Assert.Equal(a, DataOrder.Epoch(lengths, 5, 0, 8, false));
        Assert.NotEqual(a, DataOrder.Epoch(lengths, 5, 1, 8, false));
        Assert.NotEqual(a, DataOrder.Epoch(lengths, 6, 0, 8, false));
        var g = DataOrder.Epoch(lengths, 5, 0, 8, true);
        Assert.Equal(Enumerable.Range(0, 230), g.OrderBy(i => i));
        for (int m = 0; m < 230; m += 8) // mega-batch = one optimizer step (LLaVA's get_length_grouped_indices)
        {
            var chunk = g.Skip(m).Take(8).ToList();
            Assert.Equal(a.Skip(m).Take(8).OrderBy(i => i), chunk.OrderBy(i => i)); // same members as the plain shuffle's step
            Assert.Equal(chunk.Select(i => lengths[i]).OrderByDescending(l => l), chunk.Select(i => lengths[i]));
        }
    }

    [Fact]
    public void Grouping_by_length_keeps_every_length_class_spread_over_the_epoch()
    {
        // Four question types whose lengths differ (as in the synthetic sets): with 50 steps sorted at once the last
        // steps of an epoch held only the shortest type; per step, the last quarter of the epoch holds all four.
        var lengths = Enumerable.Range(0, 512).Select(i => 40 + i % 4).ToList();
        var g = DataOrder.Epoch(lengths, 0, 0, 8, true);
        var lastQuarter = g.Skip(384).Select(i => lengths[i]).ToHashSet();
        Assert.Equal(new HashSet<int> { 40, 41, 42, 43 }, lastQuarter);
    }
}

[Collection("training")]
public class SyntheticDataTests(TrainingFixture fx)
{
    private static Dictionary<string, byte[]> Files(string dir) =>
        Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).ToDictionary(f => Path.GetRelativePath(dir, f), File.ReadAllBytes);

    [Theory]
    [InlineData("shapes")]
    [InlineData("ocr")]
    public void Same_seed_gives_the_same_files_and_every_record_is_valid_LLaVA(string kind)
    {
        string a = Path.Combine(fx.Root, $"syn-{kind}-a"), b = Path.Combine(fx.Root, $"syn-{kind}-b"), c = Path.Combine(fx.Root, $"syn-{kind}-c");
        SyntheticData.Make(kind, 12, 1, 3, a);
        SyntheticData.Make(kind, 12, 1, 3, b);
        SyntheticData.Make(kind, 12, 2, 0, c);
        var fa = Files(a);
        Assert.Equal(12 + 3 + 3, fa.Count); // images, data.json, eval.json, eval-questions.jsonl
        var fb = Files(b);
        Assert.Equal(fa.Keys.Order(), fb.Keys.Order());
        foreach (var (k, v) in fa) Assert.True(v.AsSpan().SequenceEqual(fb[k]), k);
        Assert.False(fa["data.json"].AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(c, "data.json"))));
        Assert.Empty(Directory.EnumerateFiles(a, "*.tmp", SearchOption.AllDirectories));

        var (records, skipped) = LlavaJson.Read(Path.Combine(a, "data.json"), a);
        Assert.Equal(12, records.Count);
        Assert.Empty(skipped);
        var img = RgbImage.Load(records[0].ImagePath);
        Assert.Equal(SyntheticData.ImageSize, img.Width);
        Assert.Equal(3, LlavaJson.Read(Path.Combine(a, "eval.json"), a).Records.Count);
    }

    [Fact]
    public void Shapes_count_answers_match_the_coloured_blobs_in_the_image()
    {
        var dir = Path.Combine(fx.Root, "syn-count");
        SyntheticData.Make("shapes", 40, 3, 0, dir);
        var words = new[] { "zero", "one", "two", "three", "four" };
        int checkedCount = 0;
        foreach (var r in LlavaJson.Read(Path.Combine(dir, "data.json"), dir).Records.Where(r => r.Turns[0].User.Contains("How many")))
        {
            // Independent truth: count the occupied cells of the 3×3 grid by their non-white centre pixel.
            var img = RgbImage.Load(r.ImagePath);
            int n = 0;
            for (int row = 0; row < 3; row++)
                for (int col = 0; col < 3; col++)
                {
                    int x = (int)((col + 0.5) * img.Width / 3), y = (int)((row + 0.55) * img.Height / 3);
                    if (img[y, x, 0] + img[y, x, 1] + img[y, x, 2] < 600) n++;
                }
            Assert.Equal(words[n], r.Turns[0].Assistant);
            checkedCount++;
        }
        Assert.True(checkedCount >= 3, $"only {checkedCount} count questions");
    }

    [Fact]
    public void Unknown_kind_is_rejected_with_the_choices() =>
        Assert.Contains("shapes, ocr", Assert.Throws<UserInputException>(() => SyntheticData.Make("dogs", 1, 0, 0, fx.Out("none"))).Message);
}
