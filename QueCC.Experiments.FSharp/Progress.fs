/// Progress of long tasks: one bar per task on a terminal, a few plain lines otherwise (CI logs, files).
/// The display is a side channel: whatever happens to it (a terminal reporting 0 columns, a closed pipe),
/// it falls back to plain lines or goes silent, and never throws into the work it reports on.
module QueCC.Experiments.Progress

open System
open System.Diagnostics

/// Narrower than this, a bar has no room for its message (ShellProgressBar throws below ~12 columns).
let minimumBarColumns = 40

/// Columns of the terminal both output streams go to; None when either is redirected or the size is unknown.
let terminalColumns () =
    try
        if Console.IsOutputRedirected || Console.IsErrorRedirected then None
        else Some Console.WindowWidth
    with _ -> None

/// "12.3/s", or per minute for slow tasks so the number stays readable.
let formatRate (perSecond: float) =
    if perSecond >= 1.0 then sprintf "%.1f/s" perSecond else sprintf "%.1f/min" (perSecond * 60.0)

let formatEta (t: TimeSpan) = t.ToString @"hh\:mm\:ss"

/// Rate and ETA from the first report onwards: the first report only fixes the origin, since the work done
/// before it took an unknown time (counting it would give the nonsense first rate of a clock started late).
type RateEstimate() =
    let mutable origin: (float * int) option = None
    member _.Observe(seconds: float, done': int, total: int) =
        match origin with
        | None ->
            origin <- Some(seconds, done')
            None
        | Some(t0, d0) when done' > d0 && seconds > t0 ->
            let rate = float (done' - d0) / (seconds - t0)
            Some(rate, TimeSpan.FromSeconds(float (max 0 (total - done')) / rate))
        | Some _ -> None

/// One task's display. `columns` is asked once; `writeLine` receives the plain lines.
type TaskDisplay(name: string, total: int, columns: int option, writeLine: string -> unit) =
    let linesEvery = 20
    let mutable bar: ShellProgressBar.ProgressBar option = None
    let mutable useBar = match columns with Some c -> c >= minimumBarColumns | None -> false
    let mutable lastBucket = -1
    let mutable finished = false

    let closeBar () =
        match bar with
        | Some b ->
            bar <- None
            try b.Dispose() with _ -> ()
        | None -> ()

    let plain (done': int) (message: string) =
        let bucket = done' * linesEvery / max 1 total
        if bucket <> lastBucket || done' >= total then
            lastBucket <- bucket
            try writeLine message with _ -> ()

    member _.UsesBar = useBar

    member _.Update(done': int, message: string) =
        if not finished then
            if useBar then
                try
                    let b =
                        match bar with
                        | Some b -> b
                        | None ->
                            let b = new ShellProgressBar.ProgressBar(max 1 total, name, ShellProgressBar.ProgressBarOptions(ProgressCharacter = '─', CollapseWhenFinished = true))
                            bar <- Some b
                            b
                    b.Tick(min done' (max 1 total), message)
                with _ ->
                    closeBar ()
                    useBar <- false
            if not useBar then plain done' message
            if done' >= total then
                finished <- true
                closeBar ()

    interface IDisposable with
        member _.Dispose() = closeBar ()

/// A reporter for tasks named as they come (`report name total done`): one display and one clock per name,
/// the message "name: done/total, rate, ETA".
let reporterWith (columns: unit -> int option) (writeLine: string -> unit) : string -> int -> int -> unit =
    let tasks = Collections.Generic.Dictionary<string, TaskDisplay * RateEstimate * Stopwatch>()
    fun name total done' ->
        try
            let display, rate, clock =
                match tasks.TryGetValue name with
                | true, t -> t
                | _ ->
                    let t = new TaskDisplay(name, total, columns (), writeLine), RateEstimate(), Stopwatch.StartNew()
                    tasks[name] <- t
                    t
            let message =
                match rate.Observe(clock.Elapsed.TotalSeconds, done', total) with
                | Some(r, eta) -> sprintf "%s: %d/%d, %s, ETA %s" name done' total (formatRate r) (formatEta eta)
                | None -> sprintf "%s: %d/%d" name done' total
            display.Update(done', message)
            if done' >= total then tasks.Remove name |> ignore
        with _ -> ()

/// The reporter on this process's console.
let reporter () = reporterWith terminalColumns (fun s -> eprintfn "%s" s)

/// Training progress. The trainer supplies the ETA (mean step time, checkpoint saves excluded) and each step's
/// samples/s; the bar shows the rate since the start, n / Σ(1/rateᵢ) (equal samples per step), which is what
/// the ETA assumes, rather than one step's noisy value.
let trainReporterWith (columns: unit -> int option) (writeLine: string -> unit) : QueCC.Model.Training.TrainProgress -> unit =
    let mutable display: TaskDisplay option = None
    let mutable steps, inverseRateSum = 0, 0.0
    fun p ->
        try
            let d =
                match display with
                | Some d -> d
                | None ->
                    let d = new TaskDisplay("training", p.TotalSteps, columns (), writeLine)
                    display <- Some d
                    d
            if p.SamplesPerSecond > 0.0 && Double.IsFinite p.SamplesPerSecond then
                steps <- steps + 1
                inverseRateSum <- inverseRateSum + 1.0 / p.SamplesPerSecond
            let rate = if steps > 0 then float steps / inverseRateSum else 0.0
            let message =
                sprintf "step %d/%d loss %.4f lr %.3g grad %.3g %.1f samples/s ETA %s%s" p.Step p.TotalSteps p.Loss p.Lr p.GradNorm rate
                    (formatEta p.Eta) (if p.NonFiniteSteps > 0 then sprintf " (%d non-finite skipped)" p.NonFiniteSteps else "")
            d.Update(p.Step, message)
        with _ -> ()
