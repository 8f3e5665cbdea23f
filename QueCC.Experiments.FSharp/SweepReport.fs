/// The sweep's results table and report: the law fitted per task family and compressor (with bootstrap
/// intervals), V* at Q = 0 and 50, QueCC against average pooling at 1–4 tokens, figures and the run table.
module QueCC.Experiments.SweepReport

open System
open System.IO
open System.Net
open System.Text
open Plotly.NET
open QueCC.Experiments.Data
open QueCC.Experiments.ScalingLaw
open QueCC.Experiments.Fitting
open QueCC.Experiments.ComputeOptimal
open QueCC.Experiments.Sweep

type FamilyFit =
    { Task: string
      Compressor: string
      Observations: Observation list
      Fit: Result<FitResult * BootstrapResult * (float * OptimalV) list, string> }

type Comparison =
    { Task: string
      VisualTokens: int
      Pairs: int
      QueccMean: float
      AvgpoolMean: float
      /// Bootstrap 95% interval of the mean difference QueCC − avgpool over paired (LLM, seed) runs.
      Difference: Interval }

let observationsOf (results: RunResult list) =
    [ for r in results do
          match r.Score with
          | Some s ->
              yield
                  { Task = r.Run.Task
                    LlmParamsB = float r.LlmParams / 1e9
                    VisualTokens = float r.Run.VisualTokens
                    Score = s
                    Extra = Map [ "compressor", r.Run.Compressor; "run_id", r.Run.Id ] }
          | None -> () ]

/// Scores averaged over seeds, so the law sees one point per (N, V).
let averaged (obs: Observation list) =
    obs
    |> List.groupBy (fun o -> o.LlmParamsB, o.VisualTokens)
    |> List.map (fun (_, g) -> { List.head g with Score = g |> List.averageBy (fun o -> o.Score) })

let fitFamily (bootstrapB: int) (task: string) (compressor: string) (obs: Observation list) : FamilyFit =
    let fit =
        try
            let obs = validateForLaw (sprintf "%s/%s results" task compressor) obs
            let scores = obs |> List.map (fun o -> o.Score) |> List.distinct
            if scores.Length = 1 then
                Error(sprintf "every run scored %.3f: no signal to fit (train longer or use a larger sweep)" scores.Head)
            elif obs |> List.exists (fun o -> o.Error <= 0.0) then
                Error "a perfect score (error 0) leaves no room for the floor D; the task is too easy for the law"
            else
                let f = fitContinuous defaultSpec obs
                let b = bootstrap defaultSpec Continuous bootstrapB 0 0.95 ignore obs
                let vs = obs |> List.map (fun o -> o.VisualTokens)
                let vstar = [ 0.0; 50.0 ] |> List.map (fun q -> q, optimalVisualTokens defaultSpec f.Params q (List.min vs) (List.max vs))
                Ok(f, b, vstar)
        with :? InputError as e -> Error e.Message
    { Task = task; Compressor = compressor; Observations = obs; Fit = fit }

let compare (results: RunResult list) : Comparison list =
    let ok = results |> List.filter (fun r -> r.Score.IsSome)
    [ for task in ok |> List.map (fun r -> r.Run.Task) |> List.distinct do
          for v in [ 1; 4 ] do
              let score c (llm, seed) =
                  ok |> List.tryFind (fun r -> r.Run.Task = task && r.Run.VisualTokens = v && r.Run.Compressor = c && r.Run.Llm = llm && r.Run.Seed = seed)
                  |> Option.bind (fun r -> r.Score)
              let keys = ok |> List.map (fun r -> r.Run.Llm, r.Run.Seed) |> List.distinct
              let pairs = keys |> List.choose (fun k -> match score "quecc" k, score "avgpool" k with Some a, Some b -> Some(a, b) | _ -> None)
              if not pairs.IsEmpty then
                  let diffs = pairs |> List.map (fun (a, b) -> a - b) |> Array.ofList
                  let rng = Random(v)
                  let means = Array.init 2000 (fun _ -> Array.init diffs.Length (fun _ -> diffs[rng.Next diffs.Length]) |> Array.average)
                  yield
                      { Task = task
                        VisualTokens = v
                        Pairs = pairs.Length
                        QueccMean = pairs |> List.averageBy fst
                        AvgpoolMean = pairs |> List.averageBy snd
                        Difference = { Lo = quantile 0.025 means; Hi = quantile 0.975 means } } ]

