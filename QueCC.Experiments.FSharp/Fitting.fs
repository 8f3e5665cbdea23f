/// Fitting the scaling law: the authors' grid search (exact and vectorised), a bounded continuous
/// least-squares fit driven by TorchSharp autograd, bootstrap intervals and the held-out-LLM check.
module QueCC.Experiments.Fitting

open System
open TorchSharp
open QueCC.Experiments.Data
open QueCC.Experiments.ScalingLaw

type private Tensor = torch.Tensor

/// An inclusive, evenly spaced axis of `Count` values (numpy.linspace semantics).
type Axis =
    { Lo: float
      Hi: float
      Count: int }

    member a.Values =
        if a.Count = 1 then [| a.Lo |]
        else Array.init a.Count (fun i -> a.Lo + (a.Hi - a.Lo) * float i / float (a.Count - 1))

type GridSpec =
    { A: Axis
      Alpha: Axis
      Beta: Axis
      D: Axis }

    member g.Size = int64 g.A.Count * int64 g.Alpha.Count * int64 g.Beta.Count * int64 g.D.Count

/// The authors' grid: 50 × 100 × 100 × 10 = 5,000,000 points.
let paperGrid =
    { A = { Lo = 0.2; Hi = 0.7; Count = 50 }
      Alpha = { Lo = 0.0; Hi = 0.2; Count = 100 }
      Beta = { Lo = 0.0; Hi = 0.05; Count = 100 }
      D = { Lo = 0.0; Hi = 0.3; Count = 10 } }

type GridOptions =
    { Grid: GridSpec
      /// 1.0 searches every point; F < 1 searches a random F-subset in seeded random order, as the authors did (0.2).
      Fraction: float
      Seed: int }

let defaultGridOptions = { Grid = paperGrid; Fraction = 1.0; Seed = 0 }

type FitMethod =
    | Grid of GridOptions
    | Continuous

type FitResult =
    { Method: string
      Params: LawParams
      Sse: float
      R2: float
      N: int
      /// Points of the objective evaluated (grid) or optimiser iterations (continuous).
      Evaluations: int64 }

let private toTensor (xs: float[]) = torch.tensor (xs, dtype = torch.ScalarType.Float64)

let private columns (spec: LawSpec) (obs: Observation list) =
    let lnN = obs |> List.map (fun o -> log o.LlmParamsB) |> Array.ofList
    let lnT = obs |> List.map (fun o -> log (o.VisualTokens + spec.LawTextTokens)) |> Array.ofList
    let y = obs |> List.map (fun o -> o.Error) |> Array.ofList
    lnN, lnT, y

let private checkAxis name (a: Axis) =
    if a.Count < 1 then inputError "grid axis %s: %d values, expected at least 1" name a.Count
    if not (a.Hi >= a.Lo) then inputError "grid axis %s: range [%g, %g] is empty, expected lo ≤ hi" name a.Lo a.Hi

/// SSE of every grid point for several weightings of the observations at once, as a
/// (W, |α|, |β|, |A|, |D|) tensor. For fixed (α, β) the SSE is a quadratic form in (A, D):
///   Σ w (A f + D − y)² = A²Σwf² + 2AD Σwf − 2A Σwfy + D²Σw − 2D Σwy + Σwy²,   f = N^−α T^−β,
/// so each (α, β) pair needs three sums over the observations and the 5M-point grid costs a few
/// broadcast multiply-adds instead of 5M × n power evaluations. Values agree with the direct sum to ~1e-15.
let gridSse (spec: LawSpec) (grid: GridSpec) (obs: Observation list) (weights: float[][]) : Tensor =
    checkAxis "A" grid.A
    checkAxis "alpha" grid.Alpha
    checkAxis "beta" grid.Beta
    checkAxis "D" grid.D
    let lnN, lnT, y = columns spec obs
    let n = int64 lnN.Length
    let lnN, lnT, y = toTensor lnN, toTensor lnT, toTensor y
    let w = (toTensor (Array.concat weights)).reshape (int64 weights.Length, n) // (W, n)
    let alpha = toTensor grid.Alpha.Values
    let beta = toTensor grid.Beta.Values
    let a = toTensor grid.A.Values
    let d = toTensor grid.D.Values
    // f[α, β, i] = exp(−α lnN_i − β lnT_i)
    let f = (-(alpha.view (-1L, 1L, 1L) * lnN.view (1L, 1L, -1L)) - beta.view (1L, -1L, 1L) * lnT.view (1L, 1L, -1L)).exp () // (Nα, Nβ, n)
    let wf = w.view (-1L, 1L, 1L, n) * f.unsqueeze 0 // (W, Nα, Nβ, n)
    let sff = (wf * f.unsqueeze 0).sum (-1L) // (W, Nα, Nβ)
    let sf = wf.sum (-1L)
    let sfy = (wf * y).sum (-1L)
    let sw = w.sum (-1L) // (W)
    let sy = (w * y).sum (-1L)
    let syy = (w * y * y).sum (-1L)
    let a4 = a.view (1L, 1L, 1L, -1L, 1L) // (1, 1, 1, NA, 1)
    let d4 = d.view (1L, 1L, 1L, 1L, -1L) // (1, 1, 1, 1, ND)
    let e4 (t: Tensor) = t.view (t.shape[0], t.shape[1], t.shape[2], 1L, 1L)
    let termA = a4 * a4 * e4 sff - 2.0 * a4 * e4 sfy // (W, Nα, Nβ, NA, 1)
    let termD = (d4 * d4 * sw.view (-1L, 1L, 1L, 1L, 1L) - 2.0 * d4 * sy.view (-1L, 1L, 1L, 1L, 1L)) + syy.view (-1L, 1L, 1L, 1L, 1L) // (W, 1, 1, 1, ND)
    termA + 2.0 * e4 sf * (a4 * d4) + termD // (W, Nα, Nβ, NA, ND)

