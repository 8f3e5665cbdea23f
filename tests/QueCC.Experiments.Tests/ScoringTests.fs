/// Scoring against hand-computed values: every expected number is derived in the comment above it.
module QueCC.Experiments.Tests.ScoringTests

open System
open System.IO
open Xunit
open QueCC.Experiments.Scoring
open QueCC.Experiments.ScoringIO
open QueCC.Experiments.Tests.Helpers

/// Ten human answers: `k` copies of `hit`, the rest distinct fillers no model says.
let humans (hit: string) (k: int) = List.replicate k hit @ [ for i in 1 .. 10 - k -> $"filler{i}" ]

let withFiles (files: (string * string) list) (f: string -> 'a) =
    let dir = Path.Combine(Path.GetTempPath(), "quecc-score-" + Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory dir |> ignore
    try
        for name, text in files do File.WriteAllText(Path.Combine(dir, name), text)
        f dir
    finally
        Directory.Delete(dir, true)

// ---------------------------------------------------------------------------------------------
// VQA normalisation, one rule per case

[<Theory>]
// lower-casing and trimming
[<InlineData("  Yes\n", "yes")>]
// number words become digits, "none" included
[<InlineData("Two", "2")>]
[<InlineData("none", "0")>]
// articles a / an / the dropped, only as whole words
[<InlineData("The Dog", "dog")>]
[<InlineData("a cat and an apple", "cat and apple")>]
[<InlineData("theater", "theater")>]
// contractions restored
[<InlineData("dont know", "don't know")>]
[<InlineData("isnt it", "isn't it")>]
[<InlineData("whats that", "what's that")>]
// a period is dropped unless a digit follows it
[<InlineData("dog.", "dog")>]
[<InlineData("3.5", "3.5")>]
// a comma between digits: it and every other mark go without a trace ("/" too)
[<InlineData("1,000", "1000")>]
[<InlineData("1,000 m/s", "1000 ms")>]
// a mark next to a space is deleted, a mark between letters becomes a space
[<InlineData("yes, it is", "yes it is")>]
[<InlineData("black/white", "black white")>]
[<InlineData("t-shirt", "t shirt")>]
[<InlineData("(red)", "red")>]
// ':' and '\'' are not in the official list, so they stay
[<InlineData("10:30", "10:30")>]
[<InlineData("man's", "man's")>]
let ``VQA normalisation follows the official rules`` (raw: string, expected: string) =
    Assert.Equal(expected, normalizeVqa raw)

// ---------------------------------------------------------------------------------------------
// VQA accuracy: min(1, matches among the 9 others / 3), averaged over the 10 humans left out in turn

[<Fact>]
let ``two of ten humans said two and the model said 2 scores 0.6`` () =
    // Leaving out one of the 8 non-matching humans leaves 2 matches → 2/3; leaving out one of the 2 matching → 1/3.
    // (8·2/3 + 2·1/3) / 10 = (16/3 + 2/3) / 10 = 6/10 = 0.6.
    assertClose 1e-12 0.6 (vqaAccuracy (humans "two" 2) "2")

[<Fact>]
let ``three matching humans score 0.9, four or more score 1, one scores 0.3, none scores 0`` () =
    // k = 3: 7 subsets keep 3 matches → 1; 3 subsets keep 2 → 2/3. (7 + 3·2/3) / 10 = 9/10.
    assertClose 1e-12 0.9 (vqaAccuracy (humans "yes" 3) "Yes")
    // k = 4: every subset keeps at least 3 matches → 1.
    assertClose 1e-12 1.0 (vqaAccuracy (humans "yes" 4) "yes")
    // k = 1: 9 subsets keep 1 match → 1/3; the subset without it → 0. 9·(1/3) / 10 = 0.3.
    assertClose 1e-12 0.3 (vqaAccuracy (humans "blue" 1) "the blue.")
    assertClose 1e-12 0.0 (vqaAccuracy (humans "blue" 5) "red")

[<Fact>]
let ``human answers are normalised too, so Two and 2 and two. are one answer`` () =
    // The three spellings normalise to "2": k = 3 → 0.9 as above.
    assertClose 1e-12 0.9 (vqaAccuracy [ "Two"; "2"; "two."; "a"; "b"; "c"; "d"; "e"; "f"; "g" ] "two")

// ---------------------------------------------------------------------------------------------
// VQA files, both ground-truth formats

let vqaAnswers =
    """{"question_id": 1, "prompt": "How many?", "text": "2", "model_id": "m"}
{"question_id": 2, "text": "Yes", "model_id": "m"}
{"question_id": 99, "text": "stray", "model_id": "m"}
"""

let jsonStrings (xs: string list) = "[" + String.Join(", ", xs |> List.map (fun s -> $"\"{s}\"")) + "]"

[<Fact>]
let ``VQA JSONL ground truth: accuracy, missing and unmatched answers`` () =
    let gt =
        String.concat "\n"
            [ $"""{{"question_id": 1, "answers": {jsonStrings (humans "two" 2)}}}"""
              $"""{{"question_id": "2", "answers": {jsonStrings (humans "yes" 3)}}}"""
              $"""{{"question_id": 3, "answers": {jsonStrings (humans "dog" 10)}}}""" ]
    withFiles [ "a.jsonl", vqaAnswers; "gt.jsonl", gt ] (fun dir ->
        let r = scoreFiles VqaV2 (Path.Combine(dir, "a.jsonl")) (Path.Combine(dir, "gt.jsonl"))
        // q1 0.6 (above), q2 0.9 (k = 3; the id "2" meets the answer's 2), q3 unanswered → 0. (0.6 + 0.9 + 0) / 3 = 0.5.
        match r.Metrics with
        | VqaMetrics acc -> assertClose 1e-12 0.5 acc
        | m -> failwithf "unexpected %A" m
        assertClose 1e-9 50.0 r.Headline
        Assert.Equal(3, r.Scored)
        Assert.Equal<string list>([ "3" ], r.MissingAnswers)
        Assert.Equal<string list>([ "99" ], r.UnmatchedAnswers)
        let json = (toJson r).ToJsonString()
        Assert.Contains("\"missing_answers\":{\"count\":1,\"first\":[\"3\"]}", json)
        Assert.Contains("\"unmatched_answers\":{\"count\":1", json)
        let text = toText r
        Assert.Contains("accuracy   50.00", text)
        Assert.Contains("missing answers: 1 (scored as wrong; e.g. 3)", text)
        Assert.Contains("answers without ground truth: 1 (not scored; e.g. 99)", text))

[<Fact>]
let ``official VQAv2, TextVQA and VizWiz annotation documents read like the JSONL`` () =
    let objs (xs: string list) = "[" + String.Join(", ", xs |> List.map (fun s -> $"{{\"answer\": \"{s}\", \"answer_confidence\": \"yes\"}}")) + "]"
    let vqa = $"""{{"annotations": [{{"question_id": 1, "answers": {objs (humans "two" 2)}}}, {{"question_id": 2, "answers": {objs (humans "yes" 3)}}}]}}"""
    let textvqa = $"""{{"dataset_name": "textvqa", "data": [{{"question_id": 1, "answers": {jsonStrings (humans "two" 2)}}}, {{"question_id": 2, "answers": {jsonStrings (humans "yes" 3)}}}]}}"""
    let vizwiz = $"""[{{"image": "VizWiz_val_1.jpg", "answers": {objs (humans "two" 2)}}}, {{"image": "VizWiz_val_2.jpg", "answers": {objs (humans "unanswerable" 4)}}}]"""
    let vizAnswers = "{\"question_id\": \"VizWiz_val_1.jpg\", \"text\": \"two\"}\n{\"question_id\": \"VizWiz_val_2.jpg\", \"text\": \"Unanswerable\"}\n"
    withFiles [ "a.jsonl", vqaAnswers; "viz.jsonl", vizAnswers; "vqa.json", vqa; "textvqa.json", textvqa; "vizwiz.json", vizwiz ] (fun dir ->
        let p n = Path.Combine(dir, n)
        // (0.6 + 0.9) / 2 = 0.75 for both documents; the stray answer 99 is unmatched.
        for bench, file in [ VqaV2, "vqa.json"; TextVqa, "textvqa.json" ] do
            let r = scoreFiles bench (p "a.jsonl") (p file)
            assertClose 1e-9 75.0 r.Headline
            Assert.Equal<string list>([ "99" ], r.UnmatchedAnswers)
        // VizWiz: 0.6 and, with 4 of 10 humans, 1 → 0.8.
        let r = scoreFiles VizWiz (p "viz.jsonl") (p "vizwiz.json")
        assertClose 1e-9 80.0 r.Headline
        Assert.Empty r.MissingAnswers)

// ---------------------------------------------------------------------------------------------
// GQA

[<Fact>]
let ``GQA is exact match after lower-casing and stripping the trailing period`` () =
    let truth = [ "1", ExactAnswer "yes"; "2", ExactAnswer "left"; "3", ExactAnswer "left"; "4", ExactAnswer "table" ]
    // "Yes." → "yes" ✓; "Left" → "left" ✓; "on the left" ≠ "left" ✗ (no article removal in GQA); "tables" ✗. 2/4.
    let answers = Map [ "1", "Yes."; "2", "Left"; "3", "on the left"; "4", "tables" ]
    let r = score Gqa truth answers
    match r.Metrics with
    | ExactMatchMetrics acc -> assertClose 1e-12 0.5 acc
    | m -> failwithf "unexpected %A" m

// ---------------------------------------------------------------------------------------------
// POPE

[<Theory>]
[<InlineData("Yes, there is a dog in the image.", true)>]
[<InlineData("No, there is no dog.", false)>]
[<InlineData("There is not a dog in the image.", false)>]
// only the first sentence counts
[<InlineData("Yes. There is no cat.", true)>]
[<InlineData("No.", false)>]
// LLaVA's word test is case-sensitive and splits on spaces only: "NO" and "no!" are not the word no
[<InlineData("NO", true)>]
[<InlineData("no!", true)>]
[<InlineData("", true)>]
let ``POPE maps an answer to yes or no as LLaVA's eval_pope does`` (text: string, yes: bool) =
    Assert.Equal((if yes then Yes else No), popeAnswer text)

[<Fact>]
let ``POPE accuracy, precision, recall, F1 and yes-ratio overall and per category`` () =
    let gt =
        """{"question_id": 1, "label": "yes", "category": "random"}
{"question_id": 2, "label": "yes", "category": "random"}
{"question_id": 3, "label": "no", "category": "random"}
{"question_id": 4, "label": "yes", "category": "adversarial"}
{"question_id": 5, "label": "no", "category": "adversarial"}
{"question_id": 6, "label": "No", "category": "adversarial"}
"""
    let answers =
        """{"question_id": 1, "text": "Yes, there is."}
{"question_id": 2, "text": "No, there is not."}
{"question_id": 3, "text": "No."}
{"question_id": 4, "text": "Yes"}
{"question_id": 5, "text": "Yes, I see one."}
"""
    withFiles [ "a.jsonl", answers; "gt.jsonl", gt ] (fun dir ->
        let r = scoreFiles Pope (Path.Combine(dir, "a.jsonl")) (Path.Combine(dir, "gt.jsonl"))
        match r.Metrics with
        | PopeResult(all, cats) ->
            let random = cats |> List.find (fst >> (=) "random") |> snd
            let adv = cats |> List.find (fst >> (=) "adversarial") |> snd
            // random: TP 1 (q1), FN 1 (q2), TN 1 (q3). acc 2/3; precision 1/1; recall 1/2; F1 = 2·1·½/(1½) = 2/3; yes 1/3.
            assertClose 1e-12 (2.0 / 3.0) random.Accuracy
            assertClose 1e-12 1.0 random.Precision
            assertClose 1e-12 0.5 random.Recall
            assertClose 1e-12 (2.0 / 3.0) random.F1
            assertClose 1e-12 (1.0 / 3.0) random.YesRatio
            // adversarial: TP 1 (q4), FP 1 (q5), q6 unanswered (label no, never correct). acc 1/3; precision 1/2;
            // recall 1/1; F1 = 2·½·1/(1½) = 2/3; yes 2/3.
            assertClose 1e-12 (1.0 / 3.0) adv.Accuracy
            assertClose 1e-12 0.5 adv.Precision
            assertClose 1e-12 1.0 adv.Recall
            assertClose 1e-12 (2.0 / 3.0) adv.F1
            assertClose 1e-12 (2.0 / 3.0) adv.YesRatio
            Assert.Equal(1, adv.Unanswered)
            // all: TP 2, FP 1, TN 1, FN 1, 1 unanswered of 6. acc 3/6; precision 2/3; recall 2/3; F1 2/3; yes 3/6.
            Assert.Equal((2, 1, 1, 1, 6), (all.TruePositives, all.FalsePositives, all.TrueNegatives, all.FalseNegatives, all.Total))
            assertClose 1e-12 0.5 all.Accuracy
            assertClose 1e-12 (2.0 / 3.0) all.Precision
            assertClose 1e-12 (2.0 / 3.0) all.Recall
            assertClose 1e-12 (2.0 / 3.0) all.F1
            assertClose 1e-12 0.5 all.YesRatio
        | m -> failwithf "unexpected %A" m
        // Headline: mean category F1 = (2/3 + 2/3) / 2 → 66.67.
        assertClose 1e-9 (200.0 / 3.0) r.Headline
        Assert.Equal<string list>([ "6" ], r.MissingAnswers)
        let text = toText r
        Assert.Contains("random", text)
        Assert.Contains("66.67", text))

[<Fact>]
let ``POPE with no positive predictions reports precision 0 instead of dividing by zero`` () =
    let m = popeMetrics [ Yes, Some No; No, Some No ]
    Assert.Equal(0.0, m.Precision)
    Assert.Equal(0.0, m.F1)
    assertClose 1e-12 0.5 m.Accuracy

// ---------------------------------------------------------------------------------------------
// Multiple choice

[<Theory>]
[<InlineData("A", "A")>]
[<InlineData("B. Paris", "B")>]
[<InlineData("The answer is C.", "C")>]
// "The answer is X" needs one more character after the letter, and exactly one such phrase
[<InlineData("The answer is C", "")>]
[<InlineData("The answer is A. The answer is B.", "")>]
// LLaVA's eval_science_qa.py takes nothing else: lower case, parentheses, "B." and "Answer: (D)" fail
[<InlineData("b", "")>]
[<InlineData("(B)", "")>]
[<InlineData("C.", "")>]
[<InlineData("Answer: (D)", "")>]
[<InlineData("F", "")>]
[<InlineData("", "")>]
let ``ScienceQA reads a letter only as eval_science_qa.py does`` (text: string, expected: string) =
    let got = scienceQaChoice text |> Option.map string |> Option.defaultValue ""
    Assert.Equal(expected, got)

[<Fact>]
let ``ScienceQA accuracy and IMG accuracy, letters past the choices wrong`` () =
    let gt =
        String.concat "\n"
            [ """{"question_id": "1", "answer": 1, "choices": ["x", "y"], "image": "image.png"}"""
              """{"question_id": "2", "answer": 0, "choices": ["x", "y"], "image": null}"""
              """{"question_id": "3", "answer": "A", "image": "image.png"}"""
              """{"question_id": "4", "answer": 2, "choices": ["x", "y", "z"], "image": "image.png"}"""
              """{"question_id": "5", "answer": 0, "choices": ["x", "y"]}""" ]
    let answers =
        String.concat "\n"
            [ for id, t in [ "1", "B"; "2", "A. x"; "3", "(A)"; "4", "The answer is C." ] -> $"""{{"question_id": "{id}", "text": "{t}"}}""" ]
    withFiles [ "a.jsonl", answers; "gt.jsonl", gt ] (fun dir ->
        let r = scoreFiles ScienceQa (Path.Combine(dir, "a.jsonl")) (Path.Combine(dir, "gt.jsonl"))
        match r.Metrics with
        | SqaResult m ->
            // q1 ✓ (img), q2 ✓, q3 "(A)" unparsed ✗ (img), q4 ✓ (img), q5 missing ✗. 3/5; IMG: q1, q4 of q1, q3, q4 → 2/3.
            Assert.Equal((3, 5, 2, 3, 1), (m.Correct, m.Count, m.ImgCorrect, m.ImgCount, m.Unparsed))
            assertClose 1e-12 0.6 m.Accuracy
        | m -> failwithf "unexpected %A" m
        assertClose 1e-9 (200.0 / 3.0) r.Headline)
    // A letter beyond the question's choices is wrong even when it is the right index's letter elsewhere.
    let r = score ScienceQa [ "1", SqaAnswer('C', Some 2, false) ] (Map [ "1", "C" ])
    assertClose 1e-12 0.0 r.Headline

[<Theory>]
[<InlineData("B", "B")>]
[<InlineData("(C) bird", "C")>]
[<InlineData("The answer is **D**", "D")>]
// two letters among the words: none by letter, and "B or C" is not an option text either
[<InlineData("B or C", "")>]
// the only letter must sit among the last four words, else the "answer is" rule and the texts decide
[<InlineData("B is what I would say here if asked", "")>]
[<InlineData("a dog", "B")>]
[<InlineData("cat or dog", "")>]
[<InlineData("Cannot determine the answer", "Z")>]
[<InlineData("Z", "Z")>]
[<InlineData("", "")>]
let ``MMBench infers an option as VLMEvalKit's exact matching`` (text: string, expected: string) =
    let options = [ 'A', "cat"; 'B', "dog"; 'C', "bird"; 'D', "fish" ]
    Assert.Equal(expected, canInfer text options |> Option.map string |> Option.defaultValue "")

[<Fact>]
let ``MMBench CircularEval counts a question only when every rotated copy is right`` () =
    let opts = [ 'A', "cat"; 'B', "dog"; 'C', "bird"; 'D', "fish" ]
    let row id letter cat = string id, MmbAnswer(letter, opts, Some cat)
    let truth =
        [ row 1 'B' "x"; row 1000001 'A' "x"; row 2000001 'D' "x"; row 3000001 'C' "x"
          row 2 'A' "x"; row 1000002 'D' "x"
          row 3 'C' "y"; row 1000003 'B' "y"
          row 4 'A' "y"
          row 1000009 'A' "y" ]
    let answers =
        Map [ "1", "B"; "1000001", "A"; "2000001", "fish"; "3000001", "C"
              "2", "A"; "1000002", "C"
              "3", "C"; "1000003", "B. dog"
              "4", "hmm"
              "1000009", "A" ]
    let r = score MmBench truth answers
    match r.Metrics with
    | MmbResult m ->
        // q1: all four copies right ("fish" matches option D's text) ✓; q2: copy 1000002 says C, wants D ✗;
        // q3: both right ✓; q4: nothing inferred ✗. 2 of 4 circular. Single pass: q1, q2, q3 right → 3/4.
        // 1000009 has no question 9: an orphan, ignored.
        Assert.Equal((4, 2, 10, 1, 1), (m.Questions, m.CircularCorrect, m.Rows, m.Unparsed, m.Orphans))
        assertClose 1e-12 0.5 m.CircularAccuracy
        assertClose 1e-12 0.75 m.VanillaAccuracy
        // x: q1 ✓ q2 ✗ → 0.5; y: q3 ✓ q4 ✗ → 0.5.
        Assert.Equal<(string * int * float) list>([ "x", 2, 0.5; "y", 2, 0.5 ], m.PerCategory)
    | m -> failwithf "unexpected %A" m
    assertClose 1e-9 50.0 r.Headline

[<Fact>]
let ``SEED accuracy per question type and over images, the answer text equal to the letter`` () =
    let gt =
        String.concat "\n"
            [ """{"question_id": 1, "answer": "A", "question_type_id": 1, "data_type": "image"}"""
              """{"question_id": 2, "answer": "B", "question_type_id": 1, "data_type": "image"}"""
              """{"question_id": 3, "answer": "C", "question_type_id": 2}"""
              """{"question_id": 4, "answer": "D", "question_type_id": 10, "data_type": "video"}"""
              """{"question_id": 5, "answer": "A", "question_type_id": 10, "data_type": "video"}""" ]
    let answers =
        String.concat "\n" [ for id, t in [ 1, "A"; 2, "B."; 3, "C"; 4, "D"; 5, "a" ] -> $"""{{"question_id": {id}, "text": "{t}"}}""" ]
    withFiles [ "a.jsonl", answers; "gt.jsonl", gt ] (fun dir ->
        let r = scoreFiles Seed (Path.Combine(dir, "a.jsonl")) (Path.Combine(dir, "gt.jsonl"))
        match r.Metrics with
        | SeedResult m ->
            // type 1: "A" ✓, "B." ✗ → 1/2; type 2: ✓ → 1; type 10: "D" ✓, "a" ✗ → 1/2. Images q1-q3: 2/3; all 3/5.
            Assert.Equal<(string * int * float) list>([ "1", 2, 0.5; "2", 1, 1.0; "10", 2, 0.5 ], m.PerType)
            assertClose 1e-12 (2.0 / 3.0) m.ImageAccuracy
            assertClose 1e-12 0.6 m.Accuracy
            Assert.Equal((3, 2), (m.ImageCount, m.VideoCount))
        | m -> failwithf "unexpected %A" m
        assertClose 1e-9 (200.0 / 3.0) r.Headline)

// ---------------------------------------------------------------------------------------------
// MME

[<Theory>]
[<InlineData("Yes", "yes")>]
[<InlineData("yes.", "yes")>]
[<InlineData("No, it is not.", "no")>]
// MME looks for "no" in the first four characters, so "Not sure" is no and "There is a dog" is neither
[<InlineData("Not sure", "no")>]
[<InlineData("There is a dog", "")>]
let ``MME reads yes, no or neither from the first four characters`` (text: string, expected: string) =
    let got = mmeAnswer text |> Option.map (function Yes -> "yes" | No -> "no") |> Option.defaultValue ""
    Assert.Equal(expected, got)

[<Fact>]
let ``MME accuracy, accuracy+ and the perception and cognition sums`` () =
    let gt =
        String.concat "\n"
            [ """{"question_id": "e1", "subtask": "existence", "image": "1.jpg", "label": "yes"}"""
              """{"question_id": "e2", "subtask": "existence", "image": "1.jpg", "label": "no"}"""
              """{"question_id": "e3", "subtask": "existence", "image": "2.jpg", "label": "yes"}"""
              """{"question_id": "e4", "subtask": "existence", "image": "2.jpg", "label": "no"}"""
              """{"question_id": "c1", "subtask": "count", "image": "3.jpg", "label": "yes"}"""
              """{"question_id": "c2", "subtask": "count", "image": "3.jpg", "label": "no"}"""
              """{"question_id": "k1", "subtask": "code_reasoning", "image": "4.png", "label": "yes"}"""
              """{"question_id": "k2", "subtask": "code_reasoning", "image": "4.png", "label": "no"}""" ]
    let answers =
        String.concat "\n"
            [ for id, t in [ "e1", "Yes"; "e2", "No"; "e3", "No"; "e4", "no"; "c1", "yes"; "c2", "No."; "k1", "yes"; "k2", "yes" ] ->
                  $"""{{"question_id": "{id}", "text": "{t}"}}""" ]
    withFiles [ "a.jsonl", answers; "gt.jsonl", gt ] (fun dir ->
        let r = scoreFiles Mme (Path.Combine(dir, "a.jsonl")) (Path.Combine(dir, "gt.jsonl"))
        match r.Metrics with
        | MmeResult m ->
            let sub name = m.Subtasks |> List.find (fun s -> s.Subtask = name)
            // existence: 3 of 4 right (e3 wrong) → 0.75; image 1 all right, image 2 not → 0.5; (0.75 + 0.5)·100 = 125.
            let e = sub "existence"
            assertClose 1e-12 0.75 e.Accuracy
            assertClose 1e-12 0.5 e.AccuracyPlus
            assertClose 1e-9 125.0 e.Score
            // count: both right → 200. code_reasoning: k2 wrong → 0.5 + 0 → 50.
            assertClose 1e-9 200.0 (sub "count").Score
            assertClose 1e-9 50.0 (sub "code_reasoning").Score
            // perception = 125 + 200; cognition = 50.
            assertClose 1e-9 325.0 m.Perception
            assertClose 1e-9 50.0 m.Cognition
            Assert.Equal<string list>([ "existence"; "count"; "code_reasoning" ], m.Subtasks |> List.map (fun s -> s.Subtask))
        | m -> failwithf "unexpected %A" m
        assertClose 1e-9 325.0 r.Headline
        let json = (toJson r).ToJsonString()
        Assert.Contains("\"perception\":325", json)
        Assert.Contains("\"accuracy_plus\":0.5", json))

[<Fact>]
let ``MME lists the ten perception and four cognition subtasks`` () =
    Assert.Equal(10, mmePerception.Length)
    Assert.Equal(4, mmeCognition.Length)
    Assert.Contains("OCR", mmePerception)
    Assert.Contains("text_translation", mmeCognition)

// ---------------------------------------------------------------------------------------------
// Errors users can cause: one line naming the file, line and the expected value

[<Fact>]
let ``malformed answers and ground truth are one-line errors naming file and line`` () =
    assertInputError [ "a.jsonl:2"; "not valid JSON" ] (fun () -> parseAnswers "a.jsonl" "{\"question_id\": 1, \"text\": \"x\"}\n{oops\n")
    assertInputError [ "a.jsonl:1"; "\"text\""; "expected" ] (fun () -> parseAnswers "a.jsonl" "{\"question_id\": 1}")
    assertInputError [ "a.jsonl:1"; "\"text\""; "42" ] (fun () -> parseAnswers "a.jsonl" "{\"question_id\": 1, \"text\": 42}")
    assertInputError [ "a.jsonl:3"; "question_id 1"; "a.jsonl:1" ] (fun () ->
        parseAnswers "a.jsonl" "{\"question_id\": 1, \"text\": \"x\"}\n\n{\"question_id\": \"1\", \"text\": \"y\"}")
    assertInputError [ "a.jsonl:1"; "question_id"; "[1]" ] (fun () -> parseAnswers "a.jsonl" "{\"question_id\": [1], \"text\": \"x\"}")
    assertInputError [ "a.jsonl"; "no answers" ] (fun () -> parseAnswers "a.jsonl" "\n\n")
    assertInputError [ "a.jsonl:1"; "expected a JSON object" ] (fun () -> parseAnswers "a.jsonl" "[1, 2]")
    assertInputError [ "p.jsonl:1"; "\"maybe\""; "expected \"yes\" or \"no\"" ] (fun () ->
        parseTruth Pope "p.jsonl" "{\"question_id\": 1, \"label\": \"maybe\"}")
    assertInputError [ "m.jsonl:1"; "\"AB\""; "option letter" ] (fun () -> parseTruth ScienceQa "m.jsonl" "{\"question_id\": 1, \"answer\": \"AB\"}")
    assertInputError [ "m.jsonl:1"; "question_id x7"; "TSV index" ] (fun () -> parseTruth MmBench "m.jsonl" "{\"question_id\": \"x7\", \"answer\": \"A\"}")
    assertInputError [ "s.jsonl:1"; "\"question_type_id\"" ] (fun () -> parseTruth Seed "s.jsonl" "{\"question_id\": 1, \"answer\": \"A\"}")
    assertInputError [ "q.jsonl:1"; "past the 2 choices" ] (fun () -> parseTruth ScienceQa "q.jsonl" "{\"question_id\": 1, \"answer\": 3, \"choices\": [\"x\", \"y\"]}")
    assertInputError [ "v.jsonl:1"; "\"answers\""; "array of human answers" ] (fun () -> parseTruth VqaV2 "v.jsonl" "{\"question_id\": 1, \"answers\": []}")
    assertInputError [ "v.json: annotations[0]: answers[1]"; "\"answer\"" ] (fun () ->
        parseTruth VqaV2 "v.json" "{\"annotations\": [{\"question_id\": 1, \"answers\": [{\"answer\": \"a\"}, {\"ans\": \"b\"}]}]}")
    assertInputError [ "mme.jsonl:1"; "\"subtask\""; "existence" ] (fun () -> parseTruth Mme "mme.jsonl" "{\"question_id\": 1, \"image\": \"x\", \"label\": \"yes\"}")
    assertInputError [ "g.jsonl:2"; "question_id 7 repeats g.jsonl:1" ] (fun () ->
        parseTruth Gqa "g.jsonl" "{\"question_id\": 7, \"answer\": \"x\"}\n{\"question_id\": 7, \"answer\": \"y\"}")
    assertInputError [ "nowhere.jsonl"; "not found" ] (fun () -> scoreFiles Gqa "nowhere.jsonl" "gt.jsonl")

[<Fact>]
let ``benchmark names parse case-insensitively and unknown ones do not`` () =
    Assert.Equal(Some VqaV2, Benchmark.tryParse "VQAv2")
    Assert.Equal(Some TextVqa, Benchmark.tryParse "text-vqa")
    Assert.Equal(Some ScienceQa, Benchmark.tryParse "sqa")
    Assert.Equal(None, Benchmark.tryParse "imagenet")
    for b in Benchmark.all do
        Assert.Equal(Some b, Benchmark.tryParse (Benchmark.name b))
