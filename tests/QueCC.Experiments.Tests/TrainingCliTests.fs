module QueCC.Experiments.Tests.TrainingCliTests

open System
open System.Diagnostics
open System.IO
open System.Threading
open Xunit
open QueCC.Experiments.Tests.CliTests

/// The CLI as a child process, so it can really be killed (quecc.dll is copied beside the tests).
let startQueccWith (output: Text.StringBuilder) (errors: Text.StringBuilder) (args: string list) =
    let psi = ProcessStartInfo("dotnet", Path.Combine(AppContext.BaseDirectory, "quecc.dll") :: args, RedirectStandardOutput = true, RedirectStandardError = true)
    let p = Process.Start psi
    p.OutputDataReceived.Add(fun e -> if not (isNull e.Data) then lock output (fun () -> output.AppendLine e.Data |> ignore))
    p.ErrorDataReceived.Add(fun e -> if not (isNull e.Data) then lock errors (fun () -> errors.AppendLine e.Data |> ignore))
    p.BeginOutputReadLine()
    p.BeginErrorReadLine()
    p

let startQuecc (output: Text.StringBuilder) (args: string list) = startQueccWith output (Text.StringBuilder()) args

/// Runs the CLI to its end and returns its stdout.
let runToEnd (args: string list) =
    let out, err = Text.StringBuilder(), Text.StringBuilder()
    use p = startQueccWith out err args
    Assert.True(p.WaitForExit 600_000, "quecc timed out")
    p.WaitForExit()
    let tail (b: Text.StringBuilder) = let s = b.ToString() in s.Substring(max 0 (s.Length - 4000))
    Assert.True((p.ExitCode = 0), sprintf "quecc %s exited %d\nstdout:\n%s\nstderr:\n%s" (String.Join(" ", args)) p.ExitCode (tail out) (tail err))
    out.ToString()

/// Every tensor of two safetensors files, byte for byte.
let assertSameWeights (a: string) (b: string) =
    use fa = QueCC.Model.Checkpoints.Safetensors.Open a
    use fb = QueCC.Model.Checkpoints.Safetensors.Open b
    Assert.Equal<string seq>(fa.Tensors.Keys |> Seq.sort, fb.Tensors.Keys |> Seq.sort)
    let bytesOf (path: string) (info: QueCC.Model.Checkpoints.TensorInfo) (headerEnd: int64) =
        use s = File.OpenRead path
        s.Seek(headerEnd + info.Begin, SeekOrigin.Begin) |> ignore
        let buf = Array.zeroCreate<byte> (int info.ByteCount)
        s.ReadExactly(buf)
        buf
    let dataStart (path: string) =
        use s = File.OpenRead path
        let len = Array.zeroCreate<byte> 8
        s.ReadExactly(len)
        8L + BitConverter.ToInt64(len, 0)
    let sa, sb = dataStart a, dataStart b
    for k in fa.Tensors.Keys do
        Assert.True((bytesOf a fa.Tensors[k] sa = bytesOf b fb.Tensors[k] sb), $"tensor {k} differs")

[<Fact>]
let ``train killed with SIGKILL mid-run and resumed ends with the uninterrupted run's weights`` () =
    let dir = tempDir "kill"
    try
        let q args = let c, _, e = quecc args in Assert.True((c = 0), e)
        q [ "make-data"; "--kind"; "shapes"; "--count"; "64"; "--seed"; "3"; "--out"; Path.Combine(dir, "data") ]
        q [ "init-model"; "--preset"; "tiny"; "--visual-tokens"; "4"; "--out"; Path.Combine(dir, "m") ]
        let train (out: string) (extra: string list) =
            [ "train"; "--model"; Path.Combine(dir, "m"); "--stage"; "finetune"; "--data"; Path.Combine(dir, "data", "data.json")
              "--out"; Path.Combine(dir, out); "--max-steps"; "300"; "--batch-size"; "2"; "--save-every"; "3"; "--lr"; "1e-3"
              "--seed"; "7"; "--device"; "cpu" ]
            @ extra
        runToEnd (train "full" []) |> ignore
        // Kill -9 once a few checkpoints exist, while the run is still going.
        let victim = startQuecc (Text.StringBuilder()) (train "killed" [])
        let checkpoints = Path.Combine(dir, "killed", "checkpoints")
        let sw = Stopwatch.StartNew()
        while not (Directory.Exists checkpoints && Directory.GetDirectories(checkpoints, "step-*").Length >= 3) && not victim.HasExited && sw.Elapsed.TotalSeconds < 300.0 do
            Thread.Sleep 20
        Assert.False(victim.HasExited, "the run finished before it could be killed; make it longer")
        victim.Kill()   // SIGKILL on Linux: no chance to clean up
        victim.WaitForExit()
        Assert.False(Directory.Exists(Path.Combine(dir, "killed", "final")))
        let resumed = runToEnd (train "killed" [ "--resume" ])
        // It must really continue from a checkpoint, not start over (which would also end with the same weights).
        Assert.Matches(@"resumed from step [1-9]", resumed)
        assertSameWeights (Path.Combine(dir, "full", "final", "model.safetensors")) (Path.Combine(dir, "killed", "final", "model.safetensors"))
        let metrics = File.ReadAllLines(Path.Combine(dir, "killed", "metrics.jsonl"))
        Assert.Contains("\"step\"", metrics[0])
    finally
        Directory.Delete(dir, true)

