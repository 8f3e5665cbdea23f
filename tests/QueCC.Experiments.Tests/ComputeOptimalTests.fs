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
