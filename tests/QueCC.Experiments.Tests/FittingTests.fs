module QueCC.Experiments.Tests.FittingTests

open System
open Xunit
open QueCC.Experiments.Data
open QueCC.Experiments.ScalingLaw
open QueCC.Experiments.Fitting
open QueCC.Experiments.Tests.Helpers

let spec = defaultSpec

/// The naive oracle: evaluate the SSE at every grid point with explicit loops, first minimum wins.
let bruteForceGrid (grid: GridSpec) (obs: Observation list) =
    let mutable best = infinity
    let mutable bestP = Unchecked.defaultof<LawParams>
    for al in grid.Alpha.Values do
        for be in grid.Beta.Values do
            for a in grid.A.Values do
                for d in grid.D.Values do
                    let p = { LawParams.A = a; Alpha = al; Beta = be; D = d }
                    let s = sse spec p obs
                    if s < best then
                        best <- s
                        bestP <- p
    bestP, best

let smallGrid =
    { A = { Lo = 0.3; Hi = 0.8; Count = 6 }
      Alpha = { Lo = 0.0; Hi = 0.15; Count = 7 }
      Beta = { Lo = 0.0; Hi = 0.04; Count = 5 }
      D = { Lo = 0.0; Hi = 0.2; Count = 4 } }

[<Fact>]
let ``axis values are numpy linspace (inclusive ends)`` () =
    Assert.Equal<float[]>([| 0.0; 0.05; 0.1; 0.15; 0.2 |], ({ Lo = 0.0; Hi = 0.2; Count = 5 }: Axis).Values |> Array.map (fun x -> Math.Round(x, 12)))
    Assert.Equal(5_000_000L, paperGrid.Size)

[<Fact>]
let ``vectorised grid equals a brute-force loop on a small grid`` () =
    for seed in 1 .. 3 do
        let truth = { LawParams.A = 0.55; Alpha = 0.06 + 0.01 * float seed; Beta = 0.017; D = 0.05 }
        let obs = synthetic spec truth 0.004 seed
        let expectedP, expectedSse = bruteForceGrid smallGrid obs
        let got = fitGrid spec { defaultGridOptions with Grid = smallGrid } obs
        Assert.Equal(expectedP, got.Params)
        assertClose 1e-12 expectedSse got.Sse

[<Fact>]
let ``grid SSE tensor matches the direct sum at every point of a small grid`` () =
    let obs = synthetic spec { LawParams.A = 0.5; Alpha = 0.08; Beta = 0.02; D = 0.1 } 0.01 7
    let t = gridSse spec smallGrid obs [| Array.create obs.Length 1.0 |]
    let values = t.reshape(-1L).data<float>().ToArray()
    let mutable i = 0
    for al in smallGrid.Alpha.Values do
        for be in smallGrid.Beta.Values do
            for a in smallGrid.A.Values do
                for d in smallGrid.D.Values do
                    assertClose 1e-12 (sse spec { LawParams.A = a; Alpha = al; Beta = be; D = d } obs) values[i]
                    i <- i + 1

[<Fact>]
let ``grid recovers on-grid parameters exactly from noiseless data`` () =
    let g = paperGrid
    let truth = { LawParams.A = g.A.Values[17]; Alpha = g.Alpha.Values[38]; Beta = g.Beta.Values[30]; D = g.D.Values[2] }
    let got = fitGrid spec defaultGridOptions (synthetic spec truth 0.0 0)
    Assert.Equal(truth, got.Params)
    assertClose 1e-20 0.0 got.Sse

[<Fact>]
let ``the random-subset search is seeded, searches the stated fraction, and never beats the exhaustive grid`` () =
    let obs = paperData "visual_reasoning.csv"
    let full = fitGrid spec defaultGridOptions obs
    let a = fitGrid spec { defaultGridOptions with Fraction = 0.2; Seed = 3 } obs
    let b = fitGrid spec { defaultGridOptions with Fraction = 0.2; Seed = 3 } obs
    Assert.Equal(a.Params, b.Params)
    Assert.Equal(1_000_000L, a.Evaluations)
    Assert.True(a.Sse >= full.Sse)
    let oneIn = fitGrid spec { defaultGridOptions with Fraction = 1.0 / 5_000_000.0; Seed = 3 } obs
    Assert.Equal(1L, oneIn.Evaluations)
    Assert.True(oneIn.Sse > full.Sse)