let private unravel (grid: GridSpec) (flat: int64) =
    let nd, na, nb = int64 grid.D.Count, int64 grid.A.Count, int64 grid.Beta.Count
    let iD = flat % nd
    let iA = (flat / nd) % na
    let iB = (flat / (nd * na)) % nb
    let iAl = flat / (nd * na * nb)
    { LawParams.A = grid.A.Values[int iA]; Alpha = grid.Alpha.Values[int iAl]; Beta = grid.Beta.Values[int iB]; D = grid.D.Values[int iD] }

/// Best grid point of one weighting's flattened SSE (exhaustive, or the authors' random subset).
let private bestOf (opts: GridOptions) (sseFlat: Tensor) =
    let total = sseFlat.shape[0]
    if opts.Fraction >= 1.0 then
        let i = sseFlat.argmin().item<int64> ()
        i, total
    else
        // The authors shuffle the grid and stop after 20% of it: a seeded permutation's prefix, first minimum wins.
        let k = max 1L (int64 (Math.Ceiling(opts.Fraction * float total)))
        let gen = new torch.Generator(uint64 opts.Seed)
        let perm = torch.randperm (total, generator = gen)
        let order = perm.narrow (0L, 0L, k)
        let j = sseFlat.index_select(0L, order).argmin().item<int64> ()
        order[j].item<int64> (), k

let private validateGridOptions (opts: GridOptions) =
    if not (opts.Fraction > 0.0 && opts.Fraction <= 1.0) then
        inputError "--grid-fraction %g: expected a fraction in (0, 1]" opts.Fraction

/// Grid fits for several weightings of the same observations (one per row of `weights`).
let fitGridWeighted (spec: LawSpec) (opts: GridOptions) (obs: Observation list) (weights: float[][]) : (LawParams * float * int64)[] =
    validateGridOptions opts
    use _scope = torch.NewDisposeScope()
    let sse = gridSse spec opts.Grid obs weights
    [| for wi in 0 .. weights.Length - 1 do
           let flat = sse[int64 wi].reshape (-1L)
           let i, evaluated = bestOf opts flat
           yield unravel opts.Grid i, flat[i].item<float> (), evaluated |]

let private resultOf spec methodName obs p evals =
    { Method = methodName; Params = p; Sse = sse spec p obs; R2 = r2 spec p obs; N = List.length obs; Evaluations = evals }

/// The authors' grid search (exhaustive by default).
let fitGrid (spec: LawSpec) (opts: GridOptions) (obs: Observation list) : FitResult =
    let p, _, evals = (fitGridWeighted spec opts obs [| Array.create obs.Length 1.0 |])[0]
    resultOf spec "grid" obs p evals

