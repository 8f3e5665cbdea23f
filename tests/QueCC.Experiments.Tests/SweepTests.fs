module QueCC.Experiments.Tests.SweepTests

open System
open System.Diagnostics
open System.IO
open System.Text.Json
open Xunit
open QueCC.Experiments
open QueCC.Experiments.Tests.Helpers
open QueCC.Experiments.Tests.CliTests
open QueCC.Experiments.Tests.TrainingCliTests

[<Fact>]
let ``expansion gives every combination once, in a fixed order with stable ids`` () =
    let runs = Sweep.expand Sweep.mini
    Assert.Equal(4 * 2 * 4 * 2 * 3, runs.Length)
    Assert.Equal<int list>([ 0 .. runs.Length - 1 ], runs |> List.map (fun r -> r.Index))
    Assert.Equal(runs.Length, runs |> List.map (fun r -> r.Id) |> List.distinct |> List.length)
    Assert.Equal("shapes_sweep-xs_quecc_v1_s0", runs[0].Id)
    // Seeds outermost: the first 64 runs are seed 0's whole grid (both families, every size, compressor and V).
    Assert.All(runs |> List.take 64, fun r -> Assert.Equal(0, r.Seed))
    Assert.Equal(64, runs |> List.take 64 |> List.map (fun r -> r.Task, r.Llm, r.Compressor, r.VisualTokens) |> List.distinct |> List.length)
    Assert.Equal<string list>(runs |> List.map (fun r -> r.Id), Sweep.expand Sweep.mini |> List.map (fun r -> r.Id))

/// The study's LLM sizes span a range a law can be fitted over; smoke is a CI check of the pipeline and its target
/// (two sizes, 4×), not a study.
[<Fact>]
let ``the mini study's LLM sizes span at least 8x in parameters`` () =
    let ns = Sweep.mini.Llms |> List.map Sweep.llmParams
    Assert.True(float (List.max ns) / float (List.min ns) >= 8.0)
    let smoke = Sweep.smoke.Llms |> List.map Sweep.llmParams
    Assert.True(List.max smoke > List.min smoke, "smoke compares two LLM sizes")

[<Fact>]
let ``a sweep spec round-trips through JSON, and bad specs are one-line errors`` () =
    Assert.Equal(Sweep.mini, Sweep.parseSpec "mini.json" (Sweep.toJson Sweep.mini))
    assertInputError [ "s.json"; "visual_tokens 5" ] (fun () -> Sweep.parseSpec "s.json" """{"visual_tokens": [1, 5]}""")
    assertInputError [ "s.json"; "task \"maps\"" ] (fun () -> Sweep.parseSpec "s.json" """{"tasks": ["maps"]}""")
    assertInputError [ "s.json"; "llm \"qwen1.5-7b\"" ] (fun () -> Sweep.parseSpec "s.json" """{"llms": ["qwen1.5-7b"]}""")
    assertInputError [ "s.json"; "not valid JSON" ] (fun () -> Sweep.parseSpec "s.json" "{")

[<Fact>]
let ``short answers match on their first words`` () =
    Assert.True(Sweep.answerMatches "two" "Two.")
    Assert.True(Sweep.answerMatches "two" "two shapes")
    Assert.True(Sweep.answerMatches "top left" "top left corner")
    Assert.False(Sweep.answerMatches "two" "three")
    Assert.False(Sweep.answerMatches "top left" "top")
    Assert.False(Sweep.answerMatches "two" "")

[<Fact>]
let ``results.csv is in the fitter's schema`` () =
    let run = (Sweep.expand Sweep.smoke)[0]
    let ok: Sweep.RunResult = { Run = run; LlmParams = 25_760L; Score = Some 0.25; Baselines = None; Error = None; Seconds = 1.0 }
    let failed = { ok with Run = (Sweep.expand Sweep.smoke)[1]; Score = None; Error = Some "boom" }
    let csv = Sweep.resultsCsv [ ok; failed ]
    let obs = Data.parseCsv "results.csv" csv
    let o = List.exactlyOne obs
    Assert.Equal(2.576e-5, o.LlmParamsB, 12)
    Assert.Equal(0.75, o.Error, 12)
    Assert.Equal<string>("quecc", o.Extra["compressor"])
    Assert.Equal<string>(run.Id, o.Extra["run_id"])

let tinySpec =
    """{"name": "tiny-test", "llms": ["sweep-xs", "sweep-m"], "compressors": ["quecc"], "visual_tokens": [1, 16], "tasks": ["shapes"], "seeds": [0],
        "training": {"train_samples": 16, "eval_samples": 4, "pretrain_steps": 2, "finetune_steps": 2, "batch_size": 4, "max_new_tokens": 2,
                     "vision_steps": 2, "vision_images": 8}}"""