[<Fact>]
let ``invalid grid fraction is a one-line error`` () =
    assertInputError [ "--grid-fraction 0"; "(0, 1]" ] (fun () -> fitGrid spec { defaultGridOptions with Fraction = 0.0 } (paperData "visual_reasoning.csv"))

[<Fact>]
let ``continuous fit recovers off-grid parameters from noiseless data`` () =
    let truth = { LawParams.A = 0.6123; Alpha = 0.0731; Beta = 0.0173; D = 0.0412 }
    let got = fitContinuous spec (synthetic spec truth 0.0 0)
    assertClose 1e-5 truth.Alpha got.Params.Alpha
    assertClose 1e-5 truth.Beta got.Params.Beta
    assertClose 1e-4 truth.A got.Params.A
    assertClose 1e-4 truth.D got.Params.D
    Assert.True(got.Sse < 1e-14)

[<Fact>]
let ``continuous fit recovers parameters within tolerance from noisy data`` () =
    // With 28 points α trades off against the floor D, so one noisy draw can land far off at the paper's
    // residual scale (σ ≈ 0.004); at σ = 0.0005 the exponents come back within ±0.01 and ±0.003,
    // and over 10 draws at σ = 0.002 the mean exponents are unbiased to within ±0.01 and ±0.003.
    let truth = { LawParams.A = 0.58; Alpha = 0.071; Beta = 0.015; D = 0.02 }
    let got = fitContinuous spec (synthetic spec truth 0.0005 11)
    assertClose 0.01 truth.Alpha got.Params.Alpha
    assertClose 0.003 truth.Beta got.Params.Beta
    let fits = [ for seed in 1 .. 10 -> (fitContinuous spec (synthetic spec truth 0.002 seed)).Params ]
    assertClose 0.01 truth.Alpha (fits |> List.averageBy (fun p -> p.Alpha))
    assertClose 0.003 truth.Beta (fits |> List.averageBy (fun p -> p.Beta))

[<Fact>]
let ``continuous fit honours the bounds`` () =
    for file in [ "visual_reasoning.csv"; "ocr.csv" ] do
        let obs = paperData file
        let p = (fitContinuous spec obs).Params
        let minErr = obs |> List.map (fun o -> o.Error) |> List.min
        Assert.True(p.A > 0.0 && p.Alpha >= 0.0 && p.Beta >= 0.0 && p.D >= 0.0 && p.D < minErr, sprintf "%A" p)

[<Fact>]
let ``on the paper data the exhaustive grid lands near the published pair`` () =
    // Published: α = 0.077, β = 0.015, the best point of the authors' random 20% of this grid
    // (α index 38 = 0.07677, β index 30 = 0.01515). Searching all 5M points finds a lower SSE one
    // grid step away in α and two in β: α = 0.07475 (index 37), β = 0.01616 (index 32), A = 0.5571, D = 0.0333.
    let g = fitGrid spec defaultGridOptions (paperData "visual_reasoning.csv")
    assertClose 1e-12 paperGrid.Alpha.Values[37] g.Params.Alpha
    assertClose 1e-12 paperGrid.Beta.Values[32] g.Params.Beta
    assertClose 0.005 publishedAlpha g.Params.Alpha
    assertClose 0.002 publishedBeta g.Params.Beta

