module QueCC.Experiments.Tests.CliTests

open System
open System.IO
open System.Text.Json
open Xunit
open QueCC.Experiments
open QueCC.Experiments.Tests.Helpers

/// Runs the CLI in-process and captures its exit code, stdout and stderr.
let quecc (args: string list) =
    let out, err = new StringWriter(), new StringWriter()
    let oldOut, oldErr = Console.Out, Console.Error
    Console.SetOut out
    Console.SetError err
    try
        let code = Cli.run (Array.ofList args)
        code, out.ToString(), err.ToString()
    finally
        Console.SetOut oldOut
        Console.SetError oldErr

let vr () = repoFile (Path.Combine("data", "paper", "visual_reasoning.csv"))

[<Fact>]
let ``fit --json has the contract's fields`` () =
    let code, out, _ = quecc [ "fit"; "--data"; vr (); "--json" ]
    Assert.Equal(0, code)
    let j = JsonDocument.Parse(out).RootElement
    for field in [ "method"; "alpha"; "beta"; "A"; "D"; "sse"; "r2"; "n" ] do
        Assert.True(j.TryGetProperty(field, ref Unchecked.defaultof<JsonElement>), field)
    Assert.Equal("grid", j.GetProperty("method").GetString())
    Assert.Equal(28, j.GetProperty("n").GetInt32())
    assertClose 1e-9 0.0747474747 (j.GetProperty("alpha").GetDouble())

[<Fact>]
let ``fit --method continuous --bootstrap --holdout-llm reports intervals and holdout`` () =
    let code, out, _ = quecc [ "fit"; "--data"; vr (); "--method"; "continuous"; "--bootstrap"; "50"; "--holdout-llm"; "7"; "--json" ]
    Assert.Equal(0, code)
    let j = JsonDocument.Parse(out).RootElement
    Assert.Equal("continuous", j.GetProperty("method").GetString())
    let ci = j.GetProperty "ci"
    for p in [ "A"; "alpha"; "beta"; "D" ] do
        let i = ci.GetProperty p
        Assert.True(i.GetProperty("lo").GetDouble() <= i.GetProperty("hi").GetDouble(), p)
    Assert.True(j.GetProperty("holdout").GetProperty("maxAbsRelativeError").GetDouble() < 0.02)

[<Fact>]
let ``fit with grid options and the authors' random subset`` () =
    let code, out, _ = quecc [ "fit"; "--data"; vr (); "--grid-fraction"; "0.2"; "--seed"; "1"; "--grid-d"; "0"; "0.3"; "10"; "--json" ]
    Assert.Equal(0, code)
    Assert.Equal("grid", JsonDocument.Parse(out).RootElement.GetProperty("method").GetString())

[<Fact>]
let ``frontier --json has optimalVisualTokens and the frontier`` () =
    let code, out, _ = quecc [ "frontier"; "--data"; vr (); "--text-tokens"; "50"; "--json" ]
    Assert.Equal(0, code)
    let j = JsonDocument.Parse(out).RootElement
    let v = j.GetProperty("optimalVisualTokens").GetDouble()
    Assert.InRange(v, 10.0, 16.0)
    let f = j.GetProperty "frontier"
    Assert.True(f.GetArrayLength() > 5)
    for field in [ "budget"; "llmParams"; "visualTokens"; "error" ] do
        Assert.True(f[0].TryGetProperty(field, ref Unchecked.defaultof<JsonElement>), field)

[<Fact>]
let ``a bad data file is one line on stderr and exit 1`` () =
    let path = Path.GetTempFileName()
    File.WriteAllText(path, "task,llm_params_b,visual_tokens,score\nt,0.5,1,1.5\n")
    let code, out, err = quecc [ "fit"; "--data"; path ]
    Assert.Equal(1, code)
    Assert.Equal("", out)
    Assert.Equal(1, err.Trim().Split('\n').Length)
    Assert.Contains(path + ":2: score is 1.5", err)

[<Fact>]
let ``an unknown flag is a usage error with exit 2`` () =
    let code, _, err = quecc [ "fit"; "--data"; vr (); "--frobnicate" ]
    Assert.Equal(2, code)
    Assert.Contains("--frobnicate", err)