// ---------------------------------------------------------------------------------------------
// Continuous fit: bounded least squares by variable projection.
// For fixed exponents the law is linear in (A, D), and the SSE is a convex quadratic in them; with the bound
// D ∈ [0, Dmax] (Dmax = the smallest observed error: the floor cannot exceed any observed error) its minimum
// is the unconstrained D clamped to the bound, with A re-solved for that D. That closed form is written in
// tensor operations, so the SSE becomes a function of (α, β) alone whose gradient and Hessian TorchSharp
// autograd provides (α = softplus u, β = softplus v keep α, β ≥ 0). Removing A and D leaves a 2-parameter,
// well-conditioned problem: Adam gets into the basin, then a Levenberg-damped Newton method (autograd
// double backward) converges; a problem accepts a step only if its loss falls.
// Many problems (bootstrap resamples × starting points) are solved at once as one batch: their losses
// are independent, so the gradient and the Hessian rows of the summed loss are each problem's own.

type ContinuousOptions =
    { AdamSteps: int
      AdamLr: float
      NewtonSteps: int
      /// Extra starting points besides the grid optimum (a fixed, spread-out set); only α, β matter.
      Starts: LawParams list }

let defaultStarts =
    [ for al in [ 0.01; 0.05; 0.15; 0.4 ] do
          for be in [ 0.005; 0.03; 0.1 ] do
              yield { LawParams.A = 1.0; Alpha = al; Beta = be; D = 0.0 } ]

let defaultContinuousOptions = { AdamSteps = 150; AdamLr = 0.05; NewtonSteps = 40; Starts = defaultStarts }

let private softplusInv (x: float) = let x = max x 1e-8 in if x > 30.0 then x else log (Math.Exp x - 1.0)

/// Smallest A the continuous fit and the profile fit accept: the law needs A > 0 (with A ≤ 0 more parameters or tokens
/// would not lower the error, and α, β lose their meaning), and a strictly positive floor keeps N^−α T^−β identifiable.
let aMin = 1e-9

/// Best bounded (A, D) — A ≥ aMin, 0 ≤ D ≤ Dmax — for each problem's exponents, and the weighted SSE there. The SSE is a
/// convex quadratic in (A, D), so its box-constrained minimum is the free minimum when that is feasible, else the best
/// of the four edge minima (each a 1-D minimum clamped to its edge); all five are computed and the feasible best taken.
/// Shapes: u (P, 2); lnN, lnT, y (1, n); w (P, n).
let private project (dMax: float) (lnN: Tensor) (lnT: Tensor) (y: Tensor) (w: Tensor) (u: Tensor) =
    let alpha = torch.nn.functional.softplus (u.narrow (1L, 0L, 1L)) // (P, 1)
    let beta = torch.nn.functional.softplus (u.narrow (1L, 1L, 1L))
    let f = (-(alpha * lnN) - beta * lnT).exp () // (P, n)
    let sw = w.sum (-1L, keepdim = true)
    let sf = (w * f).sum (-1L, keepdim = true)
    let sff = (w * f * f).sum (-1L, keepdim = true)
    let sy = (w * y).sum (-1L, keepdim = true)
    let sfy = (w * f * y).sum (-1L, keepdim = true)
    let syy = (w * y * y).sum (-1L, keepdim = true)
    let dHi = dMax * (1.0 - 1e-12)
    let lo, hi = torch.tensor 0.0, torch.tensor dHi
    let aLo = torch.tensor aMin
    let quad (a: Tensor) (d: Tensor) = a * a * sff + 2.0 * a * d * sf - 2.0 * a * sfy + d * d * sw - 2.0 * d * sy + syy // (P, 1)
    let aFor (d: Tensor) = torch.maximum ((sfy - d * sf) / sff, aLo)
    let dFor (a: Tensor) = ((sy - a * sf) / sw).clamp (lo, hi)
    let dFree = (sy * sff - sf * sfy) / (sw * sff - sf * sf)
    let aFree = (sfy - dFree * sf) / sff
    let freeOk = dFree.ge(lo).logical_and(dFree.le hi).logical_and(aFree.ge aLo).logical_and (dFree.isfinite ())
    let d0 = torch.zeros_like sf
    let dM = d0 + dHi
    let cands =
        [ aFree, dFree
          aFor d0, d0
          aFor dM, dM
          aLo.expand_as sf, dFor (aLo.expand_as sf) ]
    let losses =
        cands
        |> List.mapi (fun i (a, d) ->
            let l = quad a d
            if i = 0 then torch.where (freeOk, l, torch.zeros_like l + Double.PositiveInfinity) else l)
    let lossCat = torch.cat (losses |> Array.ofList, 1L) // (P, 5)
    let best = lossCat.argmin (1L, keepdim = true) // (P, 1)
    let pick (xs: Tensor list) = torch.cat(xs |> Array.ofList, 1L).gather (1L, best)
    let a = pick (cands |> List.map fst)
    let d = pick (cands |> List.map snd)
    let r = a * f + d - y
    let loss = (w * r * r).sum (-1L) // (P)
    loss, a, alpha, beta, d