let analyse (spec: SweepSpec) (bootstrapB: int) (results: RunResult list) =
    let obs = observationsOf results
    let fits =
        [ for task in spec.Tasks do
              for c in spec.Compressors do
                  let rows = obs |> List.filter (fun o -> o.Task = task && o.Extra["compressor"] = c) |> averaged
                  if not rows.IsEmpty then yield fitFamily bootstrapB task c rows ]
    fits, compare results

let private enc (s: string) = WebUtility.HtmlEncode s

/// α/β is unbounded as β → 0 (a law with no visible token effect); show that rather than a 16-digit number.
let ratioText (x: float) = if not (Double.IsFinite x) || x > 1000.0 then "> 1000" else sprintf "%.2f" x

let private plotlyJs =
    lazy
        (let asm = typeof<Plotly.NET.Chart>.Assembly
         let name = asm.GetManifestResourceNames() |> Array.find (fun n -> n.EndsWith ".min.js")
         use s = asm.GetManifestResourceStream name
         use r = new StreamReader(s)
         r.ReadToEnd())

/// One self-contained HTML page: plotly.js embedded once, then tables and the figures.
let html (spec: SweepSpec) (results: RunResult list) (fits: FamilyFit list) (comparisons: Comparison list) =
    let sb = StringBuilder()
    let add (s: string) = sb.AppendLine s |> ignore
    add "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>QueCC sweep report</title>"
    add "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#eee}td.l{text-align:left}</style>"
    add ("<script>" + plotlyJs.Force() + "</script></head><body>")
    let ok = results |> List.filter (fun r -> r.Score.IsSome) |> List.length
    add $"<h1>Sweep <code>{enc spec.Name}</code></h1>"
    add $"<p>{results.Length} runs, {ok} succeeded, {results.Length - ok} failed. Law: error = A·N<sup>−α</sup>·V<sup>−β</sup> + D fitted to the held-out exact-match error, N = LLM parameters (billions), continuous bounded least squares with 95%% bootstrap intervals.</p>"
    add "<h2>Scaling-law fits</h2><table><tr><th>task</th><th>compressor</th><th>α</th><th>β</th><th>α/β</th><th>V* (Q=0)</th><th>V* (Q=50)</th><th>R²</th><th>points</th></tr>"
    for f in fits do
        match f.Fit with
        | Ok(fit, b, vstar) ->
            let p = fit.Params
            let v q = vstar |> List.find (fun (x, _) -> x = q) |> snd
            add (
                sprintf "<tr><td class=l>%s</td><td class=l>%s</td><td>%.4f [%.4f, %.4f]</td><td>%.4f [%.4f, %.4f]</td><td>%s [%s, %s]</td><td>%.3g</td><td>%.3g</td><td>%.3f</td><td>%d</td></tr>"
                    (enc f.Task) (enc f.Compressor) p.Alpha b.CiAlpha.Lo b.CiAlpha.Hi p.Beta b.CiBeta.Lo b.CiBeta.Hi (ratioText (p.Alpha / p.Beta))
                    (ratioText b.AlphaOverBeta.Lo) (ratioText b.AlphaOverBeta.Hi) (v 0.0).Value (v 50.0).Value fit.R2 f.Observations.Length
            )
            match atBounds f.Observations p with
            | [] -> ()
            | notes ->
                let text = enc (String.Join("; ", notes))
                add $"<tr><td></td><td class=l colspan=8>at a bound: {text}</td></tr>"
        | Error e -> add $"<tr><td class=l>{enc f.Task}</td><td class=l>{enc f.Compressor}</td><td class=l colspan=7>no fit: {enc e}</td></tr>"
    add "</table>"
    if not comparisons.IsEmpty then
        add "<h2>QueCC vs average pooling at 1–4 tokens</h2><table><tr><th>task</th><th>V</th><th>pairs</th><th>QueCC</th><th>avgpool</th><th>difference (95% CI)</th></tr>"
        for c in comparisons do
            add (sprintf "<tr><td class=l>%s</td><td>%d</td><td>%d</td><td>%.3f</td><td>%.3f</td><td>%+.3f [%+.3f, %+.3f]</td></tr>" c.Task c.VisualTokens c.Pairs c.QueccMean c.AvgpoolMean (c.QueccMean - c.AvgpoolMean) c.Difference.Lo c.Difference.Hi)
        add "</table>"
    add "<h2>Figures</h2>"
    let chartDiv (chart: GenericChart) =
        chart |> Chart.withDisplayOptions (DisplayOptions.init (PlotlyJSReference = PlotlyJSReference.NoReference)) |> GenericChart.toChartHTML |> add
    for f in fits do
        match f.Fit with
        | Ok(fit, b, _) ->
            for q in [ 0.0; 50.0 ] do
                Figures.figure1
                    { Title = sprintf "%s / %s (Q = %g)" f.Task f.Compressor q
                      Spec = defaultSpec
                      Params = fit.Params
                      AlphaText = Reproduce.exponentText "α" fit.Params.Alpha b.CiAlpha
                      BetaText = Reproduce.exponentText "β" fit.Params.Beta b.CiBeta
                      TextTokens = q
                      Observations = f.Observations }
                |> chartDiv
        | Error _ -> ()
    let fitted = fits |> List.choose (fun f -> match f.Fit with Ok(fit, _, _) -> Some(f, fit) | Error _ -> None)
    if not fitted.IsEmpty then
        Figures.parity [ for f, fit in fitted -> { Name = $"{f.Task}/{f.Compressor}"; Spec = defaultSpec; Params = fit.Params; Observations = f.Observations } ]
        |> chartDiv
    add "<h2>Runs</h2><p>blind: the same model with every image replaced by a uniform grey one; majority: always the split's most common answer.</p><table><tr><th>#</th><th>run</th><th>N</th><th>V</th><th>score</th><th>blind</th><th>majority</th><th>by type</th><th>seconds</th><th>error</th></tr>"
    for r in results |> List.sortBy (fun r -> r.Run.Index) do
        let score = match r.Score with Some s -> sprintf "%.3f" s | None -> "failed"
        let blind, majority, byType =
            match r.Baselines with
            | Some b ->
                sprintf "%.3f" b.BlindScore, sprintf "%.3f" b.MajorityScore,
                String.Join(", ", b.ByType |> Map.toList |> List.map (fun (k, v) -> sprintf "%s %.2f" k v))
            | None -> "", "", ""
        add (sprintf "<tr><td>%d</td><td class=l>%s</td><td>%s</td><td>%d</td><td>%s</td><td>%s</td><td>%s</td><td class=l>%s</td><td>%.1f</td><td class=l>%s</td></tr>" r.Run.Index (enc r.Run.Id) (r.LlmParams.ToString "N0") r.Run.VisualTokens score blind majority (enc byType) r.Seconds (enc (defaultArg r.Error "")))
    add "</table></body></html>"
    sb.ToString()

