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
