/// The paper's figures as Plotly.NET charts (pure: building a chart does no IO).
module QueCC.Experiments.Figures

open System
open Plotly.NET
open Plotly.NET.LayoutObjects
open Plotly.NET.TraceObjects
open QueCC.Experiments.Data
open QueCC.Experiments.ScalingLaw
open QueCC.Experiments.ComputeOptimal

let width, height = 1000, 700

/// A warm yellow→red ramp for LLM size, like the paper's truncated YlOrRd colour map (log-scaled in N).
let llmColour (nMin: float) (nMax: float) (n: float) =
    let t = if nMax > nMin then (log n - log nMin) / (log nMax - log nMin) else 1.0
    let stops = [| (254, 217, 118); (253, 141, 60); (227, 26, 28); (128, 0, 38) |]
    let x = Math.Clamp(t, 0.0, 1.0) * float (stops.Length - 1)
    let i = min (int x) (stops.Length - 2)
    let f = x - float i
    let lerp a b = int (Math.Round(float a + f * float (b - a)))
    let (r0, g0, b0), (r1, g1, b1) = stops[i], stops[i + 1]
    Color.fromRGB (lerp r0 r1) (lerp g0 g1) (lerp b0 b1)

/// An LLM size given in billions, as people say it: 7B, 300M, 26K.
let formatParams (nB: float) =
    if nB >= 0.1 then sprintf "%gB" (Math.Round(nB, 2))
    elif nB >= 1e-3 then sprintf "%gM" (Math.Round(nB * 1e3, 1))
    else sprintf "%gK" (Math.Round(nB * 1e6, 1))

/// Marker size grows with log V, so 1 and 576 tokens are both visible.
let markerSize (v: float) = 7.0 + 3.0 * Math.Log2(max v 1.0) / 1.6 |> int

/// Marker diameters for a set of visual-token counts: for a handful of counts (the paper's seven) one step of
/// 4 px per rank, 6 to 30 px, so every size is told apart; for many counts, by log V.
let markerSizesFor (vs: float list) : float -> int =
    let distinct = vs |> List.distinct |> List.sort
    if distinct.Length <= 8 then
        let rank = distinct |> List.mapi (fun i v -> v, i) |> Map.ofList
        fun v -> match rank.TryFind v with Some i -> 6 + 4 * i | None -> markerSize v
    else markerSize

let private logSpace (lo: float) (hi: float) (n: int) =
    [ for i in 0 .. n - 1 -> exp (log lo + (log hi - log lo) * float i / float (n - 1)) ]

let private legendOnly (name: string) =
    Chart.Scatter(x = [ nan ], y = [ nan ], mode = StyleParam.Mode.Markers, Name = name, ShowLegend = true)
    |> Chart.withMarker (Marker.init (Color = Color.fromString "rgba(0,0,0,0)"))

/// A fitted floor D on a bound of its range [0, smallest observed error) is a constraint at work, not an
/// estimate; the figure says so rather than showing it as a fitted value.
let boundNote (p: LawParams) (observations: Observation list) =
    let dMax = observations |> List.map (fun o -> o.Error) |> List.min
    if p.D <= 1e-9 then Some "D = 0, pinned at its lower bound"
    elif p.D >= dMax * (1.0 - 1e-6) then Some(sprintf "D = %.4f, pinned at its upper bound (the smallest error)" p.D)
    else None

type Figure1Input =
    { Title: string
      Spec: LawSpec
      Params: LawParams
      /// "α = 0.071 [0.06, 0.08]"-style legend text for the exponents.
      AlphaText: string
      BetaText: string
      TextTokens: float
      Observations: Observation list }

