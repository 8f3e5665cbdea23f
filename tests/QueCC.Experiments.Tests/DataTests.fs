module QueCC.Experiments.Tests.DataTests

open Xunit
open QueCC.Experiments.Data
open QueCC.Experiments.Tests.Helpers

let header = "task,llm_params_b,visual_tokens,score\n"

let rows =
    "t,0.5,1,0.40\nt,0.5,4,0.41\nt,1.8,1,0.43\nt,1.8,4,0.45\n"

[<Fact>]
let ``parses the four columns and keeps extra ones`` () =
    let obs = parseCsv "x.csv" ("task,llm_params_b,visual_tokens,score,seed\nt,0.5,16,0.25,3\n")
    let o = List.exactlyOne obs
    Assert.Equal(0.5, o.LlmParamsB)
    Assert.Equal(16.0, o.VisualTokens)
    Assert.Equal(0.75, o.Error, 12)
    Assert.Equal<string>("3", o.Extra["seed"])

[<Fact>]
let ``the shipped paper data has 28 points per family with the published values`` () =
    let vr = paperData "visual_reasoning.csv"
    let ocr = paperData "ocr.csv"
    Assert.Equal(28, vr.Length)
    Assert.Equal(28, ocr.Length)
    let cell (obs: Observation list) n v = (obs |> List.find (fun o -> o.LlmParamsB = n && o.VisualTokens = v)).Score
    Assert.Equal(0.3855, cell vr 0.5 1.0)
    Assert.Equal(0.5354, cell vr 7.0 576.0)
    Assert.Equal(0.155895545, cell ocr 4.0 4.0)
    // The known defect, kept as published: 7B/576 repeats 4B/576.
    Assert.Equal(cell ocr 4.0 576.0, cell ocr 7.0 576.0)

[<Fact>]
let ``missing column names the file, line and column`` () =
    assertInputError [ "bad.csv:1"; "missing column 'score'" ] (fun () -> parseCsv "bad.csv" "task,llm_params_b,visual_tokens\nt,1,1\n")

[<Fact>]
let ``non-numeric cell names the line and column`` () =
    assertInputError [ "bad.csv:3"; "visual_tokens"; "'many'" ] (fun () -> parseCsv "bad.csv" (header + "t,0.5,1,0.4\nt,0.5,many,0.4\n"))

[<Fact>]
let ``score outside 0..1 is rejected`` () =
    assertInputError [ "bad.csv:2"; "score is 41"; "[0, 1]" ] (fun () -> parseCsv "bad.csv" (header + "t,0.5,1,41\n"))

[<Fact>]
let ``non-positive N is rejected`` () =
    assertInputError [ "bad.csv:2"; "llm_params_b is 0" ] (fun () -> parseCsv "bad.csv" (header + "t,0,1,0.4\n"))

[<Fact>]
let ``non-positive V is rejected`` () =
    assertInputError [ "bad.csv:3"; "visual_tokens is -4" ] (fun () -> parseCsv "bad.csv" (header + "t,1,1,0.4\nt,1,-4,0.4\n"))

[<Fact>]
let ``ragged row is rejected`` () =
    assertInputError [ "bad.csv:2"; "3 cells" ] (fun () -> parseCsv "bad.csv" (header + "t,1,1\n"))

[<Fact>]
let ``one LLM size cannot identify alpha`` () =
    let obs = parseCsv "one.csv" (header + "t,0.5,1,0.4\nt,0.5,4,0.41\n")
    assertInputError [ "one.csv"; "1 distinct llm_params_b"; "at least 2" ] (fun () -> validateForLaw "one.csv" obs)

[<Fact>]
let ``one token count cannot identify beta`` () =
    let obs = parseCsv "one.csv" (header + "t,0.5,4,0.4\nt,1.8,4,0.41\n")
    assertInputError [ "one.csv"; "1 distinct visual_tokens" ] (fun () -> validateForLaw "one.csv" obs)

[<Fact>]
let ``a file with several tasks needs --task`` () =
    let obs = parseCsv "two.csv" (header + rows + rows.Replace("t,", "u,"))
    assertInputError [ "two.csv"; "several tasks"; "--task" ] (fun () -> selectTask "two.csv" None obs)
    Assert.Equal(4, (selectTask "two.csv" (Some "u") obs).Length)
    assertInputError [ "no rows with task 'w'" ] (fun () -> selectTask "two.csv" (Some "w") obs)

[<Fact>]
let ``a missing file is a one-line error`` () =
    assertInputError [ "nope.csv"; "not found" ] (fun () -> load "nope.csv" None)
