module QueCC.Experiments.Tests.ComputeOptimalTests

open Xunit
open QueCC.Experiments.ScalingLaw
open QueCC.Experiments.ComputeOptimal
open QueCC.Experiments.Tests.Helpers

let law = { LawParams.A = 0.59; Alpha = 0.071; Beta = 0.0151; D = 0.0 }

[<Fact>]
let ``FLOPs are 2 N (Q + V) and the budget buys N back`` () =
    assertClose 1e-3 (2.0 * 7e9 * 51.0) (inferenceFlops 7.0 50.0 1.0)
    assertClose 1e-12 7.0 (llmParamsForBudget (inferenceFlops 7.0 50.0 1.0) 50.0 1.0)

[<Fact>]
let ``analytic V* equals the numeric argmin where it is interior`` () =
    let cases =
        [ defaultSpec, law, 50.0
          defaultSpec, { law with Alpha = 0.077; Beta = 0.015 }, 50.0
          defaultSpec, { law with Alpha = 0.2; Beta = 0.05; D = 0.1 }, 300.0
          { LawTextTokens = 2.0 }, { law with Alpha = 0.09; Beta = 0.03 }, 120.0 ]
    for spec, p, q in cases do
        match optimalVisualTokens spec p q 1.0 576.0 with
        | Interior v ->
            let numeric = numericOptimalVisualTokens (errorAtBudget spec p q 1e13) 1.0 576.0
            assertClose (1e-4 * v) v numeric
            // The same V* at another budget: it does not depend on C.
            assertClose (1e-4 * v) v (numericOptimalVisualTokens (errorAtBudget spec p q 1e16) 1.0 576.0)
        | other -> failwithf "expected an interior optimum, got %A" other

[<Fact>]
let ``the published exponents give V* = beta Q / (alpha - beta), about 12 tokens at Q = 50`` () =
    let p = { law with Alpha = 0.077; Beta = 0.015 }
    assertClose 1e-9 (0.015 * 50.0 / 0.062) (optimalVisualTokens defaultSpec p 50.0 1.0 576.0).Value

[<Fact>]
let ``with no text tokens one visual token is optimal`` () =
    Assert.Equal(AtLowerBound 1.0, optimalVisualTokens defaultSpec law 0.0 1.0 576.0)
    let numeric = numericOptimalVisualTokens (errorAtBudget defaultSpec law 0.0 1e12) 1.0 576.0
    assertClose 1e-6 1.0 numeric

[<Fact>]
let ``when beta exceeds alpha (OCR) the most tokens are optimal`` () =
    let ocr = { LawParams.A = 0.9; Alpha = 0.028; Beta = 0.039; D = 0.0 }
    for q in [ 0.0; 50.0 ] do
        Assert.Equal(AtUpperBound 576.0, optimalVisualTokens defaultSpec ocr q 1.0 576.0)
        assertClose 1e-3 576.0 (numericOptimalVisualTokens (errorAtBudget defaultSpec ocr q 1e13) 1.0 576.0)

[<Fact>]
let ``bound cases agree with the numeric argmin over a sweep of exponents`` () =
    for al in [ 0.01; 0.03; 0.05; 0.08 ] do
        for be in [ 0.01; 0.03; 0.05; 0.08 ] do
            for q in [ 0.0; 10.0; 200.0 ] do
                for lawQ in [ 0.0; 5.0 ] do
                    let spec = { LawTextTokens = lawQ }
                    let p = { law with Alpha = al; Beta = be }
                    let analytic = (optimalVisualTokens spec p q 1.0 576.0).Value
                    let f = errorAtBudget spec p q 1e13
                    let numeric = numericOptimalVisualTokens f 1.0 576.0
                    // Compare the error reached, which is what the optimum is about (flat optima move V a lot).
                    assertClose 1e-9 (f numeric) (f analytic)

