/// `reproduce`: the paper's fits and figures from the shipped data. `analyse` is pure; `write` does the IO.
module QueCC.Experiments.Reproduce

open System
open System.Diagnostics
open System.IO
open System.Text.Json
open System.Text.Json.Nodes
open Plotly.NET
open QueCC.Experiments.Data
open QueCC.Experiments.ScalingLaw
open QueCC.Experiments.Fitting
open QueCC.Experiments.ComputeOptimal

// ---------------------------------------------------------------------------------------------
// JSON views of the results (field names are part of the CLI contract).

module Json =
    let num (x: float) : JsonNode = if Double.IsFinite x then JsonValue.Create x else JsonValue.Create(string x)

    let obj (fields: (string * JsonNode) list) : JsonNode =
        let o = JsonObject()
        for k, v in fields do o[k] <- v
        o

    let arr (items: JsonNode seq) : JsonNode =
        let a = JsonArray()
        for i in items do a.Add i
        a

    let str (s: string) : JsonNode = JsonValue.Create s

    let interval (i: Interval) = obj [ "lo", num i.Lo; "hi", num i.Hi ]

    let bootstrap (b: BootstrapResult) =
        obj [ "resamples", JsonValue.Create b.Resamples
              "level", num b.Level
              "A", interval b.CiA
              "alpha", interval b.CiAlpha
              "beta", interval b.CiBeta
              "D", interval b.CiD
              "alphaOverBeta", interval b.AlphaOverBeta ]

    let fit (spec: LawSpec) (f: FitResult) (ci: BootstrapResult option) =
        obj [ yield "method", str f.Method
              yield "alpha", num f.Params.Alpha
              yield "beta", num f.Params.Beta
              yield "A", num f.Params.A
              yield "D", num f.Params.D
              yield "sse", num f.Sse
              yield "r2", num f.R2
              yield "n", JsonValue.Create f.N
              yield "lawTextTokens", num spec.LawTextTokens
              match ci with
              | Some b -> yield "ci", bootstrap b
              | None -> () ]

    let holdout (h: HoldoutResult) =
        obj [ "llmParams", num h.LlmParamsB
              "fit", fit defaultSpec h.Fit None
              "meanAbsRelativeError", num h.MeanAbsRelativeError
              "maxAbsRelativeError", num h.MaxAbsRelativeError
              "points",
              arr (
                  h.Points
                  |> List.map (fun p ->
                      obj [ "visualTokens", num p.VisualTokens
                            "observed", num p.Observed
                            "predicted", num p.Predicted
                            "relativeError", num p.RelativeError ])
              ) ]

    let frontierPoint (f: FrontierPoint) =
        obj [ "budget", num f.Budget; "llmParams", num f.LlmParamsB; "visualTokens", num f.VisualTokens; "error", num f.Error ]

    let optimal (o: OptimalV) =
        match o with
        | Interior v -> num v
        | AtLowerBound v -> num v
        | AtUpperBound v -> num v

    let optimalKind (o: OptimalV) =
        match o with
        | Interior _ -> "interior"
        | AtLowerBound _ -> "lower-bound"
        | AtUpperBound _ -> "upper-bound"

    let toText (node: JsonNode) =
        node.ToJsonString(JsonSerializerOptions(WriteIndented = true, Encoder = Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping))

// ---------------------------------------------------------------------------------------------
// Analysis (pure apart from the progress callback).

type FamilyAnalysis =
    { Name: string
      Title: string
      Observations: Observation list
      GridExhaustive: FitResult
      GridAuthors: FitResult
      Continuous: FitResult
      Published: FitResult option
      Bootstrap: BootstrapResult
      Holdout: HoldoutResult
      OptimalV: (float * OptimalV) list
      Frontiers: (float * FrontierPoint list) list }

type Settings =
    { Bootstrap: int
      Seed: int
      TextTokensList: float list }

let defaultSettings = { Bootstrap = 1000; Seed = 0; TextTokensList = [ 0.0; 50.0 ] }