[<Fact>]
let ``train rejects a bad data file with one line and writes nothing`` () =
    let dir = tempDir "train-bad"
    try
        let c, _, e = quecc [ "init-model"; "--preset"; "tiny"; "--out"; Path.Combine(dir, "m") ]
        Assert.True((c = 0), e)
        let bad = Path.Combine(dir, "bad.json")
        File.WriteAllText(bad, """{"not": "a list"}""")
        let c2, _, e2 = quecc [ "train"; "--model"; Path.Combine(dir, "m"); "--stage"; "pretrain"; "--data"; bad; "--out"; Path.Combine(dir, "out") ]
        Assert.Equal(1, c2)
        Assert.Contains("bad.json", e2)
        Assert.Equal(1, e2.Trim().Split('\n').Length)
        Assert.False(Directory.Exists(Path.Combine(dir, "out", "final")))
    finally
        Directory.Delete(dir, true)

[<Fact>]
let ``plot-metrics draws loss curves from metrics.jsonl, and rejects a file without losses`` () =
    let dir = tempDir "plot"
    try
        let run = Path.Combine(dir, "stage2")
        Directory.CreateDirectory run |> ignore
        let metrics = Path.Combine(run, "metrics.jsonl")
        File.WriteAllLines(metrics, [ for s in 1 .. 30 -> sprintf """{"step": %d, "loss": %g, "lr": 0.001}""" s (6.0 / float s) ])
        let out = Path.Combine(dir, "fig", "loss.html")
        let code, text, err = quecc [ "plot-metrics"; metrics; "--out"; out ]
        Assert.True((code = 0), err)
        Assert.True(File.Exists out)
        Assert.Contains("stage2: 30 steps, loss 6.000 at step 1", text)
        let bad = Path.Combine(dir, "bad.jsonl")
        File.WriteAllText(bad, """{"step": 1}""")
        let code2, _, err2 = quecc [ "plot-metrics"; bad; "--out"; out ]
        Assert.Equal(1, code2)
        Assert.Contains("bad.jsonl:1", err2)
    finally
        Directory.Delete(dir, true)

[<Fact>]
let ``train --precision bf16 trains in mixed precision and a bad precision is one line`` () =
    let dir = tempDir "train-bf16"
    try
        let q args = let c, o, e = quecc args in Assert.True((c = 0), e); o, e
        q [ "make-data"; "--kind"; "shapes"; "--count"; "8"; "--seed"; "3"; "--out"; Path.Combine(dir, "data") ] |> ignore
        q [ "init-model"; "--preset"; "tiny"; "--visual-tokens"; "4"; "--out"; Path.Combine(dir, "m") ] |> ignore
        let train (extra: string list) =
            [ "train"; "--model"; Path.Combine(dir, "m"); "--stage"; "pretrain"; "--data"; Path.Combine(dir, "data", "data.json")
              "--out"; Path.Combine(dir, "out"); "--max-steps"; "2"; "--batch-size"; "4"; "--device"; "cpu" ] @ extra
        let out, err = q (train [ "--precision"; "bf16" ])
        Assert.Contains("bf16 mixed precision", err)
        Assert.Contains("trained 2/2 steps", out)
        // The final model holds the float32 master weights.
        Assert.Contains("\"torch_dtype\": \"float32\"", File.ReadAllText(Path.Combine(dir, "out", "final", "config.json")))
        let c, _, e = quecc (train [ "--precision"; "fp16"; "--resume" ])
        Assert.Equal(1, c)
        Assert.Equal("quecc: precision 'fp16': expected auto, fp32 or bf16", e.Trim())
    finally
        Directory.Delete(dir, true)

[<Fact>]
let ``bench train reports trainer and bare-loop rates, the overhead and peak memory`` () =
    let code, out, err = quecc [ "bench"; "train"; "--preset"; "tiny"; "--steps"; "2"; "--batch-size"; "2"; "--repeats"; "1" ]
    Assert.True((code = 0), err)
    Assert.Contains("quecc bench train: preset tiny, finetune, cpu, 2 timed steps × batch 2, 1 rounds", out)
    Assert.Matches(@"trainer\s+\d+\.\d\s+\d+\.\d", out)
    Assert.Matches(@"bare loop\s+\d+\.\d\s+\d+\.\d", out)
    Assert.Matches(@"overhead\s+-?\d+\.\d%\s+-?\d+\.\d%", out)
    Assert.Matches(@"peak memory \d+ MB working set", out)