/// Solves many weighted fits at once; returns per weighting (params, weighted SSE) of its best start.
let fitContinuousBatch (spec: LawSpec) (opts: ContinuousOptions) (obs: Observation list) (weights: float[][]) (starts: LawParams list[]) =
    use _scope = torch.NewDisposeScope()
    let lnNa, lnTa, ya = columns spec obs
    let n = int64 lnNa.Length
    let dMax = Array.min ya
    if dMax <= 0.0 then inputError "an observed score of 1 leaves no room for the floor D; expected every error 1 − score > 0"
    let lnN, lnT, y = (toTensor lnNa).unsqueeze 0, (toTensor lnTa).unsqueeze 0, (toTensor ya).unsqueeze 0
    // Problem p = (weighting b, start s).
    let problems = [| for b in 0 .. weights.Length - 1 do for s in starts[b] do yield b, s |]
    let P = int64 problems.Length
    let w = (toTensor (problems |> Array.collect (fun (b, _) -> weights[b]))).reshape (P, n)
    let u0 = (toTensor (problems |> Array.collect (fun (_, s) -> [| softplusInv s.Alpha; softplusInv s.Beta |]))).reshape (P, 2L)
    let lossOf (u: Tensor) = let l, _, _, _, _ = project dMax lnN lnT y w u in l
    let finite (l: Tensor) = torch.where(l.isfinite (), l, torch.tensor Double.PositiveInfinity)
    let uParam = torch.nn.Parameter(u0.clone ())
    let adam = torch.optim.Adam([ uParam ], lr = opts.AdamLr)
    for _ in 1 .. opts.AdamSteps do
        use _step = torch.NewDisposeScope()
        adam.zero_grad ()
        let loss = lossOf uParam
        // Problems whose projection is degenerate (NaN) must not poison the others' gradients.
        torch.where(loss.isfinite (), loss, torch.zeros_like loss).sum().backward ()
        adam.step () |> ignore
    // Keep each problem's better of start and Adam result.
    let adamU = uParam.detach().clone ()
    let startLoss, adamLoss = finite (lossOf u0), finite (lossOf adamU)
    let mutable cur = torch.where(startLoss.le(adamLoss).unsqueeze 1, u0, adamU)
    let mutable curLoss = torch.minimum (startLoss, adamLoss)
    let mutable lambda = torch.ones (P, 1L, 1L, dtype = torch.ScalarType.Float64) * 1e-3
    let eye = torch.eye(2L, dtype = torch.ScalarType.Float64).unsqueeze 0
    for _ in 1 .. opts.NewtonSteps do
        use _step = torch.NewDisposeScope()
        let uv = cur.clone().requires_grad_ (true)
        let loss = lossOf uv
        let total = torch.where(loss.isfinite (), loss, torch.zeros_like loss).sum ()
        let g = torch.autograd.grad([| total |], [| uv |], retain_graph = true, create_graph = true)[0] // (P, 2)
        let rows = [| for k in 0L .. 1L -> torch.autograd.grad([| g.select(1L, k).sum () |], [| uv |], retain_graph = true)[0] |]
        let h = torch.stack(rows, 1L).detach () // (P, 2, 2)
        let h = torch.where(h.isfinite (), h, torch.zeros_like h)
        let gd = torch.where(g.isfinite (), g, torch.zeros_like g).detach ()
        // Marquardt scaling: damp each direction by its own curvature, so ill-scaled exponents stay balanced.
        let diag = h.diagonal(dim1 = 1L, dim2 = 2L).abs().unsqueeze (2L) * eye + 1e-300
        let step = torch.linalg.solve(h + lambda * (diag + 1e-12 * eye), gd.unsqueeze 2).squeeze(2L)
        let cand = cur - step
        let candLoss = finite (lossOf cand)
        let ok = candLoss.lt curLoss
        let next = torch.where(ok.unsqueeze 1, cand, cur)
        let nextLoss = torch.where(ok, candLoss, curLoss)
        let nextLambda = torch.where(ok.view(-1L, 1L, 1L), lambda / 4.0, lambda * 4.0).clamp(torch.tensor 1e-15, torch.tensor 1e15)
        cur <- next.MoveToOuterDisposeScope ()
        curLoss <- nextLoss.MoveToOuterDisposeScope ()
        lambda <- nextLambda.MoveToOuterDisposeScope ()
    let loss, a, alpha, beta, d = project dMax lnN lnT y w cur
    let col (t: Tensor) = t.reshape(-1L).data<float>().ToArray ()
    let a, alpha, beta, d, losses = col a, col alpha, col beta, col d, col (finite loss)
    // Best start per weighting.
    [| for b in 0 .. weights.Length - 1 do
           let idx = [| 0 .. problems.Length - 1 |] |> Array.filter (fun i -> fst problems[i] = b)
           let best = idx |> Array.minBy (fun i -> losses[i])
           yield { LawParams.A = a[best]; Alpha = alpha[best]; Beta = beta[best]; D = d[best] }, losses[best] |]