/// Figure 1 of the paper: error vs inference FLOPs (log), observed points sized by V and coloured by N,
/// fitted curves per N over V ∈ [1, 576], and the compute-optimal frontier dotted.
let figure1 (inp: Figure1Input) : GenericChart =
    let sizes = inp.Observations |> List.map (fun o -> o.LlmParamsB) |> List.distinct |> List.sort
    let vs = inp.Observations |> List.map (fun o -> o.VisualTokens)
    let vMin, vMax = List.min vs, List.max vs
    let nMin, nMax = List.head sizes, List.last sizes
    let colour = llmColour nMin nMax
    let sizeOf = markerSizesFor vs
    let q = inp.TextTokens
    let perSize =
        [ for n in sizes do
              let obs = inp.Observations |> List.filter (fun o -> o.LlmParamsB = n) |> List.sortBy (fun o -> o.VisualTokens)
              let curveV = logSpace vMin vMax 80
              yield
                  Chart.Line(
                      x = (curveV |> List.map (fun v -> inferenceFlops n q v)),
                      y = (curveV |> List.map (fun v -> predict inp.Spec inp.Params n v)),
                      Name = "fit, N = " + formatParams n,
                      LineColor = colour n,
                      ShowLegend = false
                  )
              yield
                  Chart.Point(
                      x = (obs |> List.map (fun o -> inferenceFlops n q o.VisualTokens)),
                      y = (obs |> List.map (fun o -> o.Error)),
                      Name = "N = " + formatParams n,
                      MultiText = (obs |> List.map (fun o -> sprintf "N = %s, V = %g" (formatParams n) o.VisualTokens))
                  )
                  |> Chart.withMarker (
                      Marker.init (
                          Color = colour n,
                          MultiSize = (obs |> List.map (fun o -> sizeOf o.VisualTokens)),
                          Outline = Line.init (Color = Color.fromString "black", Width = 0.5)
                      )
                  ) ]
    // The frontier: at every budget the best continuous V (V* does not depend on the budget), for LLMs
    // from a bit below the smallest to well above the largest measured size, as in the paper's plot.
    let vStar = (optimalVisualTokens inp.Spec inp.Params q vMin vMax).Value
    let frontierN = logSpace (nMin * 0.6) (nMax * 3.0) 40
    let frontierLine =
        Chart.Line(
            x = (frontierN |> List.map (fun n -> inferenceFlops n q vStar)),
            y = (frontierN |> List.map (fun n -> predict inp.Spec inp.Params n vStar)),
            Name = sprintf "compute-optimal (V* = %.3g)" vStar,
            LineColor = Color.fromString "black",
            LineDash = StyleParam.DrawingStyle.Dot,
            LineWidth = 3.0
        )
    // Plotly caps legend markers at 16 px, so the V sizes get their own key, an inset row of markers in the
    // empty top-right corner (error falls with FLOPs), drawn at exactly the sizes used in the plot.
    let distinctV = vs |> List.distinct |> List.sort
    let sizeKey =
        Chart.Scatter(
            x = [ 1 .. distinctV.Length ],
            y = List.replicate distinctV.Length 0.0,
            mode = StyleParam.Mode.Markers_Text,
            MultiText = (distinctV |> List.map (sprintf "%g")),
            TextPosition = StyleParam.TextPosition.TopCenter,
            ShowLegend = false
        )
        |> Chart.withMarker (Marker.init (Color = Color.fromString "grey", MultiSize = (distinctV |> List.map sizeOf), Outline = Line.init (Color = Color.fromString "black", Width = 0.5)))
        |> Chart.withAxisAnchor (X = 2, Y = 2)
    [ yield! perSize
      yield frontierLine
      yield legendOnly inp.AlphaText
      yield legendOnly inp.BetaText
      match boundNote inp.Params inp.Observations with
      | Some note -> yield legendOnly note
      | None -> ()
      yield sizeKey ]
    |> Chart.combine
    |> Chart.withXAxis (LinearAxis.init (Domain = StyleParam.Range.MinMax(0.62, 0.99), Anchor = StyleParam.LinearAxisId.Y 2, Visible = false, Range = StyleParam.Range.MinMax(-1.2, float distinctV.Length + 0.6)), StyleParam.SubPlotId.XAxis 2)
    |> Chart.withYAxis (LinearAxis.init (Domain = StyleParam.Range.MinMax(0.86, 0.99), Anchor = StyleParam.LinearAxisId.X 2, Visible = false, Range = StyleParam.Range.MinMax(-1.0, 1.6)), StyleParam.SubPlotId.YAxis 2)
    |> Chart.withAnnotations [ Annotation.init (X = 0.55, Y = 0.0, XRef = "x2", YRef = "y2", Text = "visual tokens V", ShowArrow = false, XAnchor = StyleParam.XAnchorPosition.Right) ]
    |> Chart.withTitle inp.Title
    |> Chart.withXAxisStyle (
        TitleText = (if q = 0.0 then "Inference FLOPs 2·N·V (log)" else sprintf "Inference FLOPs 2·N·(%g + V) (log)" q),
        AxisType = StyleParam.AxisType.Log
    )
    |> Chart.withYAxisStyle (TitleText = "Average downstream error")
    |> Chart.withSize (width, height)

