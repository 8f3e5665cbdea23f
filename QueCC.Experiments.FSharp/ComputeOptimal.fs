/// Compute-optimal trade-off between LLM size and visual tokens under an inference budget
/// FLOPs = 2 · N · (Q + V).
module QueCC.Experiments.ComputeOptimal

open System
open QueCC.Experiments.Data
open QueCC.Experiments.ScalingLaw

/// Where the error-minimising V lies for a fixed budget.
type OptimalV =
    /// An interior stationary point of the law (the analytic formula below).
    | Interior of float
    /// Error keeps falling as V shrinks: use as few visual tokens as allowed.
    | AtLowerBound of float
    /// Error keeps falling as V grows: use as many visual tokens as allowed.
    | AtUpperBound of float

    member o.Value =
        match o with
        | Interior v
        | AtLowerBound v
        | AtUpperBound v -> v

/// The optimal visual-token count V* for Q text tokens, within [vMin, vMax].
///
/// At budget C the LLM gets N = C / (2(Q+V)), so
///   Y(V) − D = A · (C/2)^−α · (Q+V)^α · (V+q)^−β,
/// and, since the prefactor is positive, minimising Y means minimising g(V) = α ln(Q+V) − β ln(V+q):
///   g'(V) = α/(Q+V) − β/(V+q) = [ (α−β)V + αq − βQ ] / ((Q+V)(V+q)).
/// For α > β the numerator changes sign once, from negative to positive, so the unique minimum is
///   V* = (βQ − αq) / (α − β)
/// (with q = 0, the authors' law: V* = βQ/(α−β); Q = 0 gives V* = 0, i.e. the fewest tokens allowed).
/// V* does not depend on the budget C or on A and D. For α ≤ β the numerator never turns positive when
/// αq ≤ βQ (error falls with every extra token: the OCR regime) and never turns negative otherwise;
/// then the optimum sits on a bound. A V* outside [vMin, vMax] is clamped to the nearer bound.
let optimalVisualTokens (spec: LawSpec) (p: LawParams) (textTokens: float) (vMin: float) (vMax: float) : OptimalV =
    let a, b, q, Q = p.Alpha, p.Beta, spec.LawTextTokens, textTokens
    if a > b then
        let v = (b * Q - a * q) / (a - b)
        if v <= vMin then AtLowerBound vMin
        elif v >= vMax then AtUpperBound vMax
        else Interior v
    else
        // The numerator (α−β)V + αq − βQ does not increase with V: g falls everywhere, rises everywhere,
        // or rises then falls (a maximum inside, so the minimum is the better bound).
        let numeratorAt v = (a - b) * v + a * q - b * Q
        let g v = a * log (Q + v) - b * log (v + q)
        if numeratorAt vMin <= 0.0 then AtUpperBound vMax
        elif numeratorAt vMax >= 0.0 then AtLowerBound vMin
        elif g vMin <= g vMax then AtLowerBound vMin
        else AtUpperBound vMax

/// Predicted error at a FLOPs budget when V visual tokens are used (N follows from the budget).
let errorAtBudget (spec: LawSpec) (p: LawParams) (textTokens: float) (flops: float) (v: float) =
    predict spec p (llmParamsForBudget flops textTokens v) v

/// Numeric argmin of the error over V ∈ [vMin, vMax] at a budget: a dense log-spaced scan refined by
/// golden-section search. Works for any law shape; the oracle for `optimalVisualTokens`.
let numericOptimalVisualTokens (errorOf: float -> float) (vMin: float) (vMax: float) =
    let lo, hi = log vMin, log vMax
    let n = 2000
    let xs = Array.init (n + 1) (fun i -> lo + (hi - lo) * float i / float n)
    let i = xs |> Array.mapi (fun i x -> i, errorOf (exp x)) |> Array.minBy snd |> fst
    let mutable a = xs[max 0 (i - 1)]
    let mutable b = xs[min n (i + 1)]
    let phi = (sqrt 5.0 - 1.0) / 2.0
    for _ in 1 .. 200 do
        let c = b - phi * (b - a)
        let d = a + phi * (b - a)
        if errorOf (exp c) < errorOf (exp d) then b <- d else a <- c
    exp ((a + b) / 2.0)

