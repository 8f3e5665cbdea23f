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