[<Fact>]
let ``a local sweep runs every run, records a failure without stopping, skips finished runs and fits the results`` () =
    let dir = tempDir "sweep"
    try
        let spec = Path.Combine(dir, "tiny.json")
        File.WriteAllText(spec, tinySpec)
        let out = Path.Combine(dir, "out")
        // Sabotage one run: a corrupt model config where its initial model goes.
        let broken = Path.Combine(out, "runs", "shapes_sweep-m_quecc_v1_s0", "init")
        Directory.CreateDirectory broken |> ignore
        File.WriteAllText(Path.Combine(broken, "config.json"), "{ not json")
        let first = runToEnd [ "sweep"; "--preset"; spec; "--out"; out; "--jobs"; "2" ]
        Assert.Contains("3/4 runs finished, 1 failed", first)
        let rows = File.ReadAllLines(Path.Combine(out, "results.csv"))
        Assert.Equal(Sweep.resultsHeader, rows[0])
        Assert.Equal(4, rows.Length) // header + 3 finished runs
        let failed = File.ReadAllText(Path.Combine(out, "runs", "shapes_sweep-m_quecc_v1_s0", "result.json"))
        Assert.Contains("\"status\":\"failed\"", failed)
        let ok = JsonDocument.Parse(File.ReadAllText(Path.Combine(out, "runs", "shapes_sweep-xs_quecc_v1_s0", "result.json"))).RootElement
        for field in [ "score"; "blind_score"; "majority_score" ] do
            Assert.True(ok.GetProperty(field).GetDouble() >= 0.0, field)
        Assert.Equal(JsonValueKind.Object, ok.GetProperty("by_type").ValueKind)
        let report = File.ReadAllText(Path.Combine(out, "report.html"))
        Assert.Contains("shapes_sweep-m_quecc_v1_s0", report)
        Assert.Contains("failed", report)
        // Repair and run again: only the failed run is redone.
        Directory.Delete(broken, true)
        let second = runToEnd [ "sweep"; "--preset"; spec; "--out"; out ]
        Assert.Contains("4 runs, 1 to do (3 finished before)", second)
        Assert.Contains("4/4 runs finished, 0 failed", second)
        let third = runToEnd [ "sweep"; "--preset"; spec; "--out"; out ]
        Assert.Contains("0 to do", third)
        // quecc fit and frontier read results.csv directly.
        let code, outText, err = quecc [ "fit"; "--data"; Path.Combine(out, "results.csv"); "--task"; "shapes"; "--json" ]
        Assert.True((code = 0), err)
        Assert.Equal(4, JsonDocument.Parse(outText).RootElement.GetProperty("n").GetInt32())
        let code2, _, err2 = quecc [ "frontier"; "--data"; Path.Combine(out, "results.csv"); "--task"; "shapes"; "--text-tokens"; "50"; "--json" ]
        Assert.True((code2 = 0), err2)
    finally
        Directory.Delete(dir, true)

/// Issue 11's smoke target, run the way a user runs it on one machine (`quecc sweep --preset smoke --jobs 2`): the
/// largest LLM at the largest token count must answer the held-out shapes questions at least 15 points better than
/// the same model does with every image replaced by a grey one. A model that ignores its image scores its blind
/// accuracy (margin 0), as every model before stage 0 did, so this fails if the image stops being used.
[<Fact>]
let ``the smoke sweep's largest LLM at its largest token count answers from its image`` () =
    let dir = tempDir "smoke"
    try
        let out = Path.Combine(dir, "out")
        let runs = Sweep.expand Sweep.smoke
        let text = runToEnd [ "sweep"; "--preset"; "smoke"; "--out"; out; "--jobs"; "2" ]
        Assert.Contains(sprintf "%d/%d runs finished, 0 failed" runs.Length runs.Length, text)
        let largest = Sweep.smoke.Llms |> List.maxBy Sweep.llmParams
        let v = List.max Sweep.smoke.VisualTokens
        let run = runs |> List.find (fun r -> r.Task = "shapes" && r.Llm = largest && r.VisualTokens = v)
        let r = JsonDocument.Parse(File.ReadAllText(Path.Combine(out, "runs", run.Id, "result.json"))).RootElement
        let score, blind = r.GetProperty("score").GetDouble(), r.GetProperty("blind_score").GetDouble()
        Assert.True(score - blind >= 0.15, sprintf "%s: accuracy %.3f, blind %.3f: less than 15 points apart" run.Id score blind)
        Assert.True(File.Exists(Path.Combine(out, "report.html")))
    finally
        Directory.Delete(dir, true)

let private sh (cmd: string) =
    let psi = ProcessStartInfo("bash", [ "-c"; cmd ], RedirectStandardOutput = true, RedirectStandardError = true)
    use p = Process.Start psi
    let o = p.StandardOutput.ReadToEndAsync()
    let e = p.StandardError.ReadToEndAsync()
    p.WaitForExit()
    p.ExitCode, o.Result + e.Result

