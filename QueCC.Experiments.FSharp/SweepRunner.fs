/// `quecc sweep` once its flags are checked: a Slurm job-array script, one run (an array task or a local job),
/// every unfinished run on this machine (in this process, or one process per job and device), and the report.
module QueCC.Experiments.SweepRunner

open System
open System.IO
open QueCC.Experiments.Data

/// What to do with the runs of a sweep.
type Action =
    /// Write a Slurm job-array script to this path (one task per run).
    | EmitSlurm of path: string
    /// Execute the run with this index, unless it already finished.
    | Only of index: int
    /// Summarise the finished runs.
    | Collect
    /// Execute every unfinished run here, then summarise.
    | Local

/// A checked `quecc sweep` request. PresetArg is the --preset word as given, for the commands written out.
type Request =
    { PresetArg: string
      Spec: Sweep.SweepSpec
      Out: string
      Runs: Sweep.Run list
      Devices: string list
      Jobs: int
      Slurm: Sweep.SlurmOptions
      Threads: int
      Bootstrap: int
      Action: Action }

let run (req: Request) =
    let spec, out, runs, devices, jobs, threads, presetArg = req.Spec, req.Out, req.Runs, req.Devices, req.Jobs, req.Threads, req.PresetArg
    let report () =
        let results, fits, comparisons = SweepReport.collect spec out req.Bootstrap
        let ok = results |> List.filter (fun r -> r.Score.IsSome) |> List.length
        printfn "sweep %s: %d/%d runs finished, %d failed" spec.Name ok runs.Length (results.Length - ok)
        for f in fits do
            match f.Fit with
            | Ok(fit, b, vstar) ->
                printfn "  %-7s %-14s alpha = %.4f [%.4f, %.4f]  beta = %.4f [%.4f, %.4f]  V*(Q=50) = %.3g"
                    f.Task f.Compressor fit.Params.Alpha b.CiAlpha.Lo b.CiAlpha.Hi fit.Params.Beta b.CiBeta.Lo b.CiBeta.Hi
                    (vstar |> List.find (fun (q, _) -> q = 50.0) |> snd).Value
            | Error e -> printfn "  %-7s %-14s no fit: %s" f.Task f.Compressor e
        for c in comparisons do
            printfn "  %-7s V=%d  quecc %.3f vs avgpool %.3f  (difference 95%% CI [%+.3f, %+.3f], %d pairs)" c.Task c.VisualTokens c.QueccMean c.AvgpoolMean c.Difference.Lo c.Difference.Hi c.Pairs
        printfn "wrote %s, %s and %s" (Path.Combine(out, "results.csv")) (Path.Combine(out, "summary.json")) (Path.Combine(out, "report.html"))
        0
    match req.Action with
    | EmitSlurm path ->
        Sweep.writeSpec out spec
        Directory.CreateDirectory(Path.Combine(out, "slurm")) |> ignore
        let full = Path.GetFullPath path
        Directory.CreateDirectory(Path.GetDirectoryName full) |> ignore
        Reproduce.writeAtomically full (Sweep.slurmScriptWith req.Slurm spec presetArg out runs.Length threads)
        printfn "wrote %s: a %d-task job array; submit with sbatch, then: quecc sweep --preset %s --out %s --collect" full runs.Length presetArg out
        0
    | Only i ->
        let run =
            runs |> List.tryFind (fun r -> r.Index = i)
            |> Option.defaultWith (fun () -> inputError "--only %d: the sweep has runs 0..%d" i (runs.Length - 1))
        Sweep.writeSpec out spec
        if Sweep.isFinished out run then
            printfn "run %d (%s) already finished" i run.Id
            0
        else
            let r = Sweep.executeRun spec out run
            match r.Score with
            | Some s -> printfn "run %d (%s): score %.3f in %.1f s" i run.Id s r.Seconds; 0
            | None -> eprintfn "run %d (%s) failed: %s" i run.Id (defaultArg r.Error ""); 1
    | Collect -> report ()
    | Local ->
        Sweep.writeSpec out spec
        let todo = runs |> List.filter (fun r -> not (Sweep.isFinished out r))
        printfn "sweep %s: %d runs, %d to do (%d finished before), %d at a time" spec.Name runs.Length todo.Length (runs.Length - todo.Length) jobs
        let progress = Progress.reporter ()
        progress "sweep" (max 1 todo.Length) 0
        let mutable completed = 0
        let tick () =
            completed <- completed + 1
            progress "sweep" (max 1 todo.Length) completed
        if jobs = 1 && devices.IsEmpty then
            for r in todo do
                Sweep.executeRun spec out r |> ignore
                tick ()
        else
            // Stage 0 (the shared tower) here first, on every core, rather than in the first job at its share of the
            // threads while the other jobs wait on its lock.
            if not todo.IsEmpty then
                TorchSharp.torch.set_num_threads Environment.ProcessorCount
                Sweep.ensureTower spec out (printfn "%s") |> ignore
            // Each run in its own process, exactly as a Slurm array task runs it (and on its own device).
            let lockObj = obj ()
            let commands = todo |> List.map (fun r -> Sweep.selfCommand () @ [ "sweep"; "--preset"; presetArg; "--out"; out; "--only"; string r.Index; "--threads"; string threads ])
            Sweep.runLocalJobs jobs devices commands (fun _ -> lock lockObj tick) |> ignore
        report ()