[<Fact>]
let ``continuous fit beats the best grid point and the published pair`` () =
    let obs = paperData "visual_reasoning.csv"
    let grid = fitGrid spec defaultGridOptions obs
    let cont = fitContinuousWith spec defaultContinuousOptions grid.Params obs
    let published = profileFit spec publishedAlpha publishedBeta obs
    Assert.True(cont.Sse < grid.Sse, sprintf "continuous %g vs grid %g" cont.Sse grid.Sse)
    Assert.True(cont.Sse < published.Sse, sprintf "continuous %g vs published %g" cont.Sse published.Sse)

[<Fact>]
let ``continuous fit is the global optimum: no exponent pair on a fine mesh does better`` () =
    // Independent oracle: for fixed (α, β) the best bounded A, D is closed-form (profileFit).
    for file in [ "visual_reasoning.csv"; "ocr.csv" ] do
        let obs = paperData file
        let cont = fitContinuous spec obs
        let best =
            seq { for i in 0 .. 150 do for j in 0 .. 150 -> 0.2 * float i / 150.0, 0.08 * float j / 150.0 }
            |> Seq.map (fun (al, be) -> (profileFit spec al be obs).Sse)
            |> Seq.min
        Assert.True(cont.Sse <= best + 1e-10, sprintf "%s: continuous %g vs mesh %g" file cont.Sse best)

[<Fact>]
let ``profile fit solves the bounded linear problem`` () =
    let truth = { LawParams.A = 0.5; Alpha = 0.08; Beta = 0.02; D = 0.07 }
    let p = profileFit spec truth.Alpha truth.Beta (synthetic spec truth 0.0 0)
    assertClose 1e-10 truth.A p.Params.A
    assertClose 1e-10 truth.D p.Params.D

[<Fact>]
let ``law text tokens shift T`` () =
    let q = { LawTextTokens = 50.0 }
    let truth = { LawParams.A = 0.7; Alpha = 0.07; Beta = 0.05; D = 0.02 }
    assertClose 1e-15 (0.7 * (2.0 ** -0.07) * (54.0 ** -0.05) + 0.02) (predict q truth 2.0 4.0)
    let got = fitContinuous q (synthetic q truth 0.0 0)
    assertClose 1e-4 truth.Beta got.Params.Beta

[<Fact>]
let ``bootstrap intervals cover the truth on synthetic data`` () =
    // 20 independent noisy data sets, each with a 95% percentile interval from 200 resamples: the true
    // exponents must be covered in most of them (expected ≈ 19/20; we require ≥ 15/20).
    let truth = { LawParams.A = 0.58; Alpha = 0.071; Beta = 0.015; D = 0.03 }
    let mutable alphaHits, betaHits = 0, 0
    for rep in 1 .. 20 do
        let obs = synthetic spec truth 0.002 (100 + rep)
        let b = bootstrap spec Continuous 200 rep 0.95 ignore obs
        if b.CiAlpha.Lo <= truth.Alpha && truth.Alpha <= b.CiAlpha.Hi then alphaHits <- alphaHits + 1
        if b.CiBeta.Lo <= truth.Beta && truth.Beta <= b.CiBeta.Hi then betaHits <- betaHits + 1
    Assert.True(alphaHits >= 15, sprintf "alpha covered %d/20" alphaHits)
    Assert.True(betaHits >= 15, sprintf "beta covered %d/20" betaHits)

[<Fact>]
let ``grid bootstrap gives intervals that contain the grid fit`` () =
    let obs = paperData "visual_reasoning.csv"
    let g = fitGrid spec { defaultGridOptions with Grid = smallGrid } obs
    let b = bootstrap spec (Grid { defaultGridOptions with Grid = smallGrid }) 40 1 0.95 ignore obs
    Assert.Equal(40, b.Samples.Length)
    Assert.True(b.CiAlpha.Lo <= g.Params.Alpha && g.Params.Alpha <= b.CiAlpha.Hi)

[<Fact>]
let ``bootstrap weights resample n observations`` () =
    let ws = bootstrapWeights 5 10 28
    for w in ws do
        Assert.Equal(28.0, Array.sum w)
    Assert.NotEqual<float[]>(ws[0], ws[1])

