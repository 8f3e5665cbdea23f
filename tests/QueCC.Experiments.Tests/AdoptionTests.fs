/// Progress display, one-line messages, figure export, sweep job options: what a new user meets first.
module QueCC.Experiments.Tests.AdoptionTests

open System
open System.Diagnostics
open System.IO
open Xunit
open QueCC.Experiments
open QueCC.Experiments.Tests.Helpers
open QueCC.Experiments.Tests.CliTests

let private tp step total sps =
    QueCC.Model.Training.TrainProgress(step, total, 0.0, 1.0, 1e-3, 0.5, sps, TimeSpan.Zero, 0)

[<Fact>]
let ``the first report fixes the rate's origin; later rates count only the work after it`` () =
    let r = Progress.RateEstimate()
    // 100 items done at 0.001 s (the clock started late): no rate yet, not 100 / 0.001.
    Assert.True((r.Observe(0.001, 100, 1000)).IsNone)
    match r.Observe(2.001, 300, 1000) with
    | Some(rate, eta) ->
        assertClose 1e-9 100.0 rate                     // (300 − 100) / (2.001 − 0.001), by hand
        assertClose 1e-6 7.0 eta.TotalSeconds           // 700 left at 100/s
    | None -> failwith "no rate after two reports"

[<Fact>]
let ``a 0-column terminal, no terminal, or a throwing writer gives plain lines and never throws`` () =
    for columns in [ Some 0; Some 5; None ] do
        let lines = Collections.Generic.List<string>()
        let report = Progress.reporterWith (fun () -> columns) lines.Add
        for i in 0 .. 400 do report "task" 400 i
        // Every 5% plus the end: 21 lines for 401 reports, not one per report.
        Assert.InRange(lines.Count, 20, 22)
        Assert.Equal("task: 400/400", (lines[lines.Count - 1]).Substring(0, 13))
    let boom = Progress.reporterWith (fun () -> None) (fun _ -> raise (IOException "broken pipe"))
    for i in 0 .. 10 do boom "task" 10 i
    let columnsFail = Progress.reporterWith (fun () -> failwith "no console") ignore
    columnsFail "task" 10 1

[<Fact>]
let ``one training display per run: the column count is asked once, lines every 5%, rate is n / sum(1/rate)`` () =
    let asked = ref 0
    let lines = Collections.Generic.List<string>()
    let report = Progress.trainReporterWith (fun () -> asked.Value <- asked.Value + 1; Some 0) lines.Add
    for s in 1 .. 400 do report (tp s 400 (if s % 2 = 0 then 10.0 else 30.0))
    Assert.Equal(1, asked.Value)
    Assert.InRange(lines.Count, 20, 21)
    // Equal samples per step at 10/s and 30/s alternately: 2 / (1/10 + 1/30) = 15 samples/s.
    Assert.Contains("15.0 samples/s", lines[lines.Count - 1])

/// Runs a shell command line, returning exit code and stdout + stderr.
let private sh (command: string) =
    let psi = ProcessStartInfo("bash", [ "-c"; command ], RedirectStandardOutput = true, RedirectStandardError = true)
    use p = Process.Start psi
    let err = p.StandardError.ReadToEndAsync()
    let out = p.StandardOutput.ReadToEnd()
    p.WaitForExit()
    p.ExitCode, out + err.Result

let private queccDll () = Path.Combine(AppContext.BaseDirectory, "quecc.dll")

let private tinySetup (dir: string) =
    let q args = let c, _, e = quecc args in Assert.True((c = 0), e)
    q [ "make-data"; "--kind"; "shapes"; "--count"; "16"; "--seed"; "1"; "--out"; Path.Combine(dir, "data") ]
    q [ "init-model"; "--preset"; "tiny"; "--visual-tokens"; "4"; "--out"; Path.Combine(dir, "m") ]

[<Fact>]
let ``train under a pseudo-terminal reporting 0 columns finishes and writes final/ and the projector`` () =
    let dir = tempDir "cols0"
    try
        tinySetup dir
        let train =
            sprintf "dotnet %s train --model %s --stage pretrain --data %s --out %s --max-steps 3 --batch-size 2 --device cpu"
                (queccDll ()) (Path.Combine(dir, "m")) (Path.Combine(dir, "data", "data.json")) (Path.Combine(dir, "out"))
        // util-linux `script` gives the command a real pseudo-terminal; `stty cols 0` is what broke the bar.
        let code, output = sh (sprintf "script -q -e -c 'stty cols 0; %s' /dev/null" train)
        Assert.True((code = 0), output)
        Assert.DoesNotContain("non-negative", output)
        Assert.True(File.Exists(Path.Combine(dir, "out", "final", "model.safetensors")), output)
        Assert.True(File.Exists(Path.Combine(dir, "out", "mm_projector.safetensors")), output)
    finally
        Directory.Delete(dir, true)

[<Fact>]
let ``train with redirected output prints about 20 progress lines, not one per step`` () =
    let dir = tempDir "lines"
    try
        tinySetup dir
        let code, output =
            sh (sprintf "dotnet %s train --model %s --stage pretrain --data %s --out %s --max-steps 60 --batch-size 1 --device cpu 2>&1 | cat"
                    (queccDll ()) (Path.Combine(dir, "m")) (Path.Combine(dir, "data", "data.json")) (Path.Combine(dir, "out")))
        Assert.Equal(0, code)
        let steps = output.Split('\n') |> Array.filter (fun l -> l.StartsWith "step ")
        Assert.InRange(steps.Length, 19, 21)
        Assert.StartsWith("step 60/60", steps[steps.Length - 1])
    finally
        Directory.Delete(dir, true)