let analyseFamily (settings: Settings) (progress: string -> int -> int -> unit) (name: string) (title: string) (withPublished: bool) (obs: Observation list) =
    let spec = defaultSpec
    let grid = fitGrid spec defaultGridOptions obs
    let authors = fitGrid spec { defaultGridOptions with Fraction = 0.2; Seed = settings.Seed } obs
    let cont = fitContinuousWith spec defaultContinuousOptions grid.Params obs
    let boot = bootstrap spec Continuous settings.Bootstrap settings.Seed 0.95 (progress (sprintf "bootstrap %s" name) settings.Bootstrap) obs
    let largest = obs |> List.map (fun o -> o.LlmParamsB) |> List.max
    let hold = holdout spec Continuous largest obs
    let vs = obs |> List.map (fun o -> o.VisualTokens)
    let vMin, vMax = List.min vs, List.max vs
    let sizes = obs |> List.map (fun o -> o.LlmParamsB)
    { Name = name
      Title = title
      Observations = obs
      GridExhaustive = grid
      GridAuthors = authors
      Continuous = cont
      Published = if withPublished then Some(profileFit spec publishedAlpha publishedBeta obs) else None
      Bootstrap = boot
      Holdout = hold
      OptimalV = settings.TextTokensList |> List.map (fun q -> q, optimalVisualTokens spec cont.Params q vMin vMax)
      Frontiers =
        settings.TextTokensList
        |> List.map (fun q ->
            q, frontier spec cont.Params q paperTokenSet (defaultBudgets q paperTokenSet (List.min sizes * 0.6) (List.max sizes * 3.0) 25)) }

let exponentText (symbol: string) (value: float) (ci: Interval) =
    sprintf "%s = %.4f (95%% CI %.4f–%.4f)" symbol value ci.Lo ci.Hi

let figure1For (fam: FamilyAnalysis) (q: float) =
    Figures.figure1
        { Title = sprintf "%s: scaling #params vs #visual tokens (Q = %g)" fam.Title q
          Spec = defaultSpec
          Params = fam.Continuous.Params
          AlphaText = exponentText "α" fam.Continuous.Params.Alpha fam.Bootstrap.CiAlpha
          BetaText = exponentText "β" fam.Continuous.Params.Beta fam.Bootstrap.CiBeta
          TextTokens = q
          Observations = fam.Observations }

let summaryJson (fams: FamilyAnalysis list) =
    Json.obj [
        "law", Json.str "Y = A * N^-alpha * (V + q)^-beta + D, N in billions, q = 0; FLOPs = 2 * N * (Q + V)"
        "families",
        Json.obj [
            for fam in fams ->
                fam.Name,
                Json.obj [
                    yield "fits",
                    Json.obj [
                        "gridExhaustive", Json.fit defaultSpec fam.GridExhaustive None
                        "gridAuthors20pct", Json.fit defaultSpec fam.GridAuthors None
                        "continuous", Json.fit defaultSpec fam.Continuous (Some fam.Bootstrap)
                    ]
                    match fam.Published with
                    | Some p -> yield "publishedPairBestFit", Json.fit defaultSpec p None
                    | None -> ()
                    yield "alphaOverBeta", Json.num (fam.Continuous.Params.Alpha / fam.Continuous.Params.Beta)
                    yield "alphaOverBetaCi", Json.interval fam.Bootstrap.AlphaOverBeta
                    yield "optimalVisualTokens",
                    Json.arr [
                        for q, o in fam.OptimalV ->
                            Json.obj [ "textTokens", Json.num q; "optimalVisualTokens", Json.optimal o; "kind", Json.str (Json.optimalKind o) ]
                    ]
                    yield "holdoutLargestLlm", Json.holdout fam.Holdout
                ]
        ]
    ]