type ParitySeries =
    { Name: string
      Spec: LawSpec
      Params: LawParams
      Observations: Observation list }

/// Observed vs predicted error, one series per task family, with the identity line.
let parity (series: ParitySeries list) : GenericChart =
    let all = series |> List.collect (fun s -> s.Observations |> List.map (fun o -> o.Error))
    let lo, hi = List.min all * 0.95, List.max all * 1.05
    [ yield Chart.Line(x = [ lo; hi ], y = [ lo; hi ], Name = "observed = predicted", LineColor = Color.fromString "grey", LineDash = StyleParam.DrawingStyle.Dash)
      for s in series do
          yield
              Chart.Point(
                  x = (s.Observations |> List.map (fun o -> predict s.Spec s.Params o.LlmParamsB o.VisualTokens)),
                  y = (s.Observations |> List.map (fun o -> o.Error)),
                  Name = s.Name,
                  MultiText = (s.Observations |> List.map (fun o -> sprintf "N = %s, V = %g" (formatParams o.LlmParamsB) o.VisualTokens))
              ) ]
    |> Chart.combine
    |> Chart.withTitle "Observed vs predicted error"
    |> Chart.withXAxisStyle (TitleText = "Predicted error")
    |> Chart.withYAxisStyle (TitleText = "Observed error")
    |> Chart.withSize (width, height)

