/// The inference-optimal scaling law of Li et al. (arXiv 2411.03312):
///   Y(N, V) = A · N^−α · T^−β + D,   T = V + q,
/// where Y is the average downstream error, N the LLM size (billions of parameters), V the visual tokens
/// and q the text tokens counted inside the law (0 in the authors' fitting code; the paper's text uses T = Q + V).
module QueCC.Experiments.ScalingLaw

open QueCC.Experiments.Data

type LawParams =
    { A: float
      Alpha: float
      Beta: float
      D: float }

/// How T is formed from V: T = V + LawTextTokens.
type LawSpec = { LawTextTokens: float }

let defaultSpec = { LawTextTokens = 0.0 }

/// The paper's published fit for visual-reasoning tasks (A and D are not published).
let publishedAlpha, publishedBeta = 0.077, 0.015

let predict (spec: LawSpec) (p: LawParams) (nB: float) (v: float) =
    p.A * (nB ** -p.Alpha) * ((v + spec.LawTextTokens) ** -p.Beta) + p.D

let residuals spec p (obs: Observation list) =
    obs |> List.map (fun o -> predict spec p o.LlmParamsB o.VisualTokens - o.Error)

/// Sum of squared errors, the authors' objective.
let sse spec p obs =
    residuals spec p obs |> List.sumBy (fun r -> r * r)

/// Coefficient of determination of the law on the observations' errors.
let r2 spec p (obs: Observation list) =
    let ys = obs |> List.map (fun o -> o.Error)
    let mean = List.average ys
    let tss = ys |> List.sumBy (fun y -> (y - mean) ** 2.0)
    1.0 - sse spec p obs / tss

/// Inference FLOPs of a forward pass over the prompt: 2 · N · (Q + V), N in parameters.
let inferenceFlops (nB: float) (textTokens: float) (v: float) = 2.0 * nB * 1e9 * (textTokens + v)

/// LLM size (billions) that a FLOPs budget buys at Q text and V visual tokens.
let llmParamsForBudget (flops: float) (textTokens: float) (v: float) = flops / (2.0 * 1e9 * (textTokens + v))