[<Fact>]
let ``reproduce writes the figures and summaries`` () =
    let dir = Path.Combine(Path.GetTempPath(), "quecc-repro-" + Guid.NewGuid().ToString("N"))
    try
        let code, out, err = quecc [ "reproduce"; "--out"; dir; "--bootstrap"; "40" ]
        Assert.True((code = 0), err)
        let names =
            [ "figure1a_visual_reasoning_q0"; "figure1b_visual_reasoning_q50"; "figure_ocr_q0"; "figure_ocr_q50"; "parity"
              "heatmap_visual_reasoning"; "heatmap_ocr" ]
        for n in names do
            let html = File.ReadAllText(Path.Combine(dir, n + ".html"))
            // Self-contained: plotly.js is embedded, no CDN script.
            Assert.True(html.Length > 1_000_000, n)
            Assert.DoesNotContain("<script src=\"https://cdn", html)
            if Reproduce.findChromium().IsSome then
                Assert.True(File.Exists(Path.Combine(dir, n + ".png")), n + ".png")
        let fig1 = File.ReadAllText(Path.Combine(dir, "figure1a_visual_reasoning_q0.html"))
        Assert.Contains("α = 0.07", fig1)
        Assert.Contains("compute-optimal", fig1)
        let s = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "summary.json"))).RootElement
        let fam = s.GetProperty("families").GetProperty("visual_reasoning")
        let ratio = fam.GetProperty("alphaOverBeta").GetDouble()
        Assert.InRange(ratio, 3.5, 6.0)
        let vstar = fam.GetProperty("optimalVisualTokens")
        Assert.Equal(1.0, vstar[0].GetProperty("optimalVisualTokens").GetDouble())
        Assert.InRange(vstar[1].GetProperty("optimalVisualTokens").GetDouble(), 10.0, 16.0)
        let ocr = s.GetProperty("families").GetProperty("ocr")
        Assert.True(ocr.GetProperty("alphaOverBeta").GetDouble() < 1.0, "OCR: beta > alpha")
        Assert.Contains("Visual reasoning", File.ReadAllText(Path.Combine(dir, "summary.md")))
        Assert.Contains("visual_reasoning", out)
        // Nothing half-written is left behind.
        Assert.Empty(Directory.GetFiles(dir, "*.tmp"))
    finally
        if Directory.Exists dir then Directory.Delete(dir, true)

#if !DEBUG
// The fsi script runs against the Release build output, which the Release test run has just built.
[<Fact>]
let ``scripts/reproduce.fsx runs under dotnet fsi and writes the summary`` () =
    let dir = Path.Combine(Path.GetTempPath(), "quecc-fsx-" + Guid.NewGuid().ToString("N"))
    try
        let script = repoFile (Path.Combine("scripts", "reproduce.fsx"))
        let psi = Diagnostics.ProcessStartInfo("dotnet", [ "fsi"; script; dir; "30" ], RedirectStandardOutput = true, RedirectStandardError = true)
        use p = Diagnostics.Process.Start psi
        let stdout = p.StandardOutput.ReadToEndAsync()
        let stderr = p.StandardError.ReadToEndAsync()
        Assert.True(p.WaitForExit 300_000, "dotnet fsi timed out")
        Assert.True((p.ExitCode = 0), stderr.Result)
        Assert.Contains("visual_reasoning", stdout.Result)
        Assert.True(File.Exists(Path.Combine(dir, "summary.json")))
        Assert.True(File.Exists(Path.Combine(dir, "figure1b_visual_reasoning_q50.html")))
    finally
        if Directory.Exists dir then Directory.Delete(dir, true)
#endif