/// Predicted error over (N, V) on log axes, with the observed grid marked, iso-FLOP lines 2·N·(Q+V) = C and
/// the compute-optimal (N, V) per budget over the token set (`frontierPoints`, computed at `textTokens`).
let heatmap (title: string) (spec: LawSpec) (p: LawParams) (observations: Observation list) (textTokens: float) (frontierPoints: FrontierPoint list) : GenericChart =
    let nLo, nHi, vLo, vHi = 0.3, 30.0, 1.0, 576.0
    let ns = logSpace nLo nHi 60
    let vs = logSpace vLo vHi 60
    let z = [ for v in vs -> [ for n in ns -> predict spec p n v ] ]
    let q = textTokens
    // Budgets half a decade apart through the middle of the map; each line is V = C / (2N) − Q inside the map.
    let cMid = 10.0 ** Math.Round(log10 (inferenceFlops (sqrt (nLo * nHi)) q (sqrt (vLo * vHi))))
    let budgets =
        [ for k in -6 .. 6 -> cMid * (10.0 ** (float k / 2.0)) ]
        |> List.filter (fun c -> c / (2.0 * nHi * 1e9) - q <= vHi && c / (2.0 * nLo * 1e9) - q >= vLo)
    let flopsText (c: float) =
        let e = int (floor (log10 c))
        let m = c / (10.0 ** float e)
        let sup = String.map (fun ch -> "⁰¹²³⁴⁵⁶⁷⁸⁹"[int ch - int '0']) (string e)
        (if abs (m - 1.0) < 1e-9 then "" else sprintf "%.2g·" m) + "10" + sup + " FLOPs"
    let isoLines =
        [ for i, c in List.indexed budgets do
              let pts =
                  logSpace nLo nHi 200
                  |> List.map (fun n -> n, c / (2.0 * n * 1e9) - q)
                  |> List.filter (fun (_, v) -> v >= vLo && v <= vHi)
              if pts.Length >= 2 then
                  let label = flopsText c
                  yield
                      Chart.Scatter(
                          x = (pts |> List.map fst),
                          y = (pts |> List.map snd),
                          mode = StyleParam.Mode.Lines_Text,
                          MultiText = (pts |> List.mapi (fun j _ -> if j = pts.Length / 2 && pts.Length >= 30 then label else "")),
                          TextPosition = StyleParam.TextPosition.TopRight,
                          Name = (sprintf "iso-FLOPs 2·N·(%g + V) = C, √10 apart" q),
                          ShowLegend = (i = 0)
                      )
                      |> Chart.withLineStyle (Color = Color.fromString "white", Dash = StyleParam.DrawingStyle.Dash, Width = 1.5)
                      |> GenericChart.mapTrace (Trace2DStyle.Scatter(TextFont = Font.init (Color = Color.fromString "white", Size = 12))) ]
    let inMap = frontierPoints |> List.filter (fun f -> f.LlmParamsB >= nLo && f.LlmParamsB <= nHi && f.VisualTokens >= vLo && f.VisualTokens <= vHi)
    [ yield
          Chart.Heatmap(zData = z, X = ns, Y = vs, Name = "predicted error", ColorScale = StyleParam.Colorscale.Viridis)
          |> Chart.withColorBar (ColorBar.init (Title = Title.init (Text = "predicted error", Side = StyleParam.Side.Right)))
      yield!
          isoLines
      if not inMap.IsEmpty then
          yield
              Chart.Line(
                  x = (inMap |> List.map (fun f -> f.LlmParamsB)),
                  y = (inMap |> List.map (fun f -> f.VisualTokens)),
                  Name = sprintf "compute-optimal (N, V) per budget, Q = %g" q,
                  ShowMarkers = true,
                  LineColor = Color.fromString "red",
                  LineWidth = 3.0
              )
      yield
          Chart.Point(
              x = (observations |> List.map (fun o -> o.LlmParamsB)),
              y = (observations |> List.map (fun o -> o.VisualTokens)),
              Name = "measured models"
          )
          |> Chart.withMarker (Marker.init (Color = Color.fromString "white", Symbol = StyleParam.MarkerSymbol.X, Size = 9, Outline = Line.init (Color = Color.fromString "black", Width = 1.0))) ]
    |> Chart.combine
    |> Chart.withTitle title
    |> Chart.withXAxisStyle (TitleText = "LLM parameters N (billions, log)", AxisType = StyleParam.AxisType.Log, MinMax = (log10 nLo, log10 nHi))
    |> Chart.withYAxisStyle (TitleText = "Visual tokens V (log)", AxisType = StyleParam.AxisType.Log, MinMax = (log10 vLo, log10 vHi))
    |> Chart.withLegendStyle (Orientation = StyleParam.Orientation.Horizontal, X = 0.0, Y = -0.14)
    |> Chart.withSize (width, height)

/// Embeds plotly.js so the HTML opens with no network (the default CDN reference renders blank offline).
let selfContained (chart: GenericChart) =
    chart |> Chart.withDisplayOptions (DisplayOptions.init (PlotlyJSReference = PlotlyJSReference.Full))

/// One training run's curve: (step, loss) points from metrics.jsonl.
type TrainingCurve = { Name: string; Steps: int list; Losses: float list }

/// Training loss against optimizer step, one line per run, with a moving average to see through batch noise.
let trainingCurves (title: string) (curves: TrainingCurve list) : GenericChart =
    let smooth (xs: float list) =
        let a = Array.ofList xs
        let w = max 1 (a.Length / 25)
        List.init a.Length (fun i ->
            let lo = max 0 (i - w + 1)
            Array.average a[lo..i])
    [ for c in curves do
          yield Chart.Line(x = c.Steps, y = c.Losses, Name = c.Name + " (per step)", Opacity = 0.35)
          yield Chart.Line(x = c.Steps, y = smooth c.Losses, Name = c.Name + " (moving average)", LineWidth = 3.0) ]
    |> Chart.combine
    |> Chart.withTitle title
    |> Chart.withXAxisStyle (TitleText = "optimizer step")
    |> Chart.withYAxisStyle (TitleText = "training loss (cross-entropy per supervised token)")
    |> Chart.withSize (width, height)
