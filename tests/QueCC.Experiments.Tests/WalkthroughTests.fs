/// The README's training walkthrough, run as written, and what its model must show: that it uses its image.
module QueCC.Experiments.Tests.WalkthroughTests

open System
open System.Diagnostics
open System.IO
open System.Text.Json
open System.Text.RegularExpressions
open Xunit
open QueCC.Experiments.Tests.Helpers
open QueCC.Experiments.Tests.CliTests

/// The `quecc …` commands of the README's "## Training" code block up to and including `quecc eval` (the `generate`
/// and `bench train` lines after it only print), with `\` continuations joined and `#` comments dropped.
let walkthroughCommands () =
    let readme = File.ReadAllText(repoFile "README.md")
    let section = readme.Substring(readme.IndexOf("## Training", StringComparison.Ordinal))
    let block = Regex.Match(section, "```sh\n(.*?)```", RegexOptions.Singleline).Groups[1].Value
    let lines =
        Regex.Replace(block, @"\\\n\s*", " ").Split('\n')
        |> Array.map (fun l -> (match l.IndexOf(" #", StringComparison.Ordinal) with -1 -> l | i -> l.Substring(0, i)).Trim())
        |> Array.filter (fun l -> l.StartsWith("quecc ", StringComparison.Ordinal))
    let upToEval = Array.findIndex (fun (l: string) -> l.StartsWith("quecc eval ", StringComparison.Ordinal)) lines
    lines[.. upToEval] |> Array.map (fun l -> l.Split(' ', StringSplitOptions.RemoveEmptyEntries) |> Array.skip 1 |> List.ofArray) |> List.ofArray

let private run (dir: string) (args: string list) =
    let psi = ProcessStartInfo("dotnet", Path.Combine(AppContext.BaseDirectory, "quecc.dll") :: args,
                               RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = dir)
    use p = Process.Start psi
    let o = p.StandardOutput.ReadToEndAsync()
    let e = p.StandardError.ReadToEndAsync()
    Assert.True(p.WaitForExit 1_200_000, sprintf "quecc %s did not finish in 20 minutes" (String.Join(" ", args)))
    p.WaitForExit()
    let tail (s: string) = s.Substring(max 0 (s.Length - 3000))
    Assert.True((p.ExitCode = 0), sprintf "quecc %s exited %d\nstdout:\n%s\nstderr:\n%s" (String.Join(" ", args)) p.ExitCode (tail o.Result) (tail e.Result))
    o.Result

[<Fact>]
let ``the README walkthrough commands are the six training steps, make-data to eval`` () =
    let verbs = walkthroughCommands () |> List.map List.head
    Assert.Equal<string list>([ "make-data"; "pretrain-vision"; "init-model"; "train"; "train"; "eval" ], verbs)

/// The walkthrough as README prints it (≈ 6 minutes on 2 cores). A model trained on images must lose accuracy when each
/// image is replaced by a grey one: README (measured 2026-12-02) states 0.500 against 0.344 blind overall, and 0.664
/// against 0.336 blind on the count questions, the one type the model has learnt from its image (docs/miniature-world.md
/// section 3). The bounds below are about half those margins, so they hold across thread counts and machines while a
/// model that ignored its image (margin 0, as every model before stage 0 showed) fails them. The issue's 20-point
/// target is not asserted: it is not met (issue 11).
[<Fact>]
let ``the README walkthrough trains a model whose answers need its image`` () =
    let dir = tempDir "walkthrough"
    try
        let mutable last = ""
        for args in walkthroughCommands () do last <- run dir args
        Assert.Contains("256 questions: accuracy", last)
        let j = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "answers.baselines.json"))).RootElement
        let score, blind, majority = j.GetProperty("score").GetDouble(), j.GetProperty("blind_score").GetDouble(), j.GetProperty("majority_score").GetDouble()
        let count = j.GetProperty("by_type").GetProperty("count").GetDouble()
        let countBlind = j.GetProperty("blind_by_type").GetProperty("count").GetDouble()
        Assert.True(score - blind >= 0.08, sprintf "accuracy %.3f, blind %.3f: the model does not use its image enough" score blind)
        Assert.True(count - countBlind >= 0.15, sprintf "count accuracy %.3f, blind %.3f" count countBlind)
        Assert.True(score - majority >= 0.15, sprintf "accuracy %.3f, majority answer %.3f" score majority)
    finally
        Directory.Delete(dir, true)