[<Fact>]
let ``quantile interpolates like numpy`` () =
    assertClose 1e-12 2.5 (quantile 0.5 [| 4.0; 1.0; 2.0; 3.0 |])
    assertClose 1e-12 1.15 (quantile 0.05 [| 1.0; 2.0; 3.0; 4.0 |])

[<Fact>]
let ``holdout predicts an unseen LLM size from noiseless data exactly`` () =
    let truth = { LawParams.A = 0.6; Alpha = 0.075; Beta = 0.016; D = 0.02 }
    let h = holdout spec Continuous 7.0 (synthetic spec truth 0.0 0)
    Assert.Equal(7, h.Points.Length)
    Assert.True(h.MaxAbsRelativeError < 1e-4, sprintf "%g" h.MaxAbsRelativeError)

[<Fact>]
let ``holdout of the 7B model on the paper data is within 2 percent`` () =
    let h = holdout spec Continuous 7.0 (paperData "visual_reasoning.csv")
    Assert.True(h.MaxAbsRelativeError < 0.02, sprintf "%g" h.MaxAbsRelativeError)

[<Fact>]
let ``holdout of an absent size is a one-line error`` () =
    assertInputError [ "--holdout-llm 14"; "0.5" ] (fun () -> holdout spec Continuous 14.0 (paperData "visual_reasoning.csv"))

/// Errors that grow with N and T (what noisy sweeps of untrained models give): the unbounded closed-form A is negative.
let private antiLaw () =
    [ for n in [ 0.5; 1.0; 2.0; 4.0 ] do
          for v in [ 1.0; 4.0; 16.0; 64.0 ] ->
              let err = 0.5 + 0.02 * log n + 0.01 * log v
              { Task = "anti"; LlmParamsB = n; VisualTokens = v; Score = 1.0 - err; Extra = Map.empty } ]

[<Fact>]
let ``continuous fit keeps A positive on data that rise with N and T, and reports the bound`` () =
    let obs = antiLaw ()
    // Oracle for the unbounded problem: ordinary least squares of y on f = N^-a T^-b at a = b = 0.05 has a negative slope.
    let f = obs |> List.map (fun o -> (o.LlmParamsB ** -0.05) * (o.VisualTokens ** -0.05)) |> Array.ofList
    let y = obs |> List.map (fun o -> o.Error) |> Array.ofList
    let mf, my = Array.average f, Array.average y
    let slope = (Array.fold2 (fun s a b -> s + (a - mf) * (b - my)) 0.0 f y) / (f |> Array.sumBy (fun a -> (a - mf) ** 2.0))
    Assert.True(slope < 0.0, sprintf "unbounded A %g" slope)
    let got = fitContinuous spec obs
    let p = got.Params
    let minErr = List.min (Array.toList y)
    Assert.True(p.A >= aMin && p.D >= 0.0 && p.D < minErr, sprintf "%A" p)
    // With A ≥ 0 the best this data allows is a flat law at the largest feasible floor: D → min error, SSE = Σ (y − min y)².
    let flat = y |> Array.sumBy (fun e -> (e - minErr) ** 2.0)
    Assert.True(got.Sse <= flat * (1.0 + 1e-6), sprintf "SSE %g > flat %g" got.Sse flat)
    let notes = atBounds obs p
    Assert.True(notes |> List.exists (fun s -> s.StartsWith "A at its lower bound") || notes |> List.exists (fun s -> s.StartsWith "D at its upper bound"), sprintf "%A" notes)

[<Fact>]
let ``a clean law has no parameter at a bound and profileFit keeps A positive`` () =
    let truth = { LawParams.A = 0.6123; Alpha = 0.0731; Beta = 0.0173; D = 0.0412 }
    let obs = synthetic spec truth 0.0 0
    Assert.Empty(atBounds obs (fitContinuous spec obs).Params)
    let prof = profileFit spec 0.05 0.05 (antiLaw ())
    Assert.True(prof.Params.A >= aMin, sprintf "%A" prof.Params)
