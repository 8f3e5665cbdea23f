/// The evaluation baselines: majority answer, per-type accuracy (hand counts) and the grey-image (blind) run.
module QueCC.Experiments.Tests.BaselineTests

open System
open System.IO
open Xunit
open QueCC.Experiments.Evaluation
open QueCC.Experiments.Tests.Helpers

let private norm (s: string) = QueCC.Experiments.Scoring.normalizeGqa s

[<Fact>]
let ``majority accuracy is the share of the most common answer, by hand count`` () =
    // red ×3 (one written "Red."), blue ×1, two ×2: the majority answer "red" covers 3 of 6.
    let truths = [ "red"; "Red."; "blue"; "two"; "red"; "two" ]
    Assert.Equal(0.5, majorityAccuracy norm truths, 12)
    Assert.Equal(1.0, majorityAccuracy norm [ "left" ], 12)
    Assert.Equal(0.0, majorityAccuracy norm [], 12)

let private keyText =
    """{"question_id": "a", "image": "1.png", "text": "What color?", "answer": "red", "category": "color"}
{"question_id": "b", "image": "2.png", "text": "What color?", "answer": "blue", "category": "color"}
{"question_id": 3, "image": "3.png", "text": "How many?", "answer": "two", "category": "count"}
{"question_id": "d", "image": "4.png", "text": "How many?", "answer": "two"}
"""

[<Fact>]
let ``the report counts accuracy, blind accuracy and per-type accuracy by hand`` () =
    let key = parseAnswerKey "q.jsonl" keyText
    Assert.Equal(4, key.Count)
    Assert.Equal("all", key["d"].Category)
    Assert.Equal("count", key["3"].Category)
    let answers = Map [ "a", "red"; "b", "red"; "3", "two"; "d", "three" ]
    let blind = Map [ "a", "red"; "b", "red"; "3", "three" ] // "d" unanswered counts wrong
    let r = baselineReport QueCC.Experiments.Sweep.answerMatches norm key answers blind
    Assert.Equal(4, r.Questions)
    Assert.Equal(0.5, r.Score, 12)        // a, 3
    Assert.Equal(0.25, r.BlindScore, 12)  // a
    Assert.Equal(0.5, r.MajorityScore, 12) // "two" ×2 of 4
    Assert.Equal(0.5, r.ByType["color"], 12)
    Assert.Equal(1.0, r.ByType["count"], 12)
    Assert.Equal(0.0, r.ByType["all"], 12)
    Assert.Equal(0.0, r.BlindByType["count"], 12)
    Assert.Equal(0.5, r.MajorityByType["color"], 12)
    let j = baselineJson r
    for field in [ "score"; "blind_score"; "majority_score"; "by_type" ] do
        Assert.NotNull(j[field])

[<Fact>]
let ``a bad answer field is a one-line error naming the line`` () =
    assertInputError [ "q.jsonl:1"; "\"answer\""; "expected the ground-truth answer" ] (fun () ->
        parseAnswerKey "q.jsonl" """{"question_id": 1, "image": "x.png", "text": "t", "answer": 2}""")

[<Fact>]
let ``the blind run sees one grey image, so equal questions get equal answers whatever the images`` () =
    let dir = Path.Combine(Path.GetTempPath(), "quecc-blind-test-" + Guid.NewGuid().ToString("N"))
    try
        let model = Path.Combine(dir, "m")
        QueCC.Model.Commands.LlavaEntryPoints.InitModel("tiny", "avgpool", 4, model, 3L) |> ignore
        let data = Path.Combine(dir, "data")
        QueCC.Model.Data.SyntheticData.Make("shapes", 1, 0, 12, data) |> ignore
        let qs = Path.Combine(data, QueCC.Model.Data.SyntheticData.EvalQuestionsFile)
        let out = Path.Combine(dir, "blind.jsonl")
        evaluateBlind model None qs data out 3 (fun _ _ -> ())
        let answers = QueCC.Experiments.ScoringIO.parseAnswers out (File.ReadAllText out)
        let questions = parseQuestions qs (File.ReadAllText qs)
        Assert.Equal(questions.Length, answers.Count)
        for _, group in questions |> List.groupBy (fun q -> q.Text) do
            let ids = group |> List.map (fun q -> q.Id.ToJsonString().Trim('"'))
            Assert.Single(ids |> List.map (fun i -> answers[i]) |> List.distinct) |> ignore
        // The grey copies are temporary.
        Assert.Empty(Directory.GetDirectories(Path.GetTempPath(), $"quecc-blind-{Environment.ProcessId}-*"))
    finally
        if Directory.Exists dir then Directory.Delete(dir, true)