let tempDir (tag: string) =
    let d = Path.Combine(Path.GetTempPath(), $"quecc-{tag}-" + Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory d |> ignore
    d

/// A 40×30 PNG drawn with SkiaSharp (the same library the model reads images with).
let writePng (path: string) =
    use bmp = new SkiaSharp.SKBitmap(40, 30)
    bmp.Erase(SkiaSharp.SKColor(200uy, 10uy, 10uy))
    use data = bmp.Encode(SkiaSharp.SKEncodedImageFormat.Png, 100)
    File.WriteAllBytes(path, data.ToArray())

[<Fact>]
let ``init-model then generate answers deterministically, and bad inputs are one-line errors`` () =
    let dir = tempDir "model"
    try
        let model = Path.Combine(dir, "m")
        let code, _, err = quecc [ "init-model"; "--preset"; "tiny"; "--compressor"; "quecc"; "--visual-tokens"; "4"; "--out"; model ]
        Assert.True((code = 0), err)
        for f in [ "config.json"; "model.safetensors"; "vocab.json"; "merges.txt" ] do
            Assert.True(File.Exists(Path.Combine(model, f)), f)
        let img = Path.Combine(dir, "red.png")
        writePng img
        let gen seed = quecc [ "generate"; "--model"; model; "--image"; img; "--prompt"; "What colour is it?"; "--max-new-tokens"; "6"; "--temperature"; "0.9"; "--seed"; seed ]
        let c1, a1, e1 = gen "5"
        let c2, a2, _ = gen "5"
        Assert.True((c1 = 0), e1)
        Assert.Equal(0, c2)
        Assert.Equal(a1, a2)
        let bad = Path.Combine(dir, "bad.png")
        File.WriteAllText(bad, "not an image")
        let c3, _, e3 = quecc [ "generate"; "--model"; model; "--image"; bad; "--prompt"; "x" ]
        Assert.Equal(1, c3)
        Assert.Contains("bad.png", e3)
        Assert.Equal(1, e3.Trim().Split('\n').Length)
        let c4, _, e4 = quecc [ "generate"; "--model"; dir; "--image"; img; "--prompt"; "x" ]
        Assert.Equal(1, c4)
        Assert.Contains("config.json", e4)
        let c5, _, e5 = quecc [ "init-model"; "--preset"; "tiny"; "--visual-tokens"; "5"; "--out"; Path.Combine(dir, "m2") ]
        Assert.Equal(1, c5)
        Assert.Contains("visual tokens 5", e5)
    finally
        Directory.Delete(dir, true)

[<Fact>]
let ``compress runs a model's projector on cached features; describe reports its cost`` () =
    let dir = tempDir "compress"
    try
        let model = Path.Combine(dir, "m")
        let code, _, err = quecc [ "init-model"; "--preset"; "tiny"; "--compressor"; "quecc"; "--visual-tokens"; "4"; "--out"; model ]
        Assert.True((code = 0), err)
        let cfg = JsonDocument.Parse(File.ReadAllText(Path.Combine(model, "config.json"))).RootElement
        let geti (k: string) = int64 (cfg.GetProperty(k).GetInt32())
        let width, multi, text, llm = geti "mm_hidden_size", geti "mm_vision_multi_level_size", geti "mm_vision_output_text_embedding_size", geti "hidden_size"
        let tokens = geti "mm_vision_output_token_count"
        let features = Path.Combine(dir, "features.safetensors")
        let t (shape: int64[]) = TorchSharp.torch.randn(shape)
        QueCC.Model.Checkpoints.Safetensors.Write(
            features,
            dict [ "image_features", t [| 2L; tokens; width |]
                   "image_features_multi", t [| 2L; tokens; multi |]
                   "text_features", t [| 2L; 1L; text |] ])
        let out = Path.Combine(dir, "tokens.safetensors")
        let args = [ "compress"; "--projector"; Path.Combine(model, "model.safetensors"); "--config"; Path.Combine(model, "config.json"); "--features"; features; "--out"; out ]
        let c1, o1, e1 = quecc args
        Assert.True((c1 = 0), e1)
        Assert.Contains("image_tokens", o1)
        use f = QueCC.Model.Checkpoints.Safetensors.Open out
        Assert.Equal<int64[]>([| 2L; 4L; llm |], f.Tensors["image_tokens"].Shape)
        // Missing text features for QueCC: an error, and no output file.
        let noText = Path.Combine(dir, "notext.safetensors")
        QueCC.Model.Checkpoints.Safetensors.Write(noText, dict [ "image_features", t [| 2L; tokens; width |]; "image_features_multi", t [| 2L; tokens; multi |] ])
        let out2 = Path.Combine(dir, "tokens2.safetensors")
        let c2, _, e2 = quecc [ "compress"; "--projector"; Path.Combine(model, "model.safetensors"); "--config"; Path.Combine(model, "config.json"); "--features"; noText; "--out"; out2 ]
        Assert.Equal(1, c2)
        Assert.Contains("text_features", e2)
        Assert.False(File.Exists out2)
        let c3, o3, _ = quecc [ "describe"; "--config"; Path.Combine(model, "config.json") ]
        Assert.Equal(0, c3)
        Assert.Contains("0.clip_attn", o3)
        let c4, o4, _ = quecc [ "describe"; "--preset"; "qwen1.5-0.5b"; "--visual-tokens"; "1" ]
        Assert.Equal(0, c4)
        Assert.Contains("463,987,712", o4)
    finally
        Directory.Delete(dir, true)

[<Fact>]
let ``score --benchmark pope --json reports accuracy, precision, recall, F1 and yes-ratio`` () =
    let dir = tempDir "score"
    try
        let answers = Path.Combine(dir, "answers.jsonl")
        let gt = Path.Combine(dir, "gt.jsonl")
        // Truth yes, yes, no, no; answers yes, no, yes, no: TP 1, FN 1, FP 1, TN 1.
        File.WriteAllLines(answers, [ for i, a in [ 1, "Yes, there is."; 2, "No."; 3, "Yes"; 4, "no" ] -> sprintf """{"question_id": %d, "text": "%s"}""" i a ])
        File.WriteAllLines(gt, [ for i, l in [ 1, "yes"; 2, "yes"; 3, "no"; 4, "no" ] -> sprintf """{"question_id": %d, "label": "%s"}""" i l ])
        let code, out, err = quecc [ "score"; "--benchmark"; "pope"; "--answers"; answers; "--annotations"; gt; "--json" ]
        Assert.True((code = 0), err)
        Assert.Contains("\"benchmark\"", out)
        // Accuracy = precision = recall = F1 = yes-ratio = 0.5 for this confusion matrix.
        Assert.Contains("0.5", out)
        let code2, _, err2 = quecc [ "score"; "--benchmark"; "nope"; "--answers"; answers; "--annotations"; gt ]
        Assert.Equal(1, code2)
        Assert.Contains("--benchmark nope", err2)
    finally
        Directory.Delete(dir, true)

[<Fact>]
let ``eval answers a question file with a tiny model`` () =
    let dir = tempDir "eval"
    try
        let model = Path.Combine(dir, "m")
        let code, _, err = quecc [ "init-model"; "--preset"; "tiny"; "--out"; model ]
        Assert.True((code = 0), err)
        writePng (Path.Combine(dir, "a.png"))
        let q = Path.Combine(dir, "q.jsonl")
        File.WriteAllLines(q, [ """{"question_id": "q1", "image": "a.png", "text": "What colour?"}"""; """{"question_id": "q2", "image": "a.png", "text": "Is it red?"}""" ])
        let out = Path.Combine(dir, "answers.jsonl")
        let c1, _, e1 = quecc [ "eval"; "--model"; model; "--questions"; q; "--images"; dir; "--out"; out; "--max-new-tokens"; "4" ]
        Assert.True((c1 = 0), e1)
        let lines = File.ReadAllLines out
        Assert.Equal(2, lines.Length)
        Assert.Contains("\"q1\"", lines[0])
    finally
        Directory.Delete(dir, true)

[<Fact>]
let ``bench latency --json feeds frontier --cost measured, and bad cost models are one-line errors`` () =
    let dir = tempDir "latency"
    try
        let code, out, err = quecc [ "bench"; "latency"; "--preset"; "tiny"; "--visual-tokens"; "1,4"; "--text-tokens"; "5"; "--decode-tokens"; "2"; "--repeats"; "1"; "--json" ]
        Assert.True((code = 0), err)
        let j = JsonDocument.Parse(out).RootElement
        let pts = j.GetProperty("points").EnumerateArray() |> List.ofSeq
        Assert.Equal<int list>([ 1; 4 ], pts |> List.map (fun p -> p.GetProperty("visual_tokens").GetInt32()))
        // The KV cache holds 2 (keys, values) · layers · KV heads · head dim · (Q + V) float32 values after the prefill.
        let c = QueCC.Model.Presets.Presets.Get("tiny").Text
        for p in pts do
            let v = p.GetProperty("visual_tokens").GetInt64()
            Assert.Equal(2L * int64 c.NumHiddenLayers * int64 c.KeyValueHeads * int64 c.HeadDim * (5L + v) * 4L, p.GetProperty("kv_cache_bytes").GetInt64())
            Assert.True(p.GetProperty("prefill_ms").GetDouble() > 0.0)
        let file = Path.Combine(dir, "lat.json")
        File.WriteAllText(file, out)
        let code2, out2, err2 = quecc [ "frontier"; "--data"; vr (); "--text-tokens"; "5"; "--tokens"; "1,2,4"; "--cost"; "measured:" + file; "--json" ]
        Assert.True((code2 = 0), err2)
        let f = JsonDocument.Parse(out2).RootElement
        Assert.Equal("seconds", f.GetProperty("budgetUnit").GetString())
        Assert.NotEmpty(f.GetProperty("frontier").EnumerateArray())
        let code3, _, err3 = quecc [ "frontier"; "--data"; vr (); "--text-tokens"; "5"; "--cost"; "measured:" + file ]
        Assert.Equal(1, code3)
        Assert.Contains("outside the measured visual-token counts", err3)
        let code4, _, err4 = quecc [ "frontier"; "--data"; vr (); "--text-tokens"; "5"; "--cost"; "latency" ]
        Assert.Equal(1, code4)
        Assert.Contains("--cost latency: expected flops, flops+query or measured:FILE", err4)
    finally
        Directory.Delete(dir, true)