/// Bounded continuous least squares, multi-start including the grid optimum.
let fitContinuousWith (spec: LawSpec) (opts: ContinuousOptions) (gridStart: LawParams) (obs: Observation list) : FitResult =
    let p, _ = (fitContinuousBatch spec opts obs [| Array.create obs.Length 1.0 |] [| gridStart :: opts.Starts |])[0]
    resultOf spec "continuous" obs p (int64 (opts.AdamSteps + opts.NewtonSteps))

let fitContinuous spec obs =
    let g = fitGrid spec defaultGridOptions obs
    fitContinuousWith spec defaultContinuousOptions g.Params obs

let fit (spec: LawSpec) (methodChoice: FitMethod) (obs: Observation list) : FitResult =
    match methodChoice with
    | Grid opts -> fitGrid spec opts obs
    | Continuous -> fitContinuous spec obs

// ---------------------------------------------------------------------------------------------
// Uncertainty.

type Interval = { Lo: float; Hi: float }

type BootstrapResult =
    { Resamples: int
      Level: float
      CiA: Interval
      CiAlpha: Interval
      CiBeta: Interval
      CiD: Interval
      /// α/β of each resample, summarised: the paper's "5× faster" claim with its uncertainty.
      AlphaOverBeta: Interval
      Samples: LawParams[] }

/// Linear-interpolated quantile (numpy's default) of a sample.
let quantile (q: float) (xs: float[]) =
    let s = Array.sort xs
    let pos = q * float (s.Length - 1)
    let lo = int (floor pos)
    let hi = min (lo + 1) (s.Length - 1)
    s[lo] + (pos - float lo) * (s[hi] - s[lo])

/// Observation weights of B nonparametric bootstrap resamples (counts of each observation in a draw of n with replacement).
let bootstrapWeights (seed: int) (b: int) (n: int) =
    let rng = Random(seed)
    Array.init b (fun _ ->
        let w = Array.zeroCreate n
        for _ in 1 .. n do
            let i = rng.Next n
            w[i] <- w[i] + 1.0
        w)

/// Percentile bootstrap: refit the law on B resamples of the observations, 95% (by default) intervals.
/// `progress` is told how many resamples are done.
let bootstrap (spec: LawSpec) (methodChoice: FitMethod) (b: int) (seed: int) (level: float) (progress: int -> unit) (obs: Observation list) : BootstrapResult =
    if b < 2 then inputError "--bootstrap %d: expected at least 2 resamples" b
    let weights = bootstrapWeights seed b obs.Length
    // Grid: the 5M-point SSE tensor is 40 MB per resample, so few resamples per batch.
    // Continuous: every resample starts from the full-data optimum (and a few spread points); one batch is cheap.
    let chunk, fitChunk =
        match methodChoice with
        | Grid opts ->
            4, fun (ws: float[][]) -> fitGridWeighted spec opts obs ws |> Array.map (fun (p, _, _) -> p)
        | Continuous ->
            let full = (fitContinuous spec obs).Params
            let starts = full :: List.take 2 defaultStarts
            let opts = { defaultContinuousOptions with AdamSteps = 100; NewtonSteps = 30 }
            100, fun ws -> fitContinuousBatch spec opts obs ws (Array.create ws.Length starts) |> Array.map fst
    let samples =
        [| for c0 in 0 .. chunk .. b - 1 do
               let ws = weights[c0 .. min (b - 1) (c0 + chunk - 1)]
               let fits = fitChunk ws
               progress (c0 + ws.Length)
               yield! fits |]
    let tail = (1.0 - level) / 2.0
    let interval (f: LawParams -> float) =
        let xs = samples |> Array.map f
        { Lo = quantile tail xs; Hi = quantile (1.0 - tail) xs }
    { Resamples = b
      Level = level
      CiA = interval (fun p -> p.A)
      CiAlpha = interval (fun p -> p.Alpha)
      CiBeta = interval (fun p -> p.Beta)
      CiD = interval (fun p -> p.D)
      AlphaOverBeta = interval (fun p -> if p.Beta > 0.0 then p.Alpha / p.Beta else infinity)
      Samples = samples }