let summaryMarkdown (fams: FamilyAnalysis list) =
    let sb = Text.StringBuilder()
    let line (s: string) = sb.AppendLine s |> ignore
    line "# Inference-optimal scaling law: fits of the paper's data"
    line ""
    line "Law: Y = A·N^−α·V^−β + D (N in billions, the authors' T = V); FLOPs = 2·N·(Q+V)."
    line ""
    for fam in fams do
        let c = fam.Continuous
        let b = fam.Bootstrap
        line (sprintf "## %s (%d observations)" fam.Title c.N)
        line ""
        line "| fit | α | β | A | D | SSE | R² |"
        line "|---|---|---|---|---|---|---|"
        let row name (f: FitResult) =
            line (sprintf "| %s | %.4f | %.4f | %.4f | %.4f | %.4g | %.4f |" name f.Params.Alpha f.Params.Beta f.Params.A f.Params.D f.Sse f.R2)
        row "grid, exhaustive (5M points)" fam.GridExhaustive
        row "grid, authors' random 20% (seed 0)" fam.GridAuthors
        row "continuous (bounded LSQ, autograd)" c
        fam.Published |> Option.iter (row "published α, β with best A, D")
        line ""
        line (sprintf "%d-resample bootstrap, 95%% intervals: α [%.4f, %.4f], β [%.4f, %.4f], A [%.4f, %.4f], D [%.4f, %.4f]; α/β = %.2f [%.2f, %.2f]."
                b.Resamples b.CiAlpha.Lo b.CiAlpha.Hi b.CiBeta.Lo b.CiBeta.Hi b.CiA.Lo b.CiA.Hi b.CiD.Lo b.CiD.Hi (c.Params.Alpha / c.Params.Beta) b.AlphaOverBeta.Lo b.AlphaOverBeta.Hi)
        line ""
        for q, o in fam.OptimalV do
            let how =
                match o with
                | Interior v -> sprintf "V* = %.2f (interior optimum, βQ/(α−β))" v
                | AtLowerBound v -> sprintf "V* = %g: as few visual tokens as possible, with the largest LLM the budget allows" v
                | AtUpperBound v -> sprintf "V* = %g: as many visual tokens as measured; more tokens beat a larger LLM" v
            line (sprintf "- Q = %g text tokens: %s" q how)
        let h = fam.Holdout
        line (sprintf "- Held-out %gB LLM (fit on the smaller sizes): mean |relative error| %.2f%%, max %.2f%%."
                h.LlmParamsB (100.0 * h.MeanAbsRelativeError) (100.0 * h.MaxAbsRelativeError))
        line ""
    line "Figures: `figure1a_visual_reasoning_q0.html`, `figure1b_visual_reasoning_q50.html`, `figure_ocr_q0.html`, `figure_ocr_q50.html`, `parity.html`, `heatmap_visual_reasoning.html`, `heatmap_ocr.html`."
    sb.ToString()

// ---------------------------------------------------------------------------------------------
// IO.

/// Writes text to a temporary file beside the target, then renames it: readers never see half a file, and
/// processes writing the same file at once (sweep tasks) each rename a whole one. The library's one atomic writer.
let writeAtomically (path: string) (text: string) = QueCC.Model.Data.AtomicFile.WriteAllText(path, text)

let writeBytesAtomically (path: string) (bytes: byte[]) = QueCC.Model.Data.AtomicFile.WriteAllBytes(path, ReadOnlySpan bytes)

let findChromium () =
    [ "chromium"; "chromium-browser"; "google-chrome" ]
    |> List.tryPick (fun name ->
        (Environment.GetEnvironmentVariable "PATH" |> Option.ofObj |> Option.defaultValue "").Split(Path.PathSeparator)
        |> Array.map (fun d -> Path.Combine(d, name))
        |> Array.tryFind File.Exists)

/// A figure's publication files: PNG (2× scale), SVG and PDF (both vector), all without Plotly's UI.
type StaticFigure = { Png: byte[]; Svg: string; Pdf: byte[] }

/// Headless Chromium with a throw-away profile; returns stdout, or None when it failed or ran over a minute.
let private runChromium (chromium: string) (profile: string) (args: string list) =
    let psi =
        ProcessStartInfo(
            chromium,
            [ "--headless"; "--no-sandbox"; "--disable-gpu"; "--disable-background-networking"; "--disable-component-update"
              "--disable-sync"; "--disable-quic"; "--no-first-run"; "--hide-scrollbars"; $"--user-data-dir={profile}" ]
            @ args,
            RedirectStandardOutput = true,
            RedirectStandardError = true)
    use p = Process.Start psi
    let out = p.StandardOutput.ReadToEndAsync()
    p.StandardError.ReadToEndAsync() |> ignore
    if not (p.WaitForExit 60000) then
        (try p.Kill true with _ -> ())
        None
    elif p.ExitCode <> 0 then None
    else Some out.Result