type FrontierPoint =
    { Budget: float
      LlmParamsB: float
      VisualTokens: float
      Error: float }

/// The paper's visual-token set.
let paperTokenSet = [ 1.0; 4.0; 16.0; 36.0; 64.0; 144.0; 576.0 ]

/// Log-spaced budgets covering the FLOPs of LLMs from nMinB to nMaxB billion parameters at the token set.
let defaultBudgets (textTokens: float) (tokenSet: float list) (nMinB: float) (nMaxB: float) (count: int) =
    let lo = inferenceFlops nMinB textTokens (List.min tokenSet)
    let hi = inferenceFlops nMaxB textTokens (List.max tokenSet)
    List.init count (fun i -> exp (log lo + (log hi - log lo) * float i / float (count - 1)))

/// For each budget, the (N, V) with V from the token set (N = budget / (2(Q+V))) of least predicted error.
let frontier (spec: LawSpec) (p: LawParams) (textTokens: float) (tokenSet: float list) (budgets: float list) : FrontierPoint list =
    if List.isEmpty tokenSet then inputError "token set is empty; expected positive visual-token counts such as 1,4,16,36,64,144,576"
    for v in tokenSet do
        if not (v > 0.0) then inputError "token set holds %g; expected positive visual-token counts" v
    for c in budgets do
        if not (c > 0.0) then inputError "budget %g FLOPs; expected a positive number" c
    [ for c in budgets ->
          tokenSet
          |> List.map (fun v ->
              let n = llmParamsForBudget c textTokens v
              { Budget = c; LlmParamsB = n; VisualTokens = v; Error = predict spec p n v })
          |> List.minBy (fun f -> f.Error) ]

// ---------------------------------------------------------------------------------------------
// Other inference-cost models: the frontier when a budget buys something other than 2·N·(Q+V) FLOPs

/// Latency measured by `quecc bench latency --json` for one LLM shape at one Q.
type MeasuredCost =
    { Source: string
      LlmParameters: float
      TextTokens: float
      /// (V, time to first token in ms), sorted by V.
      PrefillMs: (float * float) list
      QueryPassMs: float }

/// What an inference costs, always linear in N, so a budget buys N = budget / cost(N = 1B, V).
type CostModel =
    /// The paper's 2·N·(Q+V) FLOPs.
    | FlopsCost
    /// 2·N·(Q+V) + 2·N·Q: QueCC's reference also runs the LLM over the Q question tokens to build its query.
    | FlopsPlusQuery
    /// Seconds: the measured time to first token plus the query pass, scaled from the measured LLM size to N
    /// (time ∝ N at fixed shape ratios, the FLOP count's own assumption), interpolated linearly in log V–log t
    /// between measured visual-token counts. V outside the measured range is refused rather than extrapolated.
    | MeasuredLatency of MeasuredCost

module CostModel =
    let name =
        function
        | FlopsCost -> "flops"
        | FlopsPlusQuery -> "flops+query"
        | MeasuredLatency m -> $"measured:{m.Source}"

    /// The budget's unit.
    let unit =
        function
        | FlopsCost
        | FlopsPlusQuery -> "FLOPs"
        | MeasuredLatency _ -> "seconds"

/// Cost of one inference with an LLM of 1B parameters at Q text and V visual tokens.
let unitCost (model: CostModel) (textTokens: float) (v: float) =
    match model with
    | FlopsCost -> inferenceFlops 1.0 textTokens v
    | FlopsPlusQuery -> inferenceFlops 1.0 textTokens v + inferenceFlops 1.0 textTokens 0.0
    | MeasuredLatency m ->
        if textTokens <> m.TextTokens then
            inputError "%s: measured at Q = %g text tokens; the frontier asks for Q = %g (measure at that Q)" m.Source m.TextTokens textTokens
        let pts = m.PrefillMs
        let vLo, vHi = fst (List.head pts), fst (List.last pts)
        if v < vLo || v > vHi then
            inputError "%s: V = %g is outside the measured visual-token counts %g..%g; expected a token set inside them" m.Source v vLo vHi
        let ms =
            match pts |> List.tryFind (fun (x, _) -> x = v) with
            | Some(_, t) -> t
            | None ->
                let (v0, t0), (v1, t1) = pts |> List.pairwise |> List.find (fun ((a, _), (b, _)) -> a <= v && v <= b)
                exp (log t0 + (log t1 - log t0) * (log v - log v0) / (log v1 - log v0))
        (ms + m.QueryPassMs) / 1000.0 * (1e9 / m.LlmParameters)