type HoldoutPoint =
    { VisualTokens: float
      Observed: float
      Predicted: float
      RelativeError: float }

type HoldoutResult =
    { LlmParamsB: float
      Fit: FitResult
      Points: HoldoutPoint list
      MeanAbsRelativeError: float
      MaxAbsRelativeError: float }

/// Fits without one LLM size and predicts its errors (the paper's 14B extrapolation check).
let holdout (spec: LawSpec) (methodChoice: FitMethod) (nB: float) (obs: Observation list) : HoldoutResult =
    let held, train = obs |> List.partition (fun o -> abs (o.LlmParamsB - nB) < 1e-9)
    if held.IsEmpty then
        let sizes = obs |> List.map (fun o -> o.LlmParamsB) |> List.distinct |> List.map string
        inputError "--holdout-llm %g: no observations with that LLM size; the data has %s" nB (String.Join(", ", sizes))
    validateForLaw (sprintf "the data without the %gB LLM" nB) train |> ignore
    let f = fit spec methodChoice train
    let points =
        held
        |> List.map (fun o ->
            let p = predict spec f.Params o.LlmParamsB o.VisualTokens
            { VisualTokens = o.VisualTokens; Observed = o.Error; Predicted = p; RelativeError = (p - o.Error) / o.Error })
    let rel = points |> List.map (fun p -> abs p.RelativeError)
    { LlmParamsB = nB; Fit = f; Points = points; MeanAbsRelativeError = List.average rel; MaxAbsRelativeError = List.max rel }

/// Best A > 0 and D ∈ [0, min error) for fixed exponents (a closed-form bounded linear least squares):
/// how well a published (α, β) pair can fit the data at best.
let profileFit (spec: LawSpec) (alpha: float) (beta: float) (obs: Observation list) : FitResult =
    let f = obs |> List.map (fun o -> (o.LlmParamsB ** -alpha) * ((o.VisualTokens + spec.LawTextTokens) ** -beta)) |> Array.ofList
    let y = obs |> List.map (fun o -> o.Error) |> Array.ofList
    let mf, my = Array.average f, Array.average y
    let sfy = Array.fold2 (fun s a b -> s + (a - mf) * (b - my)) 0.0 f y
    let sff = f |> Array.sumBy (fun a -> (a - mf) ** 2.0)
    let dMax = Array.min y
    let aFor d = (Array.fold2 (fun s a b -> s + a * (b - d)) 0.0 f y) / (f |> Array.sumBy (fun a -> a * a))
    let a0 = if sff > 0.0 then sfy / sff else 0.0
    let d0 = my - a0 * mf
    let a, d =
        if sff > 0.0 && d0 >= 0.0 && d0 < dMax && a0 >= aMin then a0, d0
        else
            // The optimum lies on a bound of D: the SSE is convex, so the better bound wins.
            [ 0.0; dMax ] |> List.map (fun d -> max (aFor d) aMin, d) |> List.minBy (fun (a, d) -> sse spec { LawParams.A = a; Alpha = alpha; Beta = beta; D = d } obs)
    let p = { LawParams.A = a; Alpha = alpha; Beta = beta; D = d }
    resultOf spec "profile" obs p 0L

/// The parameters of a fit that sit on a bound of the continuous fit (A at aMin, α or β at 0, D at 0 or at the smallest
/// observed error), as readable notes; empty when every parameter is interior. A parameter on a bound was not estimated
/// by the data: its interval from the bootstrap is not a confidence statement about an interior optimum.
let atBounds (obs: Observation list) (p: LawParams) : string list =
    let dMax = obs |> List.map (fun o -> o.Error) |> List.min
    [ if p.A <= aMin * 1.01 then yield sprintf "A at its lower bound %g (the data show no decrease of the error with N or T)" aMin
      if p.Alpha < 1e-6 then yield "alpha at its lower bound 0 (no gain from a larger LLM)"
      if p.Beta < 1e-6 then yield "beta at its lower bound 0 (no gain from more visual tokens)"
      if p.D <= 1e-12 then yield "D at its lower bound 0"
      if p.D >= dMax * (1.0 - 1e-9) then yield sprintf "D at its upper bound %g (the smallest observed error)" dMax ]