/// Plotly's own exporter (`Plotly.toImage`) on a static copy of the chart (no mode bar, no logo, no hover
/// layer): the page puts the SVG and PNG data URLs into the DOM, which `--dump-dom` prints. A screenshot of the
/// interactive page would carry the tool bar and be raster only.
let private exportPage (chart: GenericChart) =
    let html =
        chart
        |> Chart.withConfig (Config.init (DisplayModeBar = false, StaticPlot = true, Responsive = false, Displaylogo = false))
        |> Figures.selfContained
        |> GenericChart.toEmbeddedHTML
    let script =
        """<pre id="quecc-size"></pre><pre id="quecc-svg"></pre><pre id="quecc-png"></pre><script>
(function () {
  function put(id, text) { document.getElementById(id).textContent = text; }
  function go() {
    var gd = document.querySelector('.js-plotly-plot');
    if (!gd || !gd._fullLayout) { setTimeout(go, 20); return; }
    put('quecc-size', gd._fullLayout.width + 'x' + gd._fullLayout.height);
    Plotly.toImage(gd, { format: 'svg' })
      .then(function (u) { put('quecc-svg', u); return Plotly.toImage(gd, { format: 'png', scale: 2 }); })
      .then(function (u) { put('quecc-png', u); })
      .catch(function (e) { put('quecc-png', 'error: ' + e); });
  }
  go();
})();
</script></body>"""
    let i = html.LastIndexOf "</body>"
    html.Substring(0, i) + script + html.Substring(i + "</body>".Length)

let private preText (dom: string) (id: string) =
    let m = Text.RegularExpressions.Regex.Match(dom, $"<pre id=\"{id}\">([^<]*)</pre>")
    if m.Success then Some(Net.WebUtility.HtmlDecode m.Groups[1].Value) else None

/// PNG, SVG and PDF of a chart through headless Chromium; None when Chromium fails.
let exportStatic (chromium: string) (chart: GenericChart) : StaticFigure option =
    let profile = Directory.CreateTempSubdirectory "quecc-chromium"
    try
        let page = Path.Combine(profile.FullName, "export.html")
        File.WriteAllText(page, exportPage chart)
        let dom = runChromium chromium profile.FullName [ "--virtual-time-budget=30000"; "--dump-dom"; "file://" + page ]
        let dataUrl (d: string) (id: string) (prefix: string) =
            preText d id |> Option.filter (fun u -> u.StartsWith prefix) |> Option.map (fun u -> u.Substring prefix.Length)
        match dom with
        | None -> None
        | Some d ->
            match preText d "quecc-size", dataUrl d "quecc-svg" "data:image/svg+xml,", dataUrl d "quecc-png" "data:image/png;base64," with
            | Some size, Some svgUrl, Some pngBase64 ->
                let svg = Uri.UnescapeDataString svgUrl
                let png = Convert.FromBase64String pngBase64
                let w, h = match size.Split 'x' with [| w; h |] -> w, h | _ -> string Figures.width, string Figures.height
                // The PDF is the SVG printed on a page of the figure's size, so it stays vector.
                let svgFile = Path.Combine(profile.FullName, "figure.svg")
                File.WriteAllText(svgFile, svg)
                let pdfPage = Path.Combine(profile.FullName, "pdf.html")
                File.WriteAllText(
                    pdfPage,
                    $"<!DOCTYPE html><html><head><style>@page {{ size: {w}px {h}px; margin: 0 }} html, body {{ margin: 0; padding: 0 }} img {{ display: block }}</style></head><body><img src=\"figure.svg\" width=\"{w}\" height=\"{h}\"></body></html>")
                let pdf = Path.Combine(profile.FullName, "figure.pdf")
                match runChromium chromium profile.FullName [ "--no-pdf-header-footer"; $"--print-to-pdf={pdf}"; "file://" + pdfPage ] with
                | Some _ when File.Exists pdf -> Some { Png = png; Svg = svg; Pdf = File.ReadAllBytes pdf }
                | _ -> None
            | _ -> None
    finally
        try profile.Delete true with _ -> ()