/// Budgets covering LLMs of nMinB..nMaxB billion parameters over the token set, in the cost model's unit.
let budgetsFor (model: CostModel) (textTokens: float) (tokenSet: float list) (nMinB: float) (nMaxB: float) (count: int) =
    let lo = nMinB * unitCost model textTokens (List.min tokenSet)
    let hi = nMaxB * unitCost model textTokens (List.max tokenSet)
    List.init count (fun i -> exp (log lo + (log hi - log lo) * float i / float (count - 1)))

/// `frontier` under a cost model: at each budget the (N = budget / cost(1B, V), V) of least predicted error.
let frontierUnder (model: CostModel) (spec: LawSpec) (p: LawParams) (textTokens: float) (tokenSet: float list) (budgets: float list) : FrontierPoint list =
    if List.isEmpty tokenSet then inputError "token set is empty; expected positive visual-token counts such as 1,4,16,36,64,144,576"
    for v in tokenSet do
        if not (v > 0.0) then inputError "token set holds %g; expected positive visual-token counts" v
    for c in budgets do
        if not (c > 0.0) then inputError "budget %g %s; expected a positive number" c (CostModel.unit model)
    [ for c in budgets ->
          tokenSet
          |> List.map (fun v ->
              let n = c / unitCost model textTokens v
              { Budget = c; LlmParamsB = n; VisualTokens = v; Error = predict spec p n v })
          |> List.minBy (fun f -> f.Error) ]

/// Reads `quecc bench latency --json` output: llm_parameters, text_tokens, query_pass_ms, points[].visual_tokens and
/// points[].prefill_ms. `source` names the file in messages.
let parseMeasuredCost (source: string) (text: string) : MeasuredCost =
    let root =
        try
            match System.Text.Json.Nodes.JsonNode.Parse text with
            | :? System.Text.Json.Nodes.JsonObject as o -> o
            | _ -> inputError "%s: expected the JSON object `quecc bench latency --json` prints" source
        with :? System.Text.Json.JsonException as e -> inputError "%s: not valid JSON (%s)" source (e.Message.Split('\n')[0])
    let number (o: System.Text.Json.Nodes.JsonObject) (where: string) (name: string) =
        match o[name] with
        | null -> inputError "%s: %smissing field \"%s\"; expected a number" source where name
        | n when n.GetValueKind() = System.Text.Json.JsonValueKind.Number && n.GetValue<float>() > 0.0 -> n.GetValue<float>()
        | n when n.GetValueKind() = System.Text.Json.JsonValueKind.Number && name = "query_pass_ms" && n.GetValue<float>() = 0.0 -> 0.0
        | n -> inputError "%s: %sfield \"%s\" is %s; expected a positive number" source where name (n.ToJsonString())
    let points =
        match root["points"] with
        | :? System.Text.Json.Nodes.JsonArray as a when a.Count > 0 ->
            [ for i in 0 .. a.Count - 1 ->
                  match a[i] with
                  | :? System.Text.Json.Nodes.JsonObject as p -> number p $"points[{i}]: " "visual_tokens", number p $"points[{i}]: " "prefill_ms"
                  | _ -> inputError "%s: points[%d] is not an object; expected {\"visual_tokens\", \"prefill_ms\", ...}" source i ]
        | _ -> inputError "%s: field \"points\" missing or empty; expected the measured visual-token counts" source
    let sorted = points |> List.sortBy fst
    match sorted |> List.pairwise |> List.tryFind (fun ((a, _), (b, _)) -> a = b) with
    | Some((v, _), _) -> inputError "%s: visual_tokens %g is measured twice; expected each V once" source v
    | None -> ()
    { Source = source
      LlmParameters = number root "" "llm_parameters"
      TextTokens = number root "" "text_tokens"
      PrefillMs = sorted
      QueryPassMs = number root "" "query_pass_ms" }