/// The smoke sweep as a Slurm job array on a real single-node Slurm (munge + slurmctld + slurmd on localhost,
/// started by scripts/slurm/start-local-slurm.sh, which installs Debian's slurm-wlm when missing; needs root,
/// as CI has). Set QUECC_SKIP_SLURM=1 to leave it out on a machine where that cannot be done.
/// (Skipped until 2026-12-03: 2 of 8 array tasks ended without a result and without a trace in their log. The suspected
/// cause is the silent native crash of `train` while writing checkpoints — a finalized temporary under a libtorch
/// call, fixed in Safetensors.Write — which every run's checkpoints can hit and which leaves nothing behind.)
[<Fact>]
let ``the smoke sweep runs as a Slurm job array and collects into results and a report`` () =
    if Environment.GetEnvironmentVariable "QUECC_SKIP_SLURM" <> "1" then
        let code, log = sh ("bash " + repoFile (Path.Combine("scripts", "slurm", "start-local-slurm.sh")))
        Assert.True((code = 0), log)
        let dir = tempDir "slurm"
        try
            let out = Path.Combine(dir, "out")
            let script = Path.Combine(out, "sweep.sbatch")
            let emitted = runToEnd [ "sweep"; "--preset"; "smoke"; "--out"; out; "--emit-slurm"; script; "--threads"; "1" ]
            let n = (Sweep.expand Sweep.smoke).Length
            Assert.Contains(sprintf "%d-task job array" n, emitted)
            let text = File.ReadAllText script
            Assert.Contains(sprintf "#SBATCH --array=0-%d" (n - 1), text)
            Assert.Contains("--only \"$SLURM_ARRAY_TASK_ID\"", text)
            let code, log = sh $"cd {dir} && sbatch --wait {script}"
            // On failure, the failed runs' own logs (their stack traces) go into the message: the run folders are deleted below.
            let runLogs () =
                Directory.GetFiles(Path.Combine(out, "runs"), "log.txt", SearchOption.AllDirectories)
                |> Array.filter (fun f -> File.ReadAllText(f).Contains("   at "))
                |> Array.map (fun f -> f + ":\n" + File.ReadAllText f)
            Assert.True((code = 0), log + "\n" + String.Join("\n", Array.append (Directory.GetFiles(Path.Combine(out, "slurm")) |> Array.map File.ReadAllText) (runLogs ())))
            let collected = runToEnd [ "sweep"; "--preset"; "smoke"; "--out"; out; "--collect" ]
            Assert.True(collected.Contains(sprintf "%d/%d runs finished" n n), collected + "\n" + String.Join("\n", runLogs ()))
            let rows = File.ReadAllLines(Path.Combine(out, "results.csv"))
            Assert.Equal(n + 1, rows.Length)
            Assert.Equal(n, Directory.GetFiles(Path.Combine(out, "slurm"), "*.out").Length)
            // Every run reports its baselines. (Issue 11's smoke target, the largest LLM at the largest V beating its own
            // blind accuracy on shapes by >= 15 points, is not met yet: it is measured and reported in the issue, not
            // asserted here, so that this test checks the pipeline and not an open research result.)
            for f in Directory.GetFiles(Path.Combine(out, "runs"), "result.json", SearchOption.AllDirectories) do
                let r = JsonDocument.Parse(File.ReadAllText f).RootElement
                for k in [ "score"; "blind_score"; "majority_score" ] do
                    let v = r.GetProperty(k).GetDouble()
                    Assert.True(v >= 0.0 && v <= 1.0, sprintf "%s: %s = %g" f k v)
                Assert.True(r.GetProperty("by_type").EnumerateObject() |> Seq.isEmpty |> not, f + ": by_type is empty")
            Assert.True(File.Exists(Path.Combine(out, "report.html")))
        finally
            Directory.Delete(dir, true)

[<Fact>]
let ``LLM sizes print as people say them, and an unbounded alpha/beta is not printed as a number`` () =
    Assert.Equal("0.5B", Figures.formatParams 0.5)
    Assert.Equal("7B", Figures.formatParams 7.0)
    Assert.Equal("299.2K", Figures.formatParams 0.000299232)
    Assert.Equal("3.2M", Figures.formatParams 0.00317)
    Assert.Equal("> 1000", SweepReport.ratioText 1.25e15)
    Assert.Equal("> 1000", SweepReport.ratioText infinity)
    Assert.Equal("4.70", SweepReport.ratioText 4.7)

[<Fact>]
let ``a family where every run scored the same is reported as having no signal, not fitted`` () =
    let obs =
        [ for n in [ 2.6e-5; 3e-4 ] do
              for v in [ 1.0; 4.0; 16.0 ] -> ({ Task = "ocr"; LlmParamsB = n; VisualTokens = v; Score = 0.0; Extra = Map.empty }: Data.Observation) ]
    match (SweepReport.fitFamily 20 "ocr" "quecc" obs).Fit with
    | Error e -> Assert.Contains("every run scored 0.000", e)
    | Ok _ -> failwith "expected no fit"