[<Fact>]
let ``frontier picks the least-error token count at every budget (brute force)`` () =
    let budgets = defaultBudgets 50.0 paperTokenSet 0.3 21.0 15
    let points = frontier defaultSpec law 50.0 paperTokenSet budgets
    Assert.Equal(15, points.Length)
    for pt in points do
        for v in paperTokenSet do
            let n = llmParamsForBudget pt.Budget 50.0 v
            Assert.True(pt.Error <= predict defaultSpec law n v + 1e-15)
        assertClose (1e-9 * pt.Budget) pt.Budget (inferenceFlops pt.LlmParamsB 50.0 pt.VisualTokens)
    // V* ≈ 13.5 at Q = 50: the discrete choice is a neighbour of it.
    Assert.All(points, fun pt -> Assert.Contains(pt.VisualTokens, [ 4.0; 16.0 ]))

[<Fact>]
let ``frontier rejects bad token sets`` () =
    assertInputError [ "token set holds -1" ] (fun () -> frontier defaultSpec law 0.0 [ 1.0; -1.0 ] [ 1e12 ])
    assertInputError [ "token set is empty" ] (fun () -> frontier defaultSpec law 0.0 [] [ 1e12 ])

// ---------------------------------------------------------------------------------------------
// Cost models

let private measured =
    { Source = "lat.json"; LlmParameters = 0.5e9; TextTokens = 50.0; PrefillMs = [ 1.0, 100.0; 576.0, 400.0 ]; QueryPassMs = 50.0 }

[<Fact>]
let ``cost of a 1B LLM under each model, by hand`` () =
    // flops: 2·1e9·(50 + 4); flops+query adds 2·1e9·50.
    assertClose 1e-3 (2e9 * 54.0) (unitCost FlopsCost 50.0 4.0)
    assertClose 1e-3 (2e9 * 104.0) (unitCost FlopsPlusQuery 50.0 4.0)
    // measured, at a measured V: (100 ms + 50 ms query) for 0.5B → 0.15 s · 2 = 0.3 s per 1B.
    assertClose 1e-12 0.3 (unitCost (MeasuredLatency measured) 50.0 1.0)
    // V = 24 is the geometric middle of 1 and 576 (24² = 576): log-log interpolation gives √(100·400) = 200 ms → (200 + 50)·2.
    assertClose 1e-9 0.5 (unitCost (MeasuredLatency measured) 50.0 24.0)

[<Fact>]
let ``the flops cost model reproduces the paper's frontier and the query pass moves it`` () =
    let budgets = defaultBudgets 50.0 paperTokenSet 0.3 21.0 12
    Assert.Equal<FrontierPoint list>(frontier defaultSpec law 50.0 paperTokenSet budgets, frontierUnder FlopsCost defaultSpec law 50.0 paperTokenSet budgets)
    // Brute force under flops+query: N = C / (2e9·(2Q + V)) for each V, least predicted error.
    for p in frontierUnder FlopsPlusQuery defaultSpec law 50.0 paperTokenSet budgets do
        let best = paperTokenSet |> List.minBy (fun v -> predict defaultSpec law (p.Budget / (2e9 * (100.0 + v))) v)
        Assert.Equal(best, p.VisualTokens)
        assertClose 1e-9 (p.Budget / (2e9 * (100.0 + best))) p.LlmParamsB

[<Fact>]
let ``measured costs come from the bench's JSON and refuse V or Q they were not measured at`` () =
    let json = """{"preset": "x", "llm_parameters": 5e8, "text_tokens": 50, "query_pass_ms": 50, "points": [{"visual_tokens": 576, "prefill_ms": 400}, {"visual_tokens": 1, "prefill_ms": 100}]}"""
    Assert.Equal({ measured with Source = "m.json" }, parseMeasuredCost "m.json" json)
    assertInputError [ "lat.json"; "V = 1000"; "1..576" ] (fun () -> unitCost (MeasuredLatency measured) 50.0 1000.0)
    assertInputError [ "lat.json"; "Q = 50"; "Q = 20" ] (fun () -> unitCost (MeasuredLatency measured) 20.0 4.0)
    assertInputError [ "m.json"; "points[0]"; "\"prefill_ms\"" ] (fun () -> parseMeasuredCost "m.json" """{"llm_parameters": 1, "text_tokens": 50, "query_pass_ms": 0, "points": [{"visual_tokens": 1}]}""")
    assertInputError [ "m.json"; "not valid JSON" ] (fun () -> parseMeasuredCost "m.json" "{oops")