/// Reads every run's result and writes results.csv, summary.json and report.html under `out`.
let collect (spec: SweepSpec) (out: string) (bootstrapB: int) =
    let runs = expand spec
    let results = runs |> List.choose (tryLoadResult out)
    let fits, comparisons = analyse spec bootstrapB results
    Reproduce.writeAtomically (Path.Combine(out, "results.csv")) (resultsCsv results)
    Reproduce.writeAtomically (Path.Combine(out, "report.html")) (html spec results fits comparisons)
    let summary =
        Reproduce.Json.obj [
            "sweep", Reproduce.Json.str spec.Name
            "runs", Reproduce.Json.num (float runs.Length)
            "finished", Reproduce.Json.num (float (results |> List.filter (fun r -> r.Score.IsSome) |> List.length))
            "fits",
            Reproduce.Json.arr [
                for f in fits ->
                    match f.Fit with
                    | Ok(fit, b, vstar) ->
                        let node = Reproduce.Json.fit defaultSpec fit (Some b)
                        node["task"] <- Reproduce.Json.str f.Task
                        node["compressor"] <- Reproduce.Json.str f.Compressor
                        node["optimalVisualTokens"] <-
                            Reproduce.Json.arr [ for q, o in vstar -> Reproduce.Json.obj [ "textTokens", Reproduce.Json.num q; "optimalVisualTokens", Reproduce.Json.optimal o ] ]
                        node
                    | Error e -> Reproduce.Json.obj [ "task", Reproduce.Json.str f.Task; "compressor", Reproduce.Json.str f.Compressor; "error", Reproduce.Json.str e ]
            ]
            "queccVsAvgpool",
            Reproduce.Json.arr [
                for c in comparisons ->
                    Reproduce.Json.obj [ "task", Reproduce.Json.str c.Task; "visualTokens", Reproduce.Json.num (float c.VisualTokens)
                                         "quecc", Reproduce.Json.num c.QueccMean; "avgpool", Reproduce.Json.num c.AvgpoolMean
                                         "differenceCi", Reproduce.Json.interval c.Difference ]
            ]
        ]
    Reproduce.writeAtomically (Path.Combine(out, "summary.json")) (Reproduce.Json.toText summary)
    results, fits, comparisons
