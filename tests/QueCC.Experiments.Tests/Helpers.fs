module QueCC.Experiments.Tests.Helpers

open System
open System.IO
open Xunit
open QueCC.Experiments.Data
open QueCC.Experiments.ScalingLaw

// CLI tests swap Console.Out; keep the assembly's tests sequential so they never interleave.
[<assembly: CollectionBehavior(DisableTestParallelization = true)>]
do ()

let paperNs = [ 0.5; 1.8; 4.0; 7.0 ]
let paperVs = [ 1.0; 4.0; 16.0; 36.0; 64.0; 144.0; 576.0 ]

/// Observations generated from the law itself, with optional Gaussian noise on the error.
let synthetic (spec: LawSpec) (p: LawParams) (noise: float) (seed: int) =
    let rng = Random(seed)
    let gauss () =
        let u1, u2 = 1.0 - rng.NextDouble(), rng.NextDouble()
        sqrt (-2.0 * log u1) * cos (2.0 * Math.PI * u2)
    [ for n in paperNs do
          for v in paperVs do
              let err = predict spec p n v + noise * gauss ()
              yield { Task = "synthetic"; LlmParamsB = n; VisualTokens = v; Score = 1.0 - err; Extra = Map.empty } ]

let repoFile (relative: string) =
    match findRepoFile relative with
    | Some p -> p
    | None -> failwithf "%s not found above %s" relative Environment.CurrentDirectory

let paperData (file: string) = load (repoFile (Path.Combine("data", "paper", file))) None

let assertClose (tol: float) (expected: float) (actual: float) =
    if not (abs (expected - actual) <= tol) then
        failwithf "expected %.10g ± %g, got %.10g (difference %.3g)" expected tol actual (abs (expected - actual))

/// Asserts that `f` raises InputError whose message contains every fragment.
let assertInputError (fragments: string list) (f: unit -> 'a) =
    let e = Assert.Throws<InputError>(fun () -> f () |> ignore)
    for frag in fragments do
        Assert.Contains(frag, e.Message)
    Assert.DoesNotContain("\n", e.Message)