/// Saves each figure as self-contained interactive HTML and, when Chromium is on PATH, PNG, SVG and PDF
/// beside it. Each file is written whole or not at all. The static exports (a few seconds of Chromium each) run
/// two at a time in the background; `Written` waits for them.
type FigureWriter(outDir: string, log: string -> unit) =
    let chromium = findChromium ()
    let mutable warned = false
    let written = ResizeArray<string>()
    let pending = ResizeArray<Threading.Tasks.Task>()
    let gate = new Threading.SemaphoreSlim(2)

    /// Whether PNG/SVG/PDF can be written (Chromium on PATH).
    member _.CanExportStatic = chromium.IsSome

    /// Every file written, once the background exports have finished (in the order the figures were saved).
    member _.Written =
        try Threading.Tasks.Task.WaitAll(pending.ToArray())
        with :? AggregateException as e -> Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw()
        List.ofSeq written

    member _.Save(name: string, chart: GenericChart) =
        let html = Path.Combine(outDir, name + ".html")
        writeAtomically html (chart |> Figures.selfContained |> GenericChart.toEmbeddedHTML)
        lock written (fun () -> written.Add html)
        match chromium with
        | Some c ->
            pending.Add(
                Threading.Tasks.Task.Run(fun () ->
                    gate.Wait()
                    try
                        match exportStatic c chart with
                        | Some f ->
                            let files =
                                [ for ext, write in [ "png", (fun p -> writeBytesAtomically p f.Png); "svg", (fun p -> writeAtomically p f.Svg); "pdf", (fun p -> writeBytesAtomically p f.Pdf) ] do
                                      let path = Path.Combine(outDir, name + "." + ext)
                                      write path
                                      yield path ]
                            lock written (fun () -> written.InsertRange(written.IndexOf html + 1, files))
                        | None -> log $"warning: chromium could not export {html} to PNG/SVG/PDF"
                    finally
                        gate.Release() |> ignore))
        | None when not warned ->
            warned <- true
            log "chromium is not on PATH: PNG/SVG/PDF figures skipped (HTML written); apt-get install chromium"
        | None -> ()

let private loadPaper (file: string) =
    match findRepoFile (Path.Combine("data", "paper", file)) with
    | Some p -> load p None
    | None -> inputError "data/paper/%s not found from %s; run from the repository (or the build output), which ships it" file Environment.CurrentDirectory

/// Runs the whole reproduction into `outDir`; returns the analyses.
let run (settings: Settings) (outDir: string) (log: string -> unit) (progress: string -> int -> int -> unit) =
    Directory.CreateDirectory outDir |> ignore
    let vr = loadPaper "visual_reasoning.csv"
    let ocr = loadPaper "ocr.csv"
    log "fitting visual reasoning"
    let fVr = analyseFamily settings progress "visual_reasoning" "Visual reasoning" true vr
    log "fitting OCR"
    let fOcr = analyseFamily settings progress "ocr" "OCR" false ocr
    let figures = FigureWriter(outDir, log)
    figures.Save("figure1a_visual_reasoning_q0", figure1For fVr 0.0)
    figures.Save("figure1b_visual_reasoning_q50", figure1For fVr 50.0)
    figures.Save("figure_ocr_q0", figure1For fOcr 0.0)
    figures.Save("figure_ocr_q50", figure1For fOcr 50.0)
    figures.Save(
        "parity",
        Figures.parity
            [ for f in [ fVr; fOcr ] -> { Name = f.Title; Spec = defaultSpec; Params = f.Continuous.Params; Observations = f.Observations } ]
    )
    // Heatmaps at Q = 50, where the frontier is interior for visual reasoning (at Q = 0 it is the V = 1 edge).
    let heatmapFor (f: FamilyAnalysis) (name: string) =
        let q = 50.0
        let points = f.Frontiers |> List.tryFind (fun (fq, _) -> fq = q) |> Option.map snd |> Option.defaultValue []
        figures.Save(name, Figures.heatmap $"{f.Title}: predicted error over (N, V), iso-FLOP lines at Q = {q}" defaultSpec f.Continuous.Params f.Observations q points)
    heatmapFor fVr "heatmap_visual_reasoning"
    heatmapFor fOcr "heatmap_ocr"
    writeAtomically (Path.Combine(outDir, "summary.json")) (Json.toText (summaryJson [ fVr; fOcr ]))
    writeAtomically (Path.Combine(outDir, "summary.md")) (summaryMarkdown [ fVr; fOcr ])
    [ fVr; fOcr ], figures.Written
